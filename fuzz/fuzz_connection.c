/*
 * fuzz_connection: connection framing (connection.c), as read from a peer
 * that may send anything: the 4-byte (and 12-byte long) length headers and
 * the payloads, through each receive call.
 *
 * The first input byte picks the call and its limit; the rest is the
 * stream.  Every message is read until end of stream or an error.
 */
#include <libmp.h>
#include "fuzz.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    int peer;
    int fd = fuzz_stream(data + 1, size - 1, &peer);
    if (fd < 0)
        return 0;
    mp_connection *c = mp_connection_from_fd(fd, true, true);
    if (c == NULL)
        abort();
    size_t limit = (size_t)1 << (mode >> 2 & 31); /* 1 B .. 2 GiB */
    for (int i = 0; i < 64; i++) {
        void *buf = NULL;
        size_t len = 0;
        int r;
        if ((mode & 3) == 0) {
            r = mp_connection_recv(c, &buf, &len);
        } else if ((mode & 3) == 1) {
            r = mp_connection_recv_bytes(c, &buf, &len, limit);
        } else {
            char small[256];
            r = mp_connection_recv_bytes_into(c, small, sizeof small, (mode & 3) == 3 ? 17 : 0,
                                              &len);
        }
        free(buf);
        if (r != 0 && r != -EMSGSIZE && r != MP_ETOOSHORT)
            break; /* end of stream, or a stream that cannot be trusted */
    }
    mp_connection_close(c);
    close(peer);
    return 0;
}
