/*
 * fuzz_mgr_request: the manager's request decoder and dispatcher
 * (mgr_server.c, mp__srv_handle), which a manager's server runs on every
 * message a client sends (mgr_net.c, mgr_chan.c).
 *
 * One input is a session against a fresh server table: a sequence of
 * requests, each a 2-byte big-endian length and that many bytes, so that
 * a request can use an object an earlier one created.  Requests are
 * handled with may_block false, as the in-process channel does.
 */
#include <libmp.h>
#include "internal/managers.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mp_manager *manager(void)
{
    static mp_manager *m;
    if (m == NULL && (m = mp_manager_new()) == NULL)
        abort();
    return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mgr_srv *s = mp__srv_new(manager());
    if (s == NULL)
        return 0;
    size_t pos = 0;
    while (pos + 2 <= size) {
        size_t n = (size_t)data[pos] << 8 | data[pos + 1];
        pos += 2;
        if (n > size - pos)
            n = size - pos;
        mp__buf out = {0};
        int r = mp__srv_handle(s, data + pos, n, &out, false);
        mp__buf_free(&out);
        pos += n;
        if (r != 0)
            break; /* shutdown (1), or out of memory */
    }
    mp__srv_free(s);
    return 0;
}
