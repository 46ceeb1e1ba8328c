/*
 * mgr_peer.c: an unrelated program that test_managers starts to use a
 * manager over a socket.
 *
 *   mgr_peer ADDRESS KEY MODE
 *
 * ADDRESS is host:port (AF_INET) or a path (AF_UNIX).  MODE:
 *   use       connect, take the shared dict "shared_dict", read 'from_test'
 *             and store it back under 'from_peer' with one added; use a
 *             hosted queue; exit 0 when all went as expected
 *   badkey    connect with KEY (a wrong one): expect MP_EAUTH
 *   garbage   send malformed requests on a raw authenticated connection:
 *             each must get an error reply (or the connection closes)
 *   shutdown  connect and shut the server down
 * The exit status says which check failed (0: none).
 */
#include <libmp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mp_manager *new_manager(const char *addr, const char *key)
{
    const char *colon = strrchr(addr, ':');
    if (addr[0] != '/' && colon != NULL) {
        char host[64];
        snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
        return mp_manager_new(.host = host, .port = atoi(colon + 1), .authkey = key,
                              .authkey_len = strlen(key));
    }
    return mp_manager_new(.path = addr, .authkey = key, .authkey_len = strlen(key));
}

static int use(mp_manager *m)
{
    mp_proxy *d = mp_manager_create(m, "shared_dict", NULL);
    if (d == NULL)
        return 10;
    mp_val *v;
    int64_t x;
    if (mp_dict_getitem(d, MP_STR("from_test"), &v) != 0 || mp_val_as_int(v, &x) != 0)
        return 11;
    mp_val_free(v);
    if (mp_dict_set(d, MP_STR("from_peer"), MP_I64(x + 1)) != 0)
        return 12;
    if (mp_proxy_native(d) != NULL)
        return 13;
    mp_proxy *q = mp_manager_queue(m, 0);
    if (q == NULL || mp_proxy_native(q) != NULL)
        return 14;
    if (mp_proxy_put(q, MP_LIST(MP_I64(42), MP_NONE, MP_STR("hello")), MP_FOREVER) != 0)
        return 15;
    if (mp_proxy_get(q, 5, &v) != 0)
        return 16;
    char *s = mp_val_repr(v);
    int bad = strcmp(s, "[42, None, 'hello']") != 0;
    free(s);
    mp_val_free(v);
    if (bad)
        return 17;
    if (mp_proxy_get(q, 0.05, &v) != MP_EEMPTY)
        return 18;
    mp_proxy *l = mp_manager_lock(m);
    if (l == NULL || mp_proxy_acquire(l, MP_FOREVER) != 0 ||
        mp_proxy_acquire(l, 0.05) != MP_ETIMEDOUT || mp_proxy_release(l) != 0)
        return 19;
    mp_proxy_free(l);
    mp_proxy_free(q);
    mp_proxy_free(d);
    return 0;
}

static int garbage(const char *addr, const char *key)
{
    mp_connection *c;
    const char *colon = strrchr(addr, ':');
    if (addr[0] != '/' && colon != NULL) {
        char host[64];
        snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
        c = mp_client(.host = host, .port = atoi(colon + 1), .authkey = key,
                      .authkey_len = strlen(key));
    } else {
        c = mp_client(.path = addr, .authkey = key, .authkey_len = strlen(key));
    }
    if (c == NULL)
        return 30;
    unsigned seed = 12345;
    for (int i = 0; i < 2000; i++) {
        unsigned char msg[64];
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof msg);
        for (size_t k = 0; k < n; k++)
            msg[k] = (unsigned char)rand_r(&seed);
        if (n > 0 && msg[0] == 5)
            msg[0] = 1; /* not a shutdown */
        if (mp_connection_send_bytes(c, msg, sizeof msg, 0, n) != 0)
            return 31;
        void *rep;
        size_t len;
        int r = mp_connection_recv_bytes(c, &rep, &len, 1 << 20);
        if (r != 0)
            return 32;
        /* Garbage never succeeds as a call, but a PING-like message may. */
        if (len == 0 || (((unsigned char *)rep)[0] != 1 && ((unsigned char *)rep)[0] != 0)) {
            free(rep);
            return 33;
        }
        free(rep);
    }
    mp_connection_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    const char *addr = argv[1], *key = argv[2], *mode = argv[3];
    if (strcmp(mode, "garbage") == 0)
        return garbage(addr, key);
    mp_manager *m = new_manager(addr, key);
    if (m == NULL)
        return 3;
    int r = mp_manager_connect(m);
    int rc;
    if (strcmp(mode, "badkey") == 0)
        rc = r == MP_EAUTH ? 0 : 40;
    else if (r != 0)
        rc = 4;
    else if (strcmp(mode, "use") == 0)
        rc = use(m);
    else if (strcmp(mode, "shutdown") == 0)
        rc = mp_manager_shutdown(m) == 0 ? 0 : 50;
    else
        rc = 5;
    mp_manager_free(m);
    return rc;
}
