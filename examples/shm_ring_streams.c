/*
 * shm_ring_streams: several processes stream data to the parent through
 * shared-memory ring buffers, and the parent listens to all of them at once
 * (the appendix of "Python Multiprocessing - Right Way": a ring buffer in
 * POSIX shared memory synchronised with semaphores, plus a pipe to listen
 * on, all producers watched with one select-like call).
 *
 * Each producer owns a ring of SLOTS slots in a named shared memory segment.
 * It waits on the ring's "free" semaphore, writes a frame into the next slot
 * (header: length and checksum) and sends the slot number down its pipe.
 * The parent waits on every pipe and every producer's sentinel with a single
 * mp_connection_wait call, checks each frame against what the producer must
 * have sent, and releases the slot.
 */
#include <libmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRODUCERS 3
#define FRAMES 200
#define SLOTS 4
#define SLOT_DATA (64 * 1024)
#define DONE UINT32_MAX

struct slot {
    uint32_t len;
    uint32_t checksum;
    unsigned char data[SLOT_DATA];
};

struct stream {
    int id;
    mp_shared_memory *ring; /* SLOTS struct slot */
    mp_semaphore *free;     /* counts free slots */
    mp_connection *tx;      /* producer -> parent: "slot k is filled" */
    mp_connection *rx;
};

static uint32_t frame_len(int id, int frame)
{
    return (uint32_t)((frame * 7919u + (unsigned)id * 104729u) % SLOT_DATA) + 1;
}

static unsigned char frame_byte(int id, int frame, uint32_t i)
{
    return (unsigned char)((uint32_t)id * 31u + (uint32_t)frame * 17u + i * 13u);
}

static uint32_t checksum(const unsigned char *p, uint32_t len)
{
    uint32_t a = 1, b = 0; /* Adler-32 */
    for (uint32_t i = 0; i < len; i++) {
        a = (a + p[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    return b << 16 | a;
}

static int producer(void *arg, size_t size)
{
    (void)size;
    struct stream *s = *(struct stream **)arg;
    struct slot *ring = mp_shared_memory_buf(s->ring);
    if (ring == NULL)
        return 1;
    mp_connection_close(s->rx);
    for (int f = 0; f < FRAMES; f++) {
        uint32_t k = (uint32_t)f % SLOTS;
        if (mp_semaphore_acquire(s->free, MP_FOREVER) != 0)
            return 2;
        struct slot *sl = &ring[k];
        sl->len = frame_len(s->id, f);
        for (uint32_t i = 0; i < sl->len; i++)
            sl->data[i] = frame_byte(s->id, f, i);
        sl->checksum = checksum(sl->data, sl->len);
        if (mp_connection_send(s->tx, &k, sizeof k) != 0)
            return 3;
    }
    uint32_t done = DONE;
    return mp_connection_send(s->tx, &done, sizeof done) == 0 ? 0 : 4;
}

struct progress {
    int frames;
    uint64_t bytes;
    int bad;
    bool done;
};

/* Check one frame against what producer id must have written. */
static void consume(struct stream *s, struct progress *pr, uint32_t k)
{
    struct slot *ring = mp_shared_memory_buf(s->ring);
    struct slot *sl = &ring[k];
    int f = pr->frames;
    bool ok = k == (uint32_t)f % SLOTS && sl->len == frame_len(s->id, f) &&
              checksum(sl->data, sl->len) == sl->checksum;
    for (uint32_t i = 0; ok && i < sl->len; i++)
        ok = sl->data[i] == frame_byte(s->id, f, i);
    pr->bad += !ok;
    pr->frames++;
    pr->bytes += sl->len;
    mp_semaphore_release(s->free);
}

int main(void)
{
    struct stream *streams[PRODUCERS];
    mp_process *procs[PRODUCERS];
    struct progress pr[PRODUCERS] = {0};
    for (int i = 0; i < PRODUCERS; i++) {
        struct stream *s = mp_shared_alloc(sizeof *s);
        s->id = i;
        s->ring = mp_shared_memory_new(.create = true, .size = SLOTS * sizeof(struct slot));
        s->free = mp_semaphore_new(.value = SLOTS);
        if (s->ring == NULL || s->free == NULL || mp_pipe(false, &s->rx, &s->tx) != 0) {
            fprintf(stderr, "setup failed: %s\n", mp_strerror(mp_last_error()));
            return 1;
        }
        streams[i] = s;
        procs[i] = mp_process_new(.target = producer, .arg = &s, .arg_size = sizeof s);
        mp_process_start(procs[i]);
        mp_connection_close(s->tx);
    }

    /* One wait over every stream and every producer's sentinel. */
    int open_streams = PRODUCERS;
    while (open_streams > 0) {
        mp_waitable w[2 * PRODUCERS];
        bool ready[2 * PRODUCERS];
        for (int i = 0; i < PRODUCERS; i++) {
            w[i] = MP_WAITABLE_CONN(streams[i]->rx);
            w[PRODUCERS + i] = MP_WAITABLE_FD(mp_process_sentinel(procs[i]));
        }
        int n = mp_connection_wait(w, 2 * PRODUCERS, 10.0, ready);
        if (n <= 0) {
            fprintf(stderr, "wait: %s\n", n == 0 ? "timed out" : mp_strerror(n));
            return 1;
        }
        for (int i = 0; i < PRODUCERS; i++) {
            if (pr[i].done)
                continue;
            if (ready[i]) {
                uint32_t k;
                int r = mp_connection_recv_bytes_into(streams[i]->rx, &k, sizeof k, 0, NULL);
                if (r != 0) {
                    fprintf(stderr, "producer %d: %s\n", i, mp_strerror(r));
                    return 1;
                }
                if (k == DONE) {
                    pr[i].done = true;
                    open_streams--;
                } else {
                    consume(streams[i], &pr[i], k);
                }
            } else if (ready[PRODUCERS + i] && mp_connection_poll(streams[i]->rx, 0) == 0) {
                fprintf(stderr, "producer %d ended before its stream did\n", i);
                return 1;
            }
        }
    }

    uint64_t total = 0;
    int failures = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        int code = -1;
        mp_process_join(procs[i], MP_FOREVER);
        mp_process_exitcode(procs[i], &code);
        uint64_t expect = 0;
        for (int f = 0; f < FRAMES; f++)
            expect += frame_len(i, f);
        bool ok = code == 0 && pr[i].bad == 0 && pr[i].frames == FRAMES &&
                  pr[i].bytes == expect;
        failures += !ok;
        printf("producer %d: %d frames, %llu bytes, %s\n", i, pr[i].frames,
               (unsigned long long)pr[i].bytes, ok ? "checksums ok" : "CORRUPT");
        total += pr[i].bytes;
        mp_process_free(procs[i]);
        mp_shared_memory_unlink(streams[i]->ring);
        mp_shared_memory_free(streams[i]->ring);
        mp_semaphore_free(streams[i]->free);
        mp_connection_free(streams[i]->rx);
        mp_connection_free(streams[i]->tx);
        mp_shared_free(streams[i]);
    }
    printf("all streams complete: %llu bytes from %d producers\n", (unsigned long long)total,
           PRODUCERS);
    return failures == 0 ? 0 : 1;
}
