/*
 * fuzz_auth: the authkey handshake (auth.c) against a peer that sends
 * anything: as the deliverer (the peer's reply is fuzzed), as the answerer
 * (the peer's challenge and verdict are fuzzed), and both in turn, as the
 * forkserver's channels do.  The first input byte picks the role; the rest
 * is the stream, framed like any connection's.
 */
#include <libmp.h>
#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "fuzz-authkey";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int peer;
    int fd = fuzz_stream(data + 1, size - 1, &peer);
    if (fd < 0)
        return 0;
    mp_connection *c = mp_connection_from_fd(fd, true, true);
    if (c == NULL)
        abort();
    int r;
    switch (data[0] % 3) {
    case 0:
        r = mp_deliver_challenge(c, key, sizeof key - 1);
        break;
    case 1:
        r = mp_answer_challenge(c, key, sizeof key - 1);
        break;
    default:
        r = mp_answer_challenge(c, key, sizeof key - 1);
        if (r == 0)
            r = mp_deliver_challenge(c, key, sizeof key - 1);
        break;
    }
    if (r > 0)
        abort(); /* codes are 0 or negative */
    mp_connection_close(c);
    close(peer);
    return 0;
}
