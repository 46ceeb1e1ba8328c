/* import_worker.h: the worker of import_main, in its own translation unit
 * (PyMOTW multiprocessing_import_worker.py). */
#ifndef IMPORT_WORKER_H
#define IMPORT_WORKER_H

#include <stddef.h>

int worker(void *arg, size_t size);

#endif
