/*
 * import_main: a target from another module (PyMOTW
 * multiprocessing_import_main.py).
 *
 * The worker lives in import_worker.c.  libmp records a target as the
 * loaded object that holds it plus an offset, so it is found again in a
 * child whatever the start method.
 */
#include <libmp.h>
#include <stdio.h>

#include "import_worker.h"

int main(void)
{
    for (int i = 0; i < 5; i++) {
        mp_process *p = mp_process_new(.target = worker);
        if (p == NULL || mp_process_start(p) != 0) {
            fprintf(stderr, "import_main: %s\n", mp_strerror(mp_last_error()));
            return 1;
        }
    }
    return 0;
}
