/* test_queues_slow.c: the long and heavy queue tests (suite slow): 4
 * producers x 4 consumers x 1e6 messages each, checksummed, and a 1 GiB
 * message (2 GiB of memory at its peak), and producers and consumers
 * killed at random while the others work (test_chaos_kills). */
#define MPT_QUEUES_SLOW 1
#include "test_queues.c"
