/*
 * auth.c: the authkey challenge of multiprocessing.connection.
 *
 * The delivering side (a Listener) sends "#CHALLENGE#" followed by a
 * message; the answering side (a Client) replies with an HMAC of the message
 * keyed with the authkey; the deliverer answers "#WELCOME#" or "#FAILURE#".
 * Every message is framed like any other and limited to 256 bytes.
 *
 * CPython 3.12+ sends "{sha256}" + 40 random bytes and expects the reply
 * "{sha256}" + HMAC-SHA256 (the MAC covers the prefix too).  CPython 3.11
 * and earlier send 20 random bytes and reply with the bare 16-byte HMAC-MD5.
 * A modern deliverer accepts a bare 16-byte reply as HMAC-MD5, and a modern
 * answerer recognises a 20-byte challenge as the old form, which is how
 * both generations talk to each other.
 */
#include "internal/conn.h"

#include <string.h>
#include <sys/random.h>

#define CHALLENGE "#CHALLENGE#"
#define WELCOME "#WELCOME#"
#define FAILURE "#FAILURE#"
#define CHALLENGE_LEN (sizeof CHALLENGE - 1)
#define MESSAGE_LENGTH 40 /* random bytes in a modern challenge */
#define MD5ONLY_LENGTH 20 /* a legacy challenge's length */
#define MD5_DIGEST_LENGTH 16
#define MAX_AUTH_MESSAGE 256
#define MAX_DIGEST_NAME 8 /* "sha3_384", the longest name CPython allows */

/* Receive one handshake message of at most 256 bytes. */
static int recv_small(mp_connection *c, unsigned char *buf, size_t *len)
{
    int r = mp_connection_recv_bytes_into(c, buf, MAX_AUTH_MESSAGE, 0, len);
    return r == MP_ETOOSHORT ? MP_EAUTH : r;
}

/*
 * Split a challenge or a reply into its digest and payload.  The 16- and
 * 20-byte lengths of the old protocol mean HMAC-MD5 without a prefix
 * (*prefixed false); anything else must start with "{name}".  Returns 0, or
 * MP_EAUTH for a missing prefix or a digest this library does not have.
 */
static int split_digest(const unsigned char *m, size_t len, const mp__hash_alg **alg,
                        bool *prefixed, const unsigned char **payload, size_t *plen)
{
    if (len == MD5ONLY_LENGTH || len == MD5_DIGEST_LENGTH) {
        *alg = &mp__md5;
        *prefixed = false;
        *payload = m;
        *plen = len;
        return 0;
    }
    if (len < 2 || m[0] != '{')
        return MP_EAUTH;
    const unsigned char *end = memchr(m + 1, '}',
                                      len - 1 < MAX_DIGEST_NAME + 1 ? len - 1
                                                                    : MAX_DIGEST_NAME + 1);
    if (end == NULL || end == m + 1)
        return MP_EAUTH;
    *alg = mp__hash_find((const char *)m + 1, (size_t)(end - m - 1));
    if (*alg == NULL)
        return MP_EAUTH;
    *prefixed = true;
    *payload = end + 1;
    *plen = len - (size_t)(end + 1 - m);
    return 0;
}

static int check_key(mp_connection *c, const void *authkey, size_t len)
{
    if (mp__obj_check(c, MP__CONN_MAGIC) != 0 || (authkey == NULL && len > 0))
        return MP_EINVAL;
    return 0;
}

static int random_bytes(unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return mp__errno();
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Whether the reply is the right MAC of message under authkey. */
static bool reply_ok(const void *authkey, size_t keylen, const unsigned char *message,
                     size_t mlen, const unsigned char *reply, size_t rlen)
{
    const mp__hash_alg *alg;
    const unsigned char *mac;
    size_t maclen;
    bool prefixed;
    if (split_digest(reply, rlen, &alg, &prefixed, &mac, &maclen) != 0)
        return false;
    unsigned char expected[MP__HASH_MAX_DIGEST];
    mp__hmac(alg, authkey, keylen, message, mlen, expected);
    return maclen == alg->digest_len && mp__bytes_equal(expected, mac, maclen);
}

int mp_deliver_challenge(mp_connection *c, const void *authkey, size_t len)
{
    int r = check_key(c, authkey, len);
    if (r != 0)
        return r;
    static const char prefix[] = "{sha256}";
    unsigned char out[CHALLENGE_LEN + sizeof prefix - 1 + MESSAGE_LENGTH];
    unsigned char *message = out + CHALLENGE_LEN;
    size_t mlen = sizeof prefix - 1 + MESSAGE_LENGTH;
    memcpy(out, CHALLENGE, CHALLENGE_LEN);
    memcpy(message, prefix, sizeof prefix - 1);
    r = random_bytes(message + sizeof prefix - 1, MESSAGE_LENGTH);
    if (r == 0)
        r = mp_connection_send(c, out, sizeof out);
    if (r != 0)
        return r;
    unsigned char reply[MAX_AUTH_MESSAGE];
    size_t rlen;
    r = recv_small(c, reply, &rlen);
    if (r != 0 && r != MP_EAUTH)
        return r;
    if (r == 0 && reply_ok(authkey, len, message, mlen, reply, rlen))
        return mp_connection_send(c, WELCOME, sizeof WELCOME - 1);
    r = mp_connection_send(c, FAILURE, sizeof FAILURE - 1);
    return r == 0 || r == -EPIPE || r == -ECONNRESET ? MP_EAUTH : r;
}

int mp_answer_challenge(mp_connection *c, const void *authkey, size_t len)
{
    int r = check_key(c, authkey, len);
    if (r != 0)
        return r;
    unsigned char m[MAX_AUTH_MESSAGE];
    size_t mlen;
    r = recv_small(c, m, &mlen);
    if (r != 0)
        return r;
    if (mlen < CHALLENGE_LEN + MD5ONLY_LENGTH || memcmp(m, CHALLENGE, CHALLENGE_LEN) != 0)
        return MP_EAUTH;
    const unsigned char *message = m + CHALLENGE_LEN;
    mlen -= CHALLENGE_LEN;

    const mp__hash_alg *alg;
    const unsigned char *payload;
    size_t plen;
    bool prefixed;
    r = split_digest(message, mlen, &alg, &prefixed, &payload, &plen);
    if (r != 0)
        return r;
    /* The reply: "{name}" (modern form only) and the MAC of the whole
     * message, prefix included. */
    unsigned char reply[MAX_DIGEST_NAME + 2 + MP__HASH_MAX_DIGEST];
    size_t rlen = 0;
    if (prefixed) {
        size_t nlen = strlen(alg->name);
        reply[rlen++] = '{';
        memcpy(reply + rlen, alg->name, nlen);
        rlen += nlen;
        reply[rlen++] = '}';
    }
    mp__hmac(alg, authkey, len, message, mlen, reply + rlen);
    rlen += alg->digest_len;
    r = mp_connection_send(c, reply, rlen);
    if (r != 0)
        return r;
    unsigned char verdict[MAX_AUTH_MESSAGE];
    size_t vlen;
    r = recv_small(c, verdict, &vlen);
    if (r != 0)
        return r;
    if (vlen != sizeof WELCOME - 1 || memcmp(verdict, WELCOME, vlen) != 0)
        return MP_EAUTH;
    return 0;
}
