/*
 * shared_value_array: Value('d') and Array('i') changed by a child
 * (seed 002, "Shared memory").
 *
 * The child stores 3.1415927 in the value and negates every item of the
 * array; the parent prints both after joining it.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>

struct shared {
    mp_value *num;
    mp_array *arr;
};

static int f(void *arg, size_t size)
{
    struct shared *s = arg;
    MP_VALUE_SET(s->num, double, 3.1415927);
    for (ssize_t i = 0; i < mp_array_len(s->arr); i++) {
        int x;
        MP_ARRAY_GET(s->arr, (size_t)i, &x);
        MP_ARRAY_SET(s->arr, (size_t)i, int, -x);
    }
    return 0;
}

/* Python's repr of a float: the shortest text that reads back the same. */
static void print_double(double x)
{
    char buf[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    printf("%s\n", buf);
}

int main(void)
{
    int range[10];
    for (int i = 0; i < 10; i++)
        range[i] = i;
    struct shared s = {
        .num = mp_value_new(.typecode = 'd', .value = 0.0),
        .arr = mp_array_new(.typecode = 'i', .size = 10, .init = range),
    };
    if (s.num == NULL || s.arr == NULL)
        return 1;

    mp_process *p = mp_process_new(.target = f, .arg = &s, .arg_size = sizeof s);
    if (p == NULL || mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);

    double num;
    mp_value_get_double(s.num, &num);
    print_double(num);
    int out[10];
    mp_array_read(s.arr, 0, 10, out, sizeof out[0]);
    printf("[");
    for (int i = 0; i < 10; i++)
        printf(i ? ", %d" : "%d", out[i]);
    printf("]\n");

    mp_value_free(s.num);
    mp_array_free(s.arr);
    return 0;
}
