/*
 * queue_basic: a child puts [42, None, 'hello'] on a Queue and the parent
 * prints it (Python documentation, "Exchanging objects between processes").
 *
 * Python pickles the list.  Here the list is encoded as bytes by a tiny
 * serializer: one tag byte per item (i: 32-bit integer, n: None, s: string
 * with a 32-bit length), so the value crosses the queue intact and the
 * parent prints it in Python's notation.
 */
#include <libmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    unsigned char data[256];
    size_t len;
};

static void put_bytes(struct buf *b, const void *p, size_t n)
{
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void put_int(struct buf *b, int32_t v)
{
    put_bytes(b, "i", 1);
    put_bytes(b, &v, sizeof v);
}

static void put_none(struct buf *b)
{
    put_bytes(b, "n", 1);
}

static void put_str(struct buf *b, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    put_bytes(b, "s", 1);
    put_bytes(b, &n, sizeof n);
    put_bytes(b, s, n);
}

/* Print the encoded list as Python's repr would; 0, or -1 if malformed. */
static int print_list(const unsigned char *p, size_t len)
{
    size_t i = 0;
    printf("[");
    for (int first = 1; i < len; first = 0) {
        if (!first)
            printf(", ");
        unsigned char tag = p[i++];
        if (tag == 'i' && i + 4 <= len) {
            int32_t v;
            memcpy(&v, p + i, 4);
            i += 4;
            printf("%d", (int)v);
        } else if (tag == 'n') {
            printf("None");
        } else if (tag == 's' && i + 4 <= len) {
            uint32_t n;
            memcpy(&n, p + i, 4);
            i += 4;
            if (n > len - i)
                return -1;
            printf("'%.*s'", (int)n, (const char *)p + i);
            i += n;
        } else {
            return -1;
        }
    }
    printf("]\n");
    return 0;
}

static int f(void *arg, size_t size)
{
    mp_queue *q = *(mp_queue **)arg;
    struct buf b = {.len = 0};
    put_int(&b, 42);
    put_none(&b);
    put_str(&b, "hello");
    return mp_queue_put(q, b.data, b.len, MP_FOREVER) == 0 ? 0 : 1;
}

int main(void)
{
    mp_queue *q = mp_queue_new();
    mp_process *p = mp_process_new(.target = f, .arg = &q, .arg_size = sizeof q);
    if (q == NULL || p == NULL || mp_process_start(p) != 0)
        return 1;
    void *msg = NULL;
    size_t len = 0;
    if (mp_queue_get_alloc(q, &msg, &len, MP_FOREVER) != 0) /* prints "[42, None, 'hello']" */
        return 1;
    int rc = print_list(msg, len);
    free(msg);
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    mp_queue_free(q);
    return rc == 0 ? 0 : 1;
}
