/* test_queues_slow.c: the long queue test (suite slow): 4 producers x 4
 * consumers x 1e6 messages each, checksummed. */
#define MPT_QUEUES_SLOW 1
#include "test_queues.c"
