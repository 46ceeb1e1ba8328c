/*
 * queue_zero_copy: pass large messages without copying them.  The producer
 * allocates each message in the shared heap (mp_shared_alloc), fills it
 * and puts only the pointer on a Queue; the consumer reads the message
 * where it is and frees it (mp_shared_free).  A block of the shared heap
 * has the same address in every process of the family, so the pointer is
 * valid on the other side under fork, spawn and forkserver alike.  A
 * bounded queue keeps the producer at most a few messages ahead.
 *
 * Python has no direct equivalent: its Queue pickles and copies every
 * object (multiprocessing.shared_memory is the nearest thing).
 */
#include <libmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MESSAGES 64
#define MSG_SIZE ((size_t)1 << 20)

struct msg {
    uint64_t seq;
    unsigned char data[MSG_SIZE - sizeof(uint64_t)];
};

static int produce(void *arg, size_t size)
{
    mp_queue *q = *(mp_queue **)arg;
    for (uint64_t i = 0; i <= MESSAGES; i++) {
        struct msg *m = NULL;
        if (i < MESSAGES) { /* the last pointer put is NULL: the end */
            m = mp_shared_alloc_uninit(sizeof *m);
            if (m == NULL)
                return 1;
            m->seq = i;
            memset(m->data, (int)(i & 0xff), sizeof m->data);
        }
        /* Ownership of *m passes to whoever gets the pointer. */
        if (mp_queue_put(q, &m, sizeof m, MP_FOREVER) != 0)
            return 1;
    }
    return 0;
}

static int intact(const struct msg *m, uint64_t seq)
{
    if (m->seq != seq)
        return 0;
    for (size_t i = 0; i < sizeof m->data; i++)
        if (m->data[i] != (unsigned char)(seq & 0xff))
            return 0;
    return 1;
}

int main(void)
{
    mp_queue *q = mp_queue_new(.maxsize = 4);
    mp_process *p = mp_process_new(.target = produce, .arg = &q, .arg_size = sizeof q);
    if (q == NULL || p == NULL || mp_process_start(p) != 0)
        return 1;
    uint64_t got = 0, good = 0;
    for (;;) {
        struct msg *m;
        size_t len = 0;
        if (mp_queue_get(q, &m, sizeof m, &len, MP_FOREVER) != 0 || len != sizeof m)
            return 1;
        if (m == NULL)
            break;
        good += (uint64_t)intact(m, got);
        got++;
        if (mp_shared_free(m) != 0)
            return 1;
    }
    printf("received %llu messages of %zu bytes without copying, %llu intact\n",
           (unsigned long long)got, sizeof(struct msg), (unsigned long long)good);
    int rc = mp_process_join(p, MP_FOREVER);
    int code = -1;
    if (rc == 0)
        rc = mp_process_exitcode(p, &code);
    mp_process_free(p);
    mp_queue_free(q);
    return rc == 0 && code == 0 && good == MESSAGES ? 0 : 1;
}
