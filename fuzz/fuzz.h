/*
 * fuzz.h: helpers shared by the libFuzzer harnesses.
 */
#ifndef MP_FUZZ_H
#define MP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Inputs longer than this are ignored: they must fit a socket's buffer,
 * so that writing them before the library reads never blocks. */
#define FUZZ_STREAM_MAX 65536

/*
 * A connected Unix stream pair with data already written to *peer and the
 * peer's write side shut down: the library reads data then end of stream,
 * and what it writes back lands in the peer's buffer (no SIGPIPE, no block).
 * Returns the library's end, or -1.
 */
static inline int fuzz_stream(const uint8_t *data, size_t size, int *peer)
{
    int sv[2];
    if (size > FUZZ_STREAM_MAX || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    int big = 4 * FUZZ_STREAM_MAX;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(sv[1], data + off, size - off);
        if (w <= 0)
            abort(); /* the buffer is large enough: a harness bug */
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);
    *peer = sv[1];
    return sv[0];
}

#endif
