/*
 * lock_colors: process synchronisation without and with a Lock
 * (seed 001, "Process Synchronization": Red, Green and Blue workers).
 *
 * Each worker prints its colour on three lines, pausing between them.
 * Without a lock the lines of the three workers may interleave; with the
 * lock each worker's lines come out together.  The first round is joined
 * before the second starts, so the two rounds do not mix.
 */
#include <libmp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct job {
    mp_lock *lock; /* NULL in the first round */
    char colour[8];
};

static void print_lines(const char *colour)
{
    for (int i = 1; i <= 3; i++) {
        printf("%s %d\n", colour, i);
        fflush(stdout);
        nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
}

static int test_func(void *arg, size_t size)
{
    struct job *j = arg;
    if (j->lock == NULL) {
        print_lines(j->colour);
        return 0;
    }
    if (mp_lock_acquire(j->lock, MP_FOREVER) != 0) {
        printf("Error occured while acquiring lock\n");
        return 1;
    }
    print_lines(j->colour);
    mp_lock_release(j->lock);
    return 0;
}

static int run_round(mp_lock *lock)
{
    static const char *colours[] = {"Red", "Green", "Blue"};
    mp_process *p[3];
    for (int i = 0; i < 3; i++) {
        struct job j = {.lock = lock};
        strcpy(j.colour, colours[i]);
        p[i] = mp_process_new(.target = test_func, .arg = &j, .arg_size = sizeof j);
        if (p[i] == NULL || mp_process_start(p[i]) != 0)
            return 1;
    }
    for (int i = 0; i < 3; i++) {
        mp_process_join(p[i], MP_FOREVER);
        mp_process_free(p[i]);
    }
    return 0;
}

int main(void)
{
    printf("Without lock:\n");
    if (run_round(NULL) != 0)
        return 1;
    printf("With lock:\n");
    mp_lock *lock = mp_lock_new();
    if (lock == NULL || run_round(lock) != 0)
        return 1;
    mp_lock_free(lock);
    return 0;
}
