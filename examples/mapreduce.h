/*
 * mapreduce.h: SimpleMapReduce over a libmp Pool (PyMOTW
 * multiprocessing_mapreduce.py), reusable by any program.
 *
 *     mapper = SimpleMapReduce(map_func, reduce_func, num_workers)
 *     results = mapper(inputs, chunksize=1)
 *
 * Data crosses processes as bytes, so the key/value pairs have a fixed
 * shape here: a key is a byte string, a value a uint64_t.
 *
 * map_func (a mp_pool_bytes_fn) reads one input and emits its pairs with
 * mr_emit(out, key, key_len, value).  The pairs are partitioned by key in
 * the calling process; reduce_func (a mp_pool_bytes_fn too) receives one
 * key with all its values, read with mr_reduce_input, and emits one pair.
 */
#ifndef MAPREDUCE_H
#define MAPREDUCE_H

#include <libmp.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mr_pair {
    char *key; /* malloc'd, NUL-terminated */
    size_t key_len;
    uint64_t value;
} mr_pair;

typedef struct simple_mapreduce simple_mapreduce;

/* The map-reduce object and its pool of num_workers (0: one per cpu);
 * NULL with mp_last_error() set when the pool cannot start. */
simple_mapreduce *simple_mapreduce_new(mp_pool_bytes_fn map_func, mp_pool_bytes_fn reduce_func,
                                       int num_workers);

/* Map the n inputs (chunksize of them per task), partition, reduce.
 * *results receives the reduced pairs (malloc'd; free with
 * mr_pairs_free), *nresults their number.  0 or a pool error code. */
int simple_mapreduce_run(simple_mapreduce *mr, const mp_pool_bytes *inputs, size_t n,
                         size_t chunksize, mr_pair **results, size_t *nresults);

/* The same with the pool in context ctx (NULL: the default; "mpi": workers
 * that are MPI processes). */
simple_mapreduce *simple_mapreduce_new_ctx(mp_pool_bytes_fn map_func,
                                           mp_pool_bytes_fn reduce_func, int num_workers,
                                           mp_context *ctx);

void simple_mapreduce_free(simple_mapreduce *mr);
void mr_pairs_free(mr_pair *pairs, size_t n);

/* In map_func and reduce_func: emit one pair. */
int mr_emit(mp_pool_out *out, const void *key, size_t key_len, uint64_t value);

/* In reduce_func: the key and the values of its input.  values points into
 * the input (unaligned: read each with memcpy, or use mr_value). */
void mr_reduce_input(const void *in, size_t in_size, const char **key, size_t *key_len,
                     const unsigned char **values, size_t *nvalues);
uint64_t mr_value(const unsigned char *values, size_t i);

#endif
