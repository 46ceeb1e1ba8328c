/*
 * internal/conn.h: helpers shared by connection.c, auth.c and digest.c,
 * and reached by tests/test_connection.c through the static library.
 */
#ifndef LIBMP_INTERNAL_CONN_H
#define LIBMP_INTERNAL_CONN_H

#include "mp.h"

#include <sys/socket.h>

/* ---- message digests and HMAC (digest.c) -------------------------------- */

#define MP__HASH_MAX_DIGEST 64 /* SHA-512's state; SHA-384 outputs 48 */
#define MP__HASH_MAX_BLOCK 128

typedef struct mp__hash mp__hash;

/* One hash function.  The tables are static and process-local. */
typedef struct mp__hash_alg {
    const char *name;  /* as Python's hashlib names it: "md5", "sha256" */
    size_t digest_len; /* bytes of output */
    size_t block_len;  /* bytes per compression block */
    void (*init)(mp__hash *h);
    void (*compress)(mp__hash *h, const unsigned char *block);
    void (*finish)(mp__hash *h, unsigned char *out);
} mp__hash_alg;

struct mp__hash {
    const mp__hash_alg *alg;
    union {
        uint32_t w32[8];
        uint64_t w64[8];
    } state;
    uint64_t bytes; /* message bytes hashed so far */
    size_t used;    /* bytes waiting in buf */
    unsigned char buf[MP__HASH_MAX_BLOCK];
};

extern const mp__hash_alg mp__md5, mp__sha256, mp__sha384;

/* The algorithm called name (len bytes, not NUL-terminated), or NULL. */
const mp__hash_alg *mp__hash_find(const char *name, size_t len);

void mp__hash_init(mp__hash *h, const mp__hash_alg *alg);
void mp__hash_update(mp__hash *h, const void *data, size_t len);
/* Writes alg->digest_len bytes to out; h must be initialised again to reuse. */
void mp__hash_final(mp__hash *h, unsigned char *out);

/* out = HMAC-alg(key, msg) (RFC 2104); alg->digest_len bytes. */
void mp__hmac(const mp__hash_alg *alg, const void *key, size_t key_len, const void *msg,
              size_t msg_len, unsigned char *out);

/* Constant-time comparison of two byte strings of length n: true if equal. */
bool mp__bytes_equal(const void *a, const void *b, size_t n);

/* ---- framing (connection.c) --------------------------------------------- */

/*
 * The length header of CPython's multiprocessing.connection: a 4-byte
 * big-endian signed length, or for messages longer than 0x7fffffff bytes
 * the 4 bytes of -1 followed by an 8-byte big-endian unsigned length.
 */
#define MP__HEADER_SMALL 4
#define MP__HEADER_LARGE 12
#define MP__SMALL_MAX 0x7fffffffu

/* Encode the header for a message of n bytes; returns its size (4 or 12). */
size_t mp__frame_encode(unsigned char out[MP__HEADER_LARGE], uint64_t n);

/*
 * Decode the first 4 bytes of a header.  Returns 0 and the length in *n for
 * the small form, 1 when the 8-byte form follows (decode it with
 * mp__frame_decode_large), -EPROTO for a negative length other than -1.
 */
int mp__frame_decode(const unsigned char in[MP__HEADER_SMALL], uint64_t *n);
uint64_t mp__frame_decode_large(const unsigned char in[8]);

/* ---- connection objects (connection.c) ---------------------------------- */

#define MP__CONN_MAGIC MP__MAGIC('c', 'o', 'n', 'n')

/* Bytes read ahead from the stream and kept in the connection object. */
#define MP__CONN_RXBUF 4032

/*
 * The shared part of a connection.  The fd number is the same in every
 * process that holds the connection (docs/design.md section 1 item 4); each
 * process says whether it holds it through mp__fd_owned.
 *
 * The receive state below belongs with the stream, which every process that
 * holds the connection shares, so it lives in the shared object too: bytes
 * read ahead by one process are there for the next reader, whichever
 * process that is.
 */
struct mp_connection {
    mp__obj hdr;
    int fd;
    bool readable;
    bool writable;
    bool is_socket; /* written with send(MSG_NOSIGNAL), else write */
    /*
     * A header was read but its message was not (MP_ETOOSHORT, -EMSGSIZE):
     * the next receive takes pending_len instead of reading a header.
     */
    bool pending;
    uint64_t pending_len;
    uint32_t rx_start; /* read-ahead bytes are rx[rx_start .. rx_end) */
    uint32_t rx_end;
    unsigned char rx[MP__CONN_RXBUF];
};

/*
 * Wrap fd (already close-on-exec) in a new connection and register it in
 * this process.  On failure returns NULL with the code in *err and leaves
 * fd open.
 */
mp_connection *mp__connection_wrap(int fd, bool readable, bool writable, bool is_socket,
                                   int *err);

/*
 * The calling thread's deadline for the waits of connection I/O on an fd
 * that is non-blocking (NULL: wait forever).  The Listener and the Client
 * set it around the authkey handshake, on a socket they made non-blocking
 * for that time; a wait past it fails with MP_ETIMEDOUT.
 */
void mp__conn_set_io_deadline(const mp__deadline *d);

/* ---- fd passing (reduction.c) ---------------------------------------------- */

/* Keep n fds that a read of c received (one batch), for recv_fds. */
void mp__conn_stash_fds(const mp_connection *c, const int *fds, size_t n);

/* Close the fds kept for c in this process (c is being closed here). */
void mp__conn_stash_drop(const mp_connection *c);

/* Read exactly n raw bytes of c's stream (through its read-ahead): 0,
 * MP_EEOF at the end of the stream, or a negative code. */
int mp__conn_read_raw(mp_connection *c, void *buf, size_t n);

/* sendmsg m on c's socket, whole, resuming after EINTR: 0 or -errno. */
int mp__conn_sendmsg(mp_connection *c, struct msghdr *m);

/* 1 while pipes are written with pwritev2's RWF_NOSIGNAL; 0 after the
 * kernel refused it (tests set 0 to exercise the signal-mask fallback). */
extern _Atomic int mp__conn_rwf_nosignal;

#endif /* LIBMP_INTERNAL_CONN_H */
