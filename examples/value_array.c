/*
 * value_array: sharing state with Value and Array
 * (seed 001, "Sharing state between processes").
 *
 * A child squares Value('f', 3.14) and cubes every item of
 * Array('i', range(5)); the parent prints both before and after.  Floats
 * are printed as Python prints them: the shortest text that reads back as
 * the same double.
 */
#include <libmp.h>
#include <stdio.h>
#include <stdlib.h>

struct shared {
    mp_value *val;
    mp_array *ary;
};

static void print_double(double x)
{
    char buf[32];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fputs(buf, stdout);
}

static void print_state(struct shared *s)
{
    double v;
    int items[5];
    mp_value_get_double(s->val, &v);
    mp_array_read(s->ary, 0, 5, items, sizeof items[0]);
    print_double(v);
    printf(" [");
    for (int i = 0; i < 5; i++)
        printf(i ? ", %d" : "%d", items[i]);
    printf("]\n");
}

static int test_func(void *arg, size_t size)
{
    struct shared *s = arg;
    float v;
    MP_VALUE_GET(s->val, &v);
    MP_VALUE_SET(s->val, float, v *v); /* shared_value.value = value * value */
    for (ssize_t i = 0; i < mp_array_len(s->ary); i++) {
        int x;
        MP_ARRAY_GET(s->ary, (size_t)i, &x);
        MP_ARRAY_SET(s->ary, (size_t)i, int, x *x *x);
    }
    return 0;
}

int main(void)
{
    struct shared s = {
        .val = mp_value_new(.typecode = 'f', .value = 3.14),
        .ary = mp_array_new(.typecode = 'i', .size = 5, .init = (int[]){0, 1, 2, 3, 4}),
    };
    if (s.val == NULL || s.ary == NULL)
        return 1;
    print_state(&s);

    mp_process *p = mp_process_new(.target = test_func, .arg = &s, .arg_size = sizeof s);
    if (p == NULL || mp_process_start(p) != 0)
        return 1;
    mp_process_join(p, MP_FOREVER);
    mp_process_free(p);
    print_state(&s);

    mp_value_free(s.val);
    mp_array_free(s.ary);
    return 0;
}
