/*
 * libmp_connection.c: Pipe round trip of 64 B (issue 4), two ways, each
 * beside the raw transport it is built on (raw.c):
 *
 * lm_pipe_pingpong         two one-way Pipes (mp_pipe(false, ...), two
 *                          pipe(2)s), as Python's Pipe(duplex=False):
 *                          raw: raw_pipe_pingpong.
 * lm_pipe_duplex_pingpong  one duplex Pipe (mp_pipe(true, ...), an AF_UNIX
 *                          socketpair), Python's default Pipe():
 *                          raw: raw_socketpair_pingpong.
 *
 * ping = mp_connection_send of 64 bytes, then mp_connection_recv_bytes_into
 * the caller's buffer (no allocation); the child echoes every message until
 * a one-byte "q".  The forked child inherits the fds, as a child of
 * Python's fork context does.
 */
#include "benches.h"

#include <libmp.h>

#include <string.h>

#define CPP_MSG 64

struct conn_pp {
    mp_connection *parent_w, *parent_r; /* parent: sends pings, reads pongs */
    mp_connection *child_r, *child_w;
    mp_connection *own[4]; /* every object, to free */
    unsigned char buf[CPP_MSG];
};

static int conn_serve(void *arg)
{
    struct conn_pp *p = arg;
    unsigned char msg[CPP_MSG];
    for (;;) {
        size_t n = 0;
        if (mp_connection_recv_bytes_into(p->child_r, msg, sizeof msg, 0, &n) != 0)
            return 1;
        if (n == 1 && msg[0] == 'q')
            return 0;
        if (mp_connection_send(p->child_w, msg, n) != 0)
            return 1;
    }
}

static int conn_ping(void *arg)
{
    struct conn_pp *p = arg;
    size_t n = 0;
    int r = mp_connection_send(p->parent_w, p->buf, CPP_MSG);
    if (r == 0)
        r = mp_connection_recv_bytes_into(p->parent_r, p->buf, CPP_MSG, 0, &n);
    if (r == 0 && n != CPP_MSG)
        r = -1;
    return r;
}

static int conn_quit(void *arg)
{
    struct conn_pp *p = arg;
    return mp_connection_send(p->parent_w, "q", 1);
}

static int conn_run(const bench_ctx *ctx, struct conn_pp *p, int made, bench_result *out)
{
    static const bench_pingpong_ops ops = {conn_serve, conn_ping, conn_quit};
    int rc;
    if (made != 0)
        rc = bench_fail(out, "mp_pipe: %s", mp_strerror(made));
    else
        rc = bench_run_pingpong(ctx, &ops, p, out);
    for (int i = 0; i < 4; i++)
        mp_connection_free(p->own[i]);
    return rc;
}

int lm_pipe_pingpong(const bench_ctx *ctx, bench_result *out)
{
    struct conn_pp p = {0};
    mp_connection *r1, *w1, *r2, *w2;
    memset(p.buf, 'p', CPP_MSG);
    /* mp_pipe(false, &reader, &writer): one pipe each way. */
    int made = mp_pipe(false, &r1, &w1);
    if (made == 0) {
        made = mp_pipe(false, &r2, &w2);
        if (made != 0) {
            mp_connection_free(r1);
            mp_connection_free(w1);
            r1 = w1 = NULL;
        }
    }
    if (made == 0) {
        p.parent_w = w1, p.child_r = r1;
        p.child_w = w2, p.parent_r = r2;
        p.own[0] = r1, p.own[1] = w1, p.own[2] = r2, p.own[3] = w2;
    }
    return conn_run(ctx, &p, made, out);
}

int lm_pipe_duplex_pingpong(const bench_ctx *ctx, bench_result *out)
{
    struct conn_pp p = {0};
    mp_connection *a, *b;
    memset(p.buf, 'p', CPP_MSG);
    int made = mp_pipe(true, &a, &b);
    if (made == 0) {
        p.parent_w = p.parent_r = a;
        p.child_r = p.child_w = b;
        p.own[0] = a, p.own[1] = b;
    }
    return conn_run(ctx, &p, made, out);
}
