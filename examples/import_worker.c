/* import_worker.c: a target defined outside the main program's file
 * (PyMOTW multiprocessing_import_worker.py). */
#include "import_worker.h"

#include <stdio.h>

int worker(void *arg, size_t size)
{
    printf("Worker\n");
    return 0;
}
