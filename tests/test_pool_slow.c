/* test_pool_slow.c: the long pool tests (suite slow): many workers killed
 * during maps and apply_async floods, terminate again and again under
 * load, maps of 16 M items. */
#define MPT_POOL_SLOW 1
#include "test_pool.c"
