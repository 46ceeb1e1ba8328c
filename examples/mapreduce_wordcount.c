/*
 * mapreduce_wordcount: count the words of text files with SimpleMapReduce
 * (PyMOTW multiprocessing_wordcount.py, with mapreduce.c as
 * multiprocessing_mapreduce.py).
 *
 *     mapper = SimpleMapReduce(file_to_words, count_words)
 *     word_counts = mapper(input_files)
 *     word_counts.sort(key=operator.itemgetter(1)); word_counts.reverse()
 *     print '\nTOP 20 WORDS BY FREQUENCY\n'
 *     for word, count in top20:
 *         print '%-*s: %5s' % (longest+1, word, count)
 *
 * Usage: mapreduce_wordcount [--mpi] FILE...   (the project's docs/\*.md, say)
 *
 * With --mpi the pool's workers are MPI processes (docs/mpi.md): run it as
 * "mpiexec -n 1 mapreduce_wordcount --mpi FILES" (spawned workers) or
 * "mpiexec -n N mapreduce_wordcount --mpi FILES" (ranks 1..N-1 work); the
 * top 20 is the same as the local run's.
 *
 * The words are those of the original: lines whose text starts with ".."
 * are skipped, punctuation becomes spaces, the rest is split at white
 * space, lowercased, and the words made only of letters that are not stop
 * words are counted.  Files are read as bytes: letters are ASCII letters.
 */
#include "mapreduce.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const STOP_WORDS[] = {
    "a",  "an", "and", "are", "as", "be",  "for", "if", "in",
    "is", "it", "of",  "or",  "py", "rst", "the", "to", "with",
};

static bool stop_word(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof STOP_WORDS / sizeof *STOP_WORDS; i++)
        if (strlen(STOP_WORDS[i]) == n && memcmp(STOP_WORDS[i], w, n) == 0)
            return true;
    return false;
}

/* Read a file and return a sequence of (word, 1) values. */
static int file_to_words(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)in_size, (const char *)in);
    printf("%s reading %s\n", mp_process_name(mp_current_process()), path);
    fflush(stdout);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        mp_pool_set_error("cannot open %s", path);
        return -errno;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int r = 0;
    while (r == 0 && (len = getline(&line, &cap, f)) >= 0) {
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '.' && p[1] == '.')
            continue; /* skip comment lines */
        for (ssize_t i = 0; i < len; i++)
            if (ispunct((unsigned char)line[i]))
                line[i] = ' ';
        for (char *w = line; r == 0 && w < line + len;) {
            while (w < line + len && isspace((unsigned char)*w))
                w++;
            char *e = w;
            bool alpha = true;
            while (e < line + len && !isspace((unsigned char)*e)) {
                alpha = alpha && isalpha((unsigned char)*e);
                *e = (char)tolower((unsigned char)*e);
                e++;
            }
            if (e > w && alpha && !stop_word(w, (size_t)(e - w)))
                r = mr_emit(out, w, (size_t)(e - w), 1);
            w = e;
        }
    }
    free(line);
    fclose(f);
    return r;
}

/* The partitioned data for a word -> (word, number of occurrences). */
static int count_words(const void *in, size_t in_size, mp_pool_out *out, void *arg)
{
    const char *word;
    const unsigned char *values;
    size_t len, n;
    mr_reduce_input(in, in_size, &word, &len, &values, &n);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += mr_value(values, i);
    return mr_emit(out, word, len, sum);
}

static int by_count(const void *a, const void *b)
{
    const mr_pair *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? 1 : -1;
    return strcmp(x->key, y->key);
}

int main(int argc, char **argv)
{
    mp_context *ctx = NULL;
    if (argc > 1 && strcmp(argv[1], "--mpi") == 0) {
        /* World mode: ranks other than 0 serve the pool and end here. */
        int r = mp_mpi_main(&argc, &argv);
        ctx = r == 0 ? mp_get_context("mpi") : NULL;
        if (ctx == NULL) {
            fprintf(stderr, "mapreduce_wordcount: no MPI: %s\n",
                    mp_strerror(r != 0 ? r : mp_last_error()));
            return 1;
        }
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    mp_pool_bytes *inputs = calloc(argc > 1 ? (size_t)argc - 1 : 1, sizeof *inputs);
    for (int i = 1; i < argc; i++) {
        inputs[i - 1].data = argv[i];
        inputs[i - 1].size = strlen(argv[i]);
    }
    simple_mapreduce *mapper = simple_mapreduce_new_ctx(file_to_words, count_words, 0, ctx);
    if (mapper == NULL) {
        fprintf(stderr, "mapreduce_wordcount: %s\n", mp_strerror(mp_last_error()));
        return 1;
    }
    mr_pair *word_counts;
    size_t n;
    int r = simple_mapreduce_run(mapper, inputs, (size_t)argc - 1, 1, &word_counts, &n);
    simple_mapreduce_free(mapper);
    free(inputs);
    if (r != 0) {
        fprintf(stderr, "mapreduce_wordcount: %s: %s\n", mp_strerror(r),
                mp_pool_error_message());
        return 1;
    }
    qsort(word_counts, n, sizeof *word_counts, by_count);

    printf("\nTOP 20 WORDS BY FREQUENCY\n\n");
    size_t top = n < 20 ? n : 20, longest = 0;
    for (size_t i = 0; i < top; i++)
        if (word_counts[i].key_len > longest)
            longest = word_counts[i].key_len;
    for (size_t i = 0; i < top; i++)
        printf("%-*s: %5llu\n", (int)longest + 1, word_counts[i].key,
               (unsigned long long)word_counts[i].value);
    mr_pairs_free(word_counts, n);
    return 0;
}
