/*
 * pipe_basic: a child sends [42, None, 'hello'] to its parent through a Pipe
 * (the Python documentation's Pipe example).
 *
 * Python pickles the list; C has no pickle, so the child writes the three
 * values in a small tagged byte format of its own and the parent reads them
 * back and prints them as Python would.
 */
#include <libmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The encoding: 'i' + 4-byte int, 'n' for None, 's' + 4-byte length + bytes. */
static size_t put_int(unsigned char *p, int32_t v)
{
    p[0] = 'i';
    memcpy(p + 1, &v, sizeof v);
    return 1 + sizeof v;
}

static size_t put_none(unsigned char *p)
{
    p[0] = 'n';
    return 1;
}

static size_t put_str(unsigned char *p, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    p[0] = 's';
    memcpy(p + 1, &n, sizeof n);
    memcpy(p + 1 + sizeof n, s, n);
    return 1 + sizeof n + n;
}

/* Print the encoded list as Python's print() shows a list. */
static int print_list(const unsigned char *p, size_t len)
{
    size_t i = 0;
    printf("[");
    while (i < len) {
        if (i > 0)
            printf(", ");
        if (p[i] == 'i' && i + 5 <= len) {
            int32_t v;
            memcpy(&v, p + i + 1, sizeof v);
            printf("%d", (int)v);
            i += 5;
        } else if (p[i] == 'n') {
            printf("None");
            i += 1;
        } else if (p[i] == 's' && i + 5 <= len) {
            uint32_t n;
            memcpy(&n, p + i + 1, sizeof n);
            if (i + 5 + n > len)
                return -1;
            printf("'%.*s'", (int)n, (const char *)p + i + 5);
            i += 5 + n;
        } else {
            return -1;
        }
    }
    printf("]\n");
    return 0;
}

static int f(void *arg, size_t size)
{
    mp_connection *conn = *(mp_connection **)arg;
    unsigned char msg[64];
    size_t n = put_int(msg, 42);
    n += put_none(msg + n);
    n += put_str(msg + n, "hello");
    int r = mp_connection_send(conn, msg, n);
    mp_connection_close(conn);
    return r == 0 ? 0 : 1;
}

int main(void)
{
    mp_connection *parent_conn, *child_conn;
    if (mp_pipe(true, &parent_conn, &child_conn) != 0)
        return 1;
    mp_process *p = mp_process_new(.target = f, .arg = &child_conn,
                                   .arg_size = sizeof child_conn);
    if (p == NULL || mp_process_start(p) != 0) {
        fprintf(stderr, "pipe_basic: %s\n", mp_strerror(mp_last_error()));
        return 1;
    }
    void *buf;
    size_t len;
    int r = mp_connection_recv(parent_conn, &buf, &len);
    if (r != 0) {
        fprintf(stderr, "pipe_basic: recv: %s\n", mp_strerror(r));
        return 1;
    }
    if (print_list(buf, len) != 0)
        fprintf(stderr, "pipe_basic: malformed message\n");
    free(buf);
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    mp_connection_free(parent_conn);
    mp_connection_free(child_conn);
    return 0;
}
