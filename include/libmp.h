/*
 * libmp.h: Python's multiprocessing for C programs on POSIX.
 *
 * Include this one header; it brings in every module.  The modules mirror
 * CPython's Lib/multiprocessing: libmp/process.h is process.py,
 * libmp/synchronize.h is synchronize.py, and so on.  docs/ has a page per
 * module with the Python-to-C mapping.
 */
#ifndef LIBMP_H
#define LIBMP_H

#include "libmp/common.h"
#include "libmp/errors.h"
#include "libmp/heap.h"
#include "libmp/managers.h"
#include "libmp/process.h"
#include "libmp/util.h"
#include "libmp/shared_memory.h"
#include "libmp/connection.h"
#include "libmp/sharedctypes.h"
#include "libmp/synchronize.h"
#include "libmp/queues.h"
#include "libmp/pool.h"
#include "libmp/val.h"
#include "libmp/context.h"
#include "libmp/mpi.h"

#endif /* LIBMP_H */
