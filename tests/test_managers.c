/* test_managers.c: typed values, their encoding, and the manager. */
#include "internal/mp.h"
#include "internal/val.h"
#include "mptest.h"

#include "internal/managers.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_state = 0x12345678abcdefull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void assert_repr(const mp_val *v, const char *want)
{
    char *s = mp_val_repr(v);
    assert_non_null(s);
    if (strcmp(s, want) != 0)
        fail_msg("repr: got %s, want %s", s, want);
    free(s);
}

/* A random value; keys of dicts are hashable. */
static mp_val *random_val(int depth, bool hashable)
{
    int kind = (int)(rnd() % (depth > 3 ? 6 : 9));
    if (hashable && kind >= 6)
        kind = rnd() % 2 ? 7 : (int)(rnd() % 6);
    static const char *const words[] = {"",
                                        "a",
                                        "it's",
                                        "say \"hi\"",
                                        "\xc3\xa9t\xc3\xa9",
                                        "tab\there",
                                        "\x01\x7f",
                                        "long string with words"};
    switch (kind) {
    case 0:
        return mp_val_none();
    case 1:
        return mp_val_bool(rnd() & 1);
    case 2: {
        int64_t i = (int64_t)rnd();
        if (rnd() % 2)
            i %= 1000;
        return mp_val_int(i);
    }
    case 3: {
        double f;
        uint64_t bits = rnd();
        memcpy(&f, &bits, 8);
        if (rnd() % 2 || isnan(f))
            f = (double)(int64_t)(rnd() % 100000) / 64.0;
        return mp_val_float(f);
    }
    case 4:
        return mp_val_str(words[rnd() % 8]);
    case 5: {
        uint8_t raw[16];
        size_t n = rnd() % 16;
        for (size_t i = 0; i < n; i++)
            raw[i] = (uint8_t)rnd();
        return mp_val_bytes(raw, n);
    }
    case 6:
    case 7: {
        mp_val *l = kind == 6 ? mp_val_list() : mp_val_tuple();
        size_t n = rnd() % 5;
        for (size_t i = 0; i < n; i++) {
            mp_val *x = random_val(depth + 1, kind == 7 && hashable);
            assert_int_equal(mp_val_list_append(l, x), 0);
            mp_val_free(x);
        }
        return l;
    }
    default: {
        mp_val *d = mp_val_dict();
        size_t n = rnd() % 5;
        for (size_t i = 0; i < n; i++) {
            mp_val *k = random_val(depth + 1, true), *x = random_val(depth + 1, false);
            assert_int_equal(mp_val_dict_set(d, k, x), 0);
            mp_val_free(k);
            mp_val_free(x);
        }
        return d;
    }
    }
}

/* ---- values ---------------------------------------------------------------- */

static void test_val_repr_seed_outputs(void **state)
{
    mp_val *d = mp_val_dict();
    for (int i = 0; i < 10; i++)
        assert_int_equal(mp_val_dict_set(d, MP_I64(i), MP_I64(i * 2)), 0);
    assert_repr(d, "{0: 0, 1: 2, 2: 4, 3: 6, 4: 8, 5: 10, 6: 12, 7: 14, 8: 16, 9: 18}");
    mp_val_free(d);

    mp_val *l = mp_val_range(9, -1, -1);
    assert_repr(l, "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    mp_val_free(l);

    assert_repr(MP_DICT(MP_FLOAT(0.25), MP_NONE, MP_I64(1), MP_STR("1"), MP_STR("2"),
                        MP_I64(2)),
                "{0.25: None, 1: '1', '2': 2}");
    d = mp_val_dict();
    assert_int_equal(mp_val_dict_set(d, MP_I64(1), MP_STR("1")), 0);
    assert_int_equal(mp_val_dict_set(d, MP_STR("2"), MP_I64(2)), 0);
    assert_int_equal(mp_val_dict_set(d, MP_FLOAT(0.25), MP_NONE), 0);
    assert_repr(d, "{1: '1', '2': 2, 0.25: None}");
    mp_val_free(d);
    assert_repr(MP_EMPTY_LIST, "[]");
    assert_repr(MP_EMPTY_DICT, "{}");
    assert_repr(MP_EMPTY_TUPLE, "()");
    assert_repr(MP_TUPLE(MP_I64(1)), "(1,)");
    assert_repr(MP_TUPLE(MP_I64(1), MP_TRUE, MP_FALSE), "(1, True, False)");
    assert_repr(MP_LIST(MP_STR("This is the value")), "['This is the value']");
    char *s = mp_val_tostring(MP_STR("This is the value"));
    assert_string_equal(s, "This is the value");
    free(s);
    s = mp_val_tostring(MP_LIST(MP_STR("x")));
    assert_string_equal(s, "['x']");
    free(s);
}

static void test_val_repr_floats(void **state)
{
    static const struct {
        double f;
        const char *want;
    } cases[] = {
        {0.25, "0.25"},
        {1.0, "1.0"},
        {-0.0, "-0.0"},
        {0.0, "0.0"},
        {0.1, "0.1"},
        {(double)3.14f, "3.140000104904175"},
        {9.859601020812988, "9.859601020812988"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {1e-5, "1e-05"},
        {0.0001, "0.0001"},
        {123456789.0, "123456789.0"},
        {1.5e300, "1.5e+300"},
        {5e-324, "5e-324"},
        {2.675, "2.675"},
        {1234.5, "1234.5"},
        {-2.5e-7, "-2.5e-07"},
        {3.1415927, "3.1415927"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {INFINITY, "inf"},
        {-INFINITY, "-inf"},
        {NAN, "nan"},
        {100.0, "100.0"},
        {0.3, "0.3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_repr(MP_FLOAT(cases[i].f), cases[i].want);
}

static void test_val_repr_strings(void **state)
{
    assert_repr(MP_STR("it's"), "\"it's\"");
    assert_repr(MP_STR("say \"hi\""), "'say \"hi\"'");
    assert_repr(MP_STR("it's \"x\""), "'it\\'s \"x\"'");
    assert_repr(MP_STR("a\\b\n\t\r\x01\x7f"), "'a\\\\b\\n\\t\\r\\x01\\x7f'");
    assert_repr(MP_STR("\xc3\xa9t\xc3\xa9"), "'\xc3\xa9t\xc3\xa9'");
    assert_repr(MP_STR("\xc2\xa0"), "'\\xa0'");
    assert_repr(MP_STR("\xe2\x80\xa8"), "'\\u2028'");
    assert_repr(MP_BYTES("\x00\xff"
                         "a'",
                         4),
                "b\"\\x00\\xffa'\"");
    assert_repr(MP_BYTES("", 0), "b''");
    assert_repr(MP_I64(INT64_MIN), "-9223372036854775808");
    /* Invalid UTF-8 in a literal is refused, not printed. */
    assert_null(mp_val_repr(MP_STR("\xff")));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_val_repr(NULL));
    assert_null(mp_val_str("\xc0\x80"));
    assert_null(mp_val_strn("\xed\xa0\x80", 3));     /* a surrogate */
    assert_null(mp_val_strn("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_null(mp_val_strn("\xe2\x82", 2));         /* truncated */
    mp_val *ok = mp_val_strn("\xf0\x9f\x98\x80", 4);
    assert_non_null(ok);
    mp_val_free(ok);
}

static void test_val_eq_hash_cmp(void **state)
{
    uint64_t h1, h2, h3;
    assert_true(mp_val_eq(MP_I64(1), MP_FLOAT(1.0)));
    assert_true(mp_val_eq(MP_I64(1), MP_TRUE));
    assert_false(mp_val_eq(MP_I64(1), MP_STR("1")));
    assert_false(mp_val_eq(MP_STR("a"), MP_BYTES("a", 1)));
    assert_false(mp_val_eq(MP_FLOAT(NAN), MP_FLOAT(NAN)));
    assert_false(mp_val_eq(MP_LIST(MP_I64(1)), MP_TUPLE(MP_I64(1))));
    assert_true(mp_val_eq(MP_I64(INT64_MAX), MP_I64(INT64_MAX)));
    assert_false(mp_val_eq(MP_I64(INT64_MAX), MP_FLOAT(9223372036854775807.0)));
    assert_false(mp_val_eq(MP_I64((1LL << 53) + 1), MP_FLOAT((double)(1LL << 53))));
    assert_int_equal(mp_val_hash(MP_I64(1), &h1), 0);
    assert_int_equal(mp_val_hash(MP_FLOAT(1.0), &h2), 0);
    assert_int_equal(mp_val_hash(MP_TRUE, &h3), 0);
    assert_true(h1 == h2 && h2 == h3);
    assert_int_equal(mp_val_hash(MP_LIST(MP_I64(1)), &h1), MP_EINVAL);
    assert_int_equal(mp_val_hash(MP_TUPLE(MP_I64(1), MP_EMPTY_DICT), &h1), MP_EINVAL);
    assert_int_equal(mp_val_hash(MP_TUPLE(MP_I64(1), MP_STR("x")), &h1), 0);
    assert_int_equal(mp_val_hash(NULL, &h1), MP_EINVAL);
    assert_true(mp_val_eq(MP_DICT(MP_I64(1), MP_STR("a"), MP_I64(2), MP_STR("b")),
                          MP_DICT(MP_I64(2), MP_STR("b"), MP_FLOAT(1.0), MP_STR("a"))));

    assert_true(mp_val_cmp(MP_I64(1), MP_FLOAT(1.5)) < 0);
    assert_true(mp_val_cmp(MP_FLOAT(-1.5), MP_I64(-1)) < 0);
    assert_true(mp_val_cmp(MP_I64(-1), MP_FLOAT(-1.5)) > 0);
    assert_true(mp_val_cmp(MP_I64(INT64_MAX), MP_FLOAT(1e19)) < 0);
    assert_true(mp_val_cmp(MP_FLOAT(NAN), MP_I64(INT64_MAX)) > 0);
    assert_int_equal(mp_val_cmp(MP_FLOAT(NAN), MP_FLOAT(NAN)), 0);
    assert_true(mp_val_cmp(MP_NONE, MP_I64(-5)) < 0);
    assert_true(mp_val_cmp(MP_I64(5), MP_STR("")) < 0);
    assert_true(mp_val_cmp(MP_STR("b"), MP_STR("ab")) > 0);
    assert_true(mp_val_cmp(MP_STR("a"), MP_STR("ab")) < 0);
    assert_true(mp_val_cmp(MP_STR("\xc3\xa9"), MP_STR("z")) > 0);
    assert_true(mp_val_cmp(MP_LIST(MP_I64(1), MP_I64(2)), MP_LIST(MP_I64(1), MP_I64(3))) < 0);
    assert_int_equal(mp_val_cmp(MP_I64(2), MP_FLOAT(2.0)), 0);
    assert_true(mp_val_truth(MP_STR("x")));
    assert_false(mp_val_truth(MP_EMPTY_LIST));
    assert_false(mp_val_truth(MP_FLOAT(0.0)));
    assert_false(mp_val_truth(MP_NONE));
    assert_string_equal(mp_val_type_name(MP_EMPTY_DICT), "dict");
    assert_string_equal(mp_val_type_name(MP_NONE), "NoneType");
}

static void test_val_containers(void **state)
{
    mp_val *d = mp_val_dict();
    assert_non_null(d);
    /* Many keys, removed and added back, with the order kept. */
    for (int i = 0; i < 20000; i++)
        assert_int_equal(mp_val_dict_set(d, MP_I64(i), MP_I64(-i)), 0);
    for (int i = 0; i < 20000; i += 2)
        assert_int_equal(mp_val_dict_del(d, MP_FLOAT((double)i)), 0);
    assert_int_equal(mp_val_dict_del(d, MP_I64(0)), -ENOENT);
    assert_int_equal(mp_val_len(d), 10000);
    for (int i = 0; i < 20000; i++) {
        const mp_val *x = mp_val_dict_get(d, MP_I64(i));
        if (i % 2) {
            assert_non_null(x);
            assert_int_equal(x->i, -i);
        } else {
            assert_null(x);
        }
    }
    size_t pos = 0, n = 0;
    const mp_val *k, *x;
    int64_t last = -1;
    while (mp_val_dict_next(d, &pos, &k, &x)) {
        assert_true(k->i > last);
        last = k->i;
        n++;
    }
    assert_int_equal(n, 10000);
    /* Insert-delete churn at the end never fills the index. */
    for (int i = 0; i < 100000; i++) {
        assert_int_equal(mp_val_dict_set(d, MP_STR("churn"), MP_I64(i)), 0);
        assert_int_equal(mp_val_dict_del(d, MP_STR("churn")), 0);
    }
    /* An existing key keeps its place and its first spelling. */
    assert_int_equal(mp_val_dict_set(d, MP_TRUE, MP_STR("one")), 0);
    assert_int_equal(mp_val_len(d), 10000);
    assert_string_equal(mp_val_dict_get(d, MP_I64(1))->s.ptr, "one");
    assert_int_equal(mp_val_dict_set(d, MP_LIST(MP_I64(1)), MP_NONE), MP_EINVAL);
    assert_int_equal(mp_val_dict_set((mp_val *)MP_DICT(MP_I64(1), MP_NONE), MP_I64(2),
                                     MP_NONE),
                     MP_EINVAL);
    mp_val_free(d);

    d = mp_val_dict();
    assert_int_equal(mp_val_dict_set(d, MP_TRUE, MP_STR("a")), 0);
    assert_int_equal(mp_val_dict_set(d, MP_FLOAT(1.0), MP_STR("b")), 0);
    assert_repr(d, "{True: 'b'}");
    mp_val_free(d);

    mp_val *l = mp_val_list();
    assert_int_equal(mp_val_list_append(l, MP_I64(1)), 0);
    assert_int_equal(mp_val_list_insert(l, 0, MP_I64(0)), 0);
    assert_int_equal(mp_val_list_insert(l, 100, MP_I64(3)), 0);
    assert_int_equal(mp_val_list_insert(l, -1, MP_I64(2)), 0);
    assert_repr(l, "[0, 1, 2, 3]");
    assert_int_equal(mp_val_item(l, -1)->i, 3);
    assert_null(mp_val_item(l, 4));
    assert_null(mp_val_item(l, -5));
    assert_int_equal(mp_val_list_set(l, -4, MP_STR("z")), 0);
    assert_int_equal(mp_val_list_set(l, 4, MP_STR("z")), MP_EINVAL);
    assert_int_equal(mp_val_list_del(l, 1), 0);
    assert_repr(l, "['z', 2, 3]");
    assert_int_equal(mp_val_list_append((mp_val *)MP_EMPTY_LIST, MP_I64(1)), MP_EINVAL);
    assert_int_equal(mp_val_list_append(l, MP_STR("\xff")), MP_EINVAL);
    assert_int_equal(mp_val_len(l), 3);
    mp_val_free(l);
    assert_null(mp_val_range(0, 1, 0));
    l = mp_val_range(0, 10, 3);
    assert_repr(l, "[0, 3, 6, 9]");
    mp_val_free(l);

    /* Copies are deep and equal; literals copy into allocated values. */
    const mp_val *lit = MP_DICT(MP_STR("k"),
                                MP_LIST(MP_I64(1), MP_TUPLE(MP_NONE, MP_FLOAT(2.5))),
                                MP_I64(7), MP_BYTES("x", 1));
    mp_val *c = mp_val_copy(lit);
    assert_non_null(c);
    assert_true(mp_val_eq(c, lit));
    assert_int_equal(mp_val_dict_set(c, MP_I64(8), MP_NONE), 0);
    assert_false(mp_val_eq(c, lit));
    mp_val_free(c);
    mp_val_free(NULL);
    assert_null(mp_val_copy(NULL));
    assert_null(mp_val_copy(MP_DICT(MP_EMPTY_LIST, MP_NONE)));

    int64_t i64;
    double f;
    const char *p;
    size_t len;
    bool b;
    assert_int_equal(mp_val_as_int(MP_TRUE, &i64), 0);
    assert_int_equal(i64, 1);
    assert_int_equal(mp_val_as_int(MP_FLOAT(1.0), &i64), MP_EINVAL);
    assert_int_equal(mp_val_as_float(MP_I64(3), &f), 0);
    assert_true(f == 3.0);
    assert_int_equal(mp_val_as_str(MP_STR("hey"), &p, &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(mp_val_as_str(MP_I64(1), &p, &len), MP_EINVAL);
    assert_int_equal(mp_val_as_bool(MP_FALSE, &b), 0);
    assert_false(b);
    assert_int_equal(mp_val_as_bool(NULL, &b), MP_EINVAL);
}

static void test_val_parse(void **state)
{
    static const char *const ok[] = {
        "None",
        "True",
        "False",
        "0",
        "-5",
        "+7",
        "1_000",
        "0x1F",
        "-0o17",
        "0b101",
        "9223372036854775807",
        "-9223372036854775808",
        "2.5",
        "-1e-05",
        ".5",
        "1.",
        "inf",
        "-inf",
        "'a'",
        "\"it's\"",
        "'\\x41\\u00e9\\U0001F600\\n\\101'",
        "b'\\x00ab'",
        "[]",
        "[1, 2,]",
        "()",
        "(1,)",
        "(1)",
        "{}",
        "{'a': [1, (2, 3)], 4: None}",
        "  [ 1 , 'x' ]  ",
        "{0.25: None, 1: '1', '2': 2}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        mp_val *v;
        if (mp_val_parse(ok[i], &v) != 0)
            fail_msg("parse failed: %s", ok[i]);
        mp_val_free(v);
    }
    static const char *const bad[] = {
        "",
        "[",
        "[1 2]",
        "{1}",
        "{[]: 1}",
        "{1: 2, 1: 3}",
        "9223372036854775808",
        "-9223372036854775809",
        "'abc",
        "b'\xc3\xa9'",
        "'\\x4'",
        "nope",
        "1 2",
        "(1 2)",
        "'\\ud800'",
        "0x",
        "1e",
        "[1,,]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_val *v = (mp_val *)1;
        if (mp_val_parse(bad[i], &v) != MP_EINVAL)
            fail_msg("parse accepted: %s", bad[i]);
        assert_null(v);
    }
    mp_val *v;
    assert_int_equal(mp_val_parse("(1)", &v), 0);
    assert_int_equal(v->type, MP_VAL_INT);
    mp_val_free(v);
    assert_int_equal(mp_val_parse("'\\x41\\u00e9'", &v), 0);
    assert_string_equal(v->s.ptr, "A\xc3\xa9");
    mp_val_free(v);
    /* Too deep. */
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = '\0';
    assert_int_equal(mp_val_parse(deep, &v), MP_EINVAL);
    assert_int_equal(mp_val_parse(NULL, &v), MP_EINVAL);
    assert_int_equal(mp_val_parse("1", NULL), MP_EINVAL);

    /* repr -> parse gives an equal value back. */
    for (int i = 0; i < 3000; i++) {
        mp_val *x = random_val(0, false);
        char *s = mp_val_repr(x);
        assert_non_null(s);
        mp_val *y;
        if (mp_val_parse(s, &y) != 0)
            fail_msg("cannot parse own repr: %s", s);
        /* NaN never equals itself; compare the text instead. */
        char *s2 = mp_val_repr(y);
        assert_string_equal(s, s2);
        free(s);
        free(s2);
        mp_val_free(x);
        mp_val_free(y);
    }
}

/* ---- the encoding ---------------------------------------------------------- */

static void test_codec_round_trip(void **state)
{
    for (int i = 0; i < 5000; i++) {
        mp_val *x = random_val(0, false);
        void *buf;
        size_t len;
        assert_int_equal(mp_val_encode(x, &buf, &len), 0);
        mp_val *y;
        assert_int_equal(mp_val_decode(buf, len, &y, NULL), 0);
        char *a = mp_val_repr(x), *b = mp_val_repr(y);
        assert_string_equal(a, b);
        assert_int_equal(mp_val_cmp(x, y), 0);
        /* Every strict prefix is refused. */
        for (size_t n = 0; n < len; n++) {
            mp_val *z = (mp_val *)1;
            assert_int_equal(mp_val_decode(buf, n, &z, NULL), MP_EINVAL);
            assert_null(z);
        }
        /* Trailing bytes: refused, or reported with used. */
        char *more = malloc(len + 3);
        memcpy(more, buf, len);
        memcpy(more + len, "xyz", 3);
        mp_val *z;
        assert_int_equal(mp_val_decode(more, len + 3, &z, NULL), MP_EINVAL);
        size_t used;
        assert_int_equal(mp_val_decode(more, len + 3, &z, &used), 0);
        assert_int_equal(used, len);
        mp_val_free(z);
        free(more);
        free(a);
        free(b);
        free(buf);
        mp_val_free(x);
        mp_val_free(y);
    }
}

static void test_codec_exact_bytes(void **state)
{
    void *buf;
    size_t len;
    assert_int_equal(mp_val_encode(MP_DICT(MP_I64(1), MP_LIST(MP_STR("ab"), MP_NONE, MP_TRUE)),
                                   &buf, &len),
                     0);
    static const uint8_t want[] = {0x09, 0x01, 0x03, 0x02, 0x07, 0x03,
                                   0x05, 0x02, 'a',  'b',  0x00, 0x02};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    free(buf);
    assert_int_equal(mp_val_encode(MP_I64(-1), &buf, &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal(((uint8_t *)buf)[1], 0x01);
    free(buf);
    assert_int_equal(mp_val_encode(MP_I64(INT64_MIN), &buf, &len), 0);
    assert_int_equal(len, 11);
    mp_val *v;
    assert_int_equal(mp_val_decode(buf, len, &v, NULL), 0);
    assert_true(v->i == INT64_MIN);
    mp_val_free(v);
    free(buf);
    assert_int_equal(mp_val_encode(MP_FLOAT(1.0), &buf, &len), 0);
    static const uint8_t one[] = {0x04, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    assert_memory_equal(buf, one, sizeof one);
    free(buf);
    assert_int_equal(mp_val_encode(NULL, &buf, &len), MP_EINVAL);
    assert_int_equal(mp_val_encode(MP_STR("\xff"), &buf, &len), MP_EINVAL);
    assert_int_equal(mp_val_encode(MP_DICT(MP_EMPTY_LIST, MP_NONE), &buf, &len), MP_EINVAL);
    assert_int_equal(mp_val_encode(MP_I64(1), NULL, &len), MP_EINVAL);
}

static void expect_bad(const void *p, size_t n)
{
    mp_val *v = (mp_val *)1;
    int r = mp_val_decode(p, n, &v, NULL);
    if (r != MP_EINVAL)
        fail_msg("decode returned %d for %zu bytes", r, n);
    assert_null(v);
}

static void test_codec_malformed(void **state)
{
    /* Unknown tag, non-canonical and overflowing varints. */
    expect_bad("\x0a", 1);
    expect_bad("\xff", 1);
    expect_bad("\x03\x80\x00", 3);
    expect_bad("\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11);
    expect_bad("\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x01", 12);
    /* Lengths and counts larger than the input: refused before allocating. */
    expect_bad("\x05\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10);
    expect_bad("\x07\xff\xff\xff\xff\x0f", 6);
    expect_bad("\x07\x05\x00\x00\x00\x00", 6);
    expect_bad("\x09\x03\x00\x00\x00\x00\x00", 7);
    expect_bad("\x09\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
    /* Invalid UTF-8, unhashable and repeated keys. */
    expect_bad("\x05\x01\xff", 3);
    expect_bad("\x09\x01\x07\x00\x00", 5);
    expect_bad("\x09\x02\x03\x02\x00\x04\x00\x00\x00\x00\x00\x00\xf0\x3f\x00", 15);
    expect_bad(NULL, 0);
    expect_bad("", 0);
    /* Nesting past the limit. */
    uint8_t nested[2 * 100 + 1];
    for (int i = 0; i < 100; i++) {
        nested[2 * i] = 0x07;
        nested[2 * i + 1] = 0x01;
    }
    nested[200] = 0x00;
    expect_bad(nested, sizeof nested);
    /* Just at the limit it decodes. */
    mp_val *v;
    size_t off = 2 * (100 - MP_VAL_MAX_DEPTH);
    assert_int_equal(mp_val_decode(nested + off, sizeof nested - off, &v, NULL), 0);
    mp_val_free(v);
    assert_int_equal(mp_val_decode("\x00", 1, NULL, NULL), MP_EINVAL);
}

static void test_codec_fuzz(void **state)
{
    uint8_t buf[256];
    int accepted = 0;
    /* Pure noise. */
    for (int i = 0; i < 200000; i++) {
        size_t n = rnd() % sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rnd();
        /* Bias toward valid tags so the decoder goes deep. */
        for (size_t k = 0; k < n; k++)
            if (rnd() % 3 == 0)
                buf[k] = (uint8_t)(rnd() % 10);
        mp_val *v = NULL;
        size_t used;
        int r = mp_val_decode(buf, n, &v, &used);
        if (r == 0) {
            accepted++;
            assert_true(used <= n);
            void *enc;
            size_t len;
            assert_int_equal(mp_val_encode(v, &enc, &len), 0);
            assert_int_equal(len, used);
            assert_memory_equal(enc, buf, len); /* the encoding is canonical */
            free(enc);
            mp_val_free(v);
        } else {
            assert_int_equal(r, MP_EINVAL);
            assert_null(v);
        }
    }
    assert_true(accepted > 0);
    /* Mutations of valid encodings. */
    for (int i = 0; i < 20000; i++) {
        mp_val *x = random_val(0, false);
        void *enc;
        size_t len;
        assert_int_equal(mp_val_encode(x, &enc, &len), 0);
        uint8_t *p = enc;
        for (int m = 0; m < 3; m++)
            p[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
        mp_val *y = NULL;
        int r = mp_val_decode(enc, len, &y, NULL);
        assert_true(r == 0 || r == MP_EINVAL);
        mp_val_free(y);
        mp_val_free(x);
        free(enc);
    }
}

/* ---- the manager: helpers ------------------------------------------------------ */

static mp_manager *started(void)
{
    mp_manager *m = mp_manager_new();
    assert_non_null(m);
    assert_int_equal(mp_manager_start(m), 0);
    assert_true(mp_manager_pid(m) > 0);
    return m;
}

static void stop(mp_manager *m)
{
    assert_int_equal(mp_manager_shutdown(m), 0);
    mp_manager_free(m);
}

static void assert_proxy_repr(mp_proxy *p, const char *want)
{
    char *s = mp_proxy_repr(p);
    if (s == NULL)
        fail_msg("proxy repr failed: %d %s %s", mp_last_error(), mp_remote_error_type(),
                 mp_remote_error_message());
    if (strcmp(s, want) != 0)
        fail_msg("proxy repr: got %s, want %s", s, want);
    free(s);
}

static void assert_val(mp_val *v, const char *want)
{
    assert_non_null(v);
    assert_repr(v, want);
    mp_val_free(v);
}

static void assert_remote(int r, const char *type, const char *msg)
{
    assert_int_equal(r, MP_EREMOTE);
    assert_string_equal(mp_remote_error_type(), type);
    if (msg != NULL)
        assert_string_equal(mp_remote_error_message(), msg);
}

/* ---- dict, list, Namespace, Value, Array ----------------------------------------- */

static void test_mgr_dict(void **state)
{
    mp_manager *m = started();
    mp_proxy *d = mp_manager_dict(m, NULL);
    assert_non_null(d);
    assert_int_equal(mp_proxy_kind_of(d), MP_PROXY_DICT);
    assert_string_equal(mp_proxy_typeid(d), "dict");
    assert_null(mp_proxy_native(d));
    for (int i = 0; i < 10; i++)
        assert_int_equal(mp_dict_set(d, MP_I64(i), MP_I64(i * 2)), 0);
    assert_proxy_repr(d, "{0: 0, 1: 2, 2: 4, 3: 6, 4: 8, 5: 10, 6: 12, 7: 14, 8: 16, 9: 18}");
    char *s = mp_proxy_tostring(d);
    assert_string_equal(s,
                        "{0: 0, 1: 2, 2: 4, 3: 6, 4: 8, 5: 10, 6: 12, 7: 14, 8: 16, 9: 18}");
    free(s);
    mp_val *v;
    assert_int_equal(mp_dict_getitem(d, MP_FLOAT(3.0), &v), 0);
    assert_val(v, "6");
    assert_remote(mp_dict_getitem(d, MP_STR("x"), &v), "KeyError", "'x'");
    assert_null(v);
    assert_int_equal(mp_remote_error_code(), MP_EINVAL);
    assert_int_equal(mp_dict_get(d, MP_STR("x"), NULL, &v), 0);
    assert_val(v, "None");
    assert_int_equal(mp_dict_get(d, MP_STR("x"), MP_STR("dflt"), &v), 0);
    assert_val(v, "'dflt'");
    assert_int_equal(mp_dict_get(d, MP_I64(9), MP_STR("dflt"), &v), 0);
    assert_val(v, "18");
    assert_int_equal(mp_dict_contains(d, MP_I64(9)), 1);
    assert_int_equal(mp_dict_contains(d, MP_I64(10)), 0);
    assert_int_equal(mp_dict_len(d), 10);
    assert_int_equal(mp_dict_del(d, MP_I64(9)), 0);
    assert_remote(mp_dict_del(d, MP_I64(9)), "KeyError", "9");
    assert_int_equal(mp_dict_len(d), 9);
    assert_int_equal(mp_dict_clear(d), 0);
    assert_int_equal(mp_dict_update(d,
                                    MP_DICT(MP_I64(1), MP_STR("1"), MP_STR("2"), MP_I64(2))),
                     0);
    assert_int_equal(mp_dict_update(d, MP_LIST(MP_TUPLE(MP_FLOAT(0.25), MP_NONE))), 0);
    assert_proxy_repr(d, "{1: '1', '2': 2, 0.25: None}");
    assert_remote(mp_dict_update(d, MP_LIST(MP_I64(1))), "ValueError", NULL);
    assert_remote(mp_dict_update(d, MP_LIST(MP_TUPLE(MP_EMPTY_LIST, MP_NONE))), "TypeError",
                  "unhashable type: 'list'");
    assert_remote(mp_dict_update(d, MP_I64(1)), "TypeError", "'int' object is not iterable");
    assert_int_equal(mp_dict_keys(d, &v), 0);
    assert_val(v, "[1, '2', 0.25]");
    assert_int_equal(mp_dict_values(d, &v), 0);
    assert_val(v, "['1', 2, None]");
    assert_int_equal(mp_dict_items(d, &v), 0);
    assert_val(v, "[(1, '1'), ('2', 2), (0.25, None)]");
    assert_int_equal(mp_dict_copy(d, &v), 0);
    assert_val(v, "{1: '1', '2': 2, 0.25: None}");
    assert_int_equal(mp_dict_setdefault(d, MP_STR("n"), MP_LIST(MP_I64(1)), &v), 0);
    assert_val(v, "[1]");
    assert_int_equal(mp_dict_setdefault(d, MP_STR("n"), MP_I64(0), &v), 0);
    assert_val(v, "[1]");
    assert_int_equal(mp_dict_setdefault(d, MP_STR("z"), NULL, &v), 0);
    assert_val(v, "None");
    assert_int_equal(mp_dict_pop(d, MP_STR("z"), NULL, &v), 0);
    assert_val(v, "None");
    assert_remote(mp_dict_pop(d, MP_STR("z"), NULL, &v), "KeyError", "'z'");
    assert_int_equal(mp_dict_pop(d, MP_STR("z"), MP_I64(5), &v), 0);
    assert_val(v, "5");
    assert_int_equal(mp_dict_popitem(d, &v), 0);
    assert_val(v, "('n', [1])");
    assert_int_equal(mp_dict_clear(d), 0);
    assert_remote(mp_dict_popitem(d, &v), "KeyError", "'popitem(): dictionary is empty'");
    /* A fetched container is a copy: changing it changes nothing remote. */
    assert_int_equal(mp_dict_set(d, MP_STR("l"), MP_EMPTY_LIST), 0);
    assert_int_equal(mp_dict_getitem(d, MP_STR("l"), &v), 0);
    assert_int_equal(mp_val_list_append(v, MP_STR("local")), 0);
    mp_val_free(v);
    assert_int_equal(mp_dict_getitem(d, MP_STR("l"), &v), 0);
    assert_val(v, "[]");
    /* Checked before sending. */
    assert_int_equal(mp_dict_set(d, MP_EMPTY_LIST, MP_NONE), MP_EINVAL);
    assert_int_equal(mp_dict_set(d, NULL, MP_NONE), MP_EINVAL);
    assert_int_equal(mp_dict_set(d, MP_I64(1), NULL), MP_EINVAL);
    assert_int_equal(mp_dict_set(d, MP_I64(1), MP_STR("\xff")), MP_EINVAL);
    assert_int_equal(mp_dict_getitem(d, MP_I64(1), NULL), MP_EINVAL);
    assert_int_equal(mp_dict_set(NULL, MP_I64(1), MP_NONE), MP_EINVAL);
    assert_int_equal(mp_dict_len(NULL), MP_EINVAL);
    /* Initial contents. */
    mp_proxy *d2 = mp_manager_dict(m, MP_DICT(MP_STR("a"), MP_I64(1)));
    assert_proxy_repr(d2, "{'a': 1}");
    mp_proxy *d3 = mp_manager_dict(m, MP_LIST(MP_TUPLE(MP_STR("b"), MP_I64(2))));
    assert_proxy_repr(d3, "{'b': 2}");
    assert_null(mp_manager_dict(m, MP_I64(3)));
    assert_int_equal(mp_last_error(), MP_EREMOTE);
    /* A dict function on a proxy of another kind. */
    mp_proxy *l = mp_manager_list(m, NULL);
    assert_int_equal(mp_dict_set(l, MP_I64(1), MP_NONE), MP_EINVAL);
    assert_int_equal(mp_list_append(d, MP_I64(1)), MP_EINVAL);
    /* Generic calls, and an unknown method. */
    assert_int_equal(mp_proxy_call(d2, "get", MP_TUPLE(MP_STR("a")), &v), 0);
    assert_val(v, "1");
    assert_int_equal(mp_proxy_call(d2, "__len__", NULL, NULL), 0);
    assert_remote(mp_proxy_call(d2, "nope", NULL, &v), "AttributeError",
                  "method 'nope' of 'dict' object is not exposed");
    assert_remote(mp_proxy_call(d2, "get", NULL, &v), "TypeError", NULL);
    assert_int_equal(mp_proxy_call(d2, "get", MP_I64(1), &v), MP_EINVAL);
    assert_int_equal(mp_proxy_call(d2, NULL, NULL, &v), MP_EINVAL);
    mp_proxy_free(l);
    mp_proxy_free(d3);
    mp_proxy_free(d2);
    mp_proxy_free(d);
    mp_proxy_free(NULL);
    stop(m);
}

static int cmp_by_abs(const mp_val *a, const mp_val *b)
{
    int64_t x = a->type == MP_VAL_INT ? llabs(a->i) : 0,
            y = b->type == MP_VAL_INT ? llabs(b->i) : 0;
    return (x > y) - (x < y);
}

static void check_slice(mp_proxy *l, int64_t a, int64_t b, int64_t step, const char *want)
{
    mp_val *v;
    int r = mp_list_slice(l, a, b, step, &v);
    if (r != 0)
        fail_msg("slice %lld:%lld:%lld: %d %s", (long long)a, (long long)b, (long long)step, r,
                 mp_remote_error_message());
    assert_val(v, want);
}

static void test_mgr_list(void **state)
{
    mp_manager *m = mp_manager_new();
    assert_int_equal(mp_manager_register_comparator(m, "abs", cmp_by_abs), 0);
    assert_int_equal(mp_manager_register_comparator(m, "abs", cmp_by_abs), MP_EINVAL);
    assert_int_equal(mp_manager_register_comparator(m, "default", cmp_by_abs), MP_EINVAL);
    assert_int_equal(mp_manager_register_comparator(m, "x", NULL), MP_EINVAL);
    assert_int_equal(mp_manager_start(m), 0);
    assert_int_equal(mp_manager_register_comparator(m, "late", cmp_by_abs), MP_EINVAL);
    mp_val *r10 = mp_val_range(0, 10, 1);
    mp_proxy *l = mp_manager_list(m, r10);
    mp_val_free(r10);
    assert_non_null(l);
    assert_int_equal(mp_list_reverse(l), 0);
    assert_proxy_repr(l, "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    mp_val *v;
    assert_int_equal(mp_list_get(l, 0, &v), 0);
    assert_val(v, "9");
    assert_int_equal(mp_list_get(l, -1, &v), 0);
    assert_val(v, "0");
    assert_int_equal(mp_list_get(l, -10, &v), 0);
    assert_val(v, "9");
    assert_remote(mp_list_get(l, 10, &v), "IndexError", "list index out of range");
    assert_remote(mp_list_get(l, -11, &v), "IndexError", "list index out of range");
    assert_int_equal(mp_list_set(l, -1, MP_STR("last")), 0);
    assert_remote(mp_list_set(l, 10, MP_NONE), "IndexError",
                  "list assignment index out of range");
    assert_int_equal(mp_list_del(l, -1), 0);
    assert_int_equal(mp_list_len(l), 9);
    assert_int_equal(mp_list_pop(l, -1, &v), 0);
    assert_val(v, "1");
    assert_int_equal(mp_list_pop(l, 0, &v), 0);
    assert_val(v, "9");
    assert_remote(mp_list_pop(l, 100, &v), "IndexError", "pop index out of range");
    assert_proxy_repr(l, "[8, 7, 6, 5, 4, 3, 2]");
    assert_int_equal(mp_list_append(l, MP_I64(7)), 0);
    assert_int_equal(mp_list_extend(l, MP_TUPLE(MP_STR("a"), MP_STR("B"))), 0);
    assert_int_equal(mp_list_insert(l, 0, MP_FLOAT(0.5)), 0);
    assert_int_equal(mp_list_insert(l, -1, MP_NONE), 0);
    assert_int_equal(mp_list_insert(l, 1000, MP_TRUE), 0);
    assert_proxy_repr(l, "[0.5, 8, 7, 6, 5, 4, 3, 2, 7, 'a', None, 'B', True]");
    assert_int_equal(mp_list_count(l, MP_I64(7)), 2);
    assert_int_equal(mp_list_count(l, MP_I64(1)), 1); /* True == 1 */
    assert_int_equal(mp_list_index(l, MP_I64(7)), 2);
    assert_int_equal(mp_list_contains(l, MP_STR("a")), 1);
    assert_int_equal(mp_list_contains(l, MP_STR("zz")), 0);
    assert_remote((int)mp_list_index(l, MP_STR("zz")), "ValueError", "'zz' is not in list");
    assert_int_equal(mp_list_remove(l, MP_I64(7)), 0);
    assert_int_equal(mp_list_index(l, MP_I64(7)), 7);
    assert_remote(mp_list_remove(l, MP_STR("zz")), "ValueError",
                  "list.remove(x): x not in list");
    assert_int_equal(mp_list_remove(l, MP_NONE), 0);
    assert_int_equal(mp_list_remove(l, MP_TRUE), 0);
    assert_proxy_repr(l, "[0.5, 8, 6, 5, 4, 3, 2, 7, 'a', 'B']");
    /* Sorting: the default order (numbers before str), reverse, named orders. */
    assert_int_equal(mp_list_sort(l, NULL, false), 0);
    assert_proxy_repr(l, "[0.5, 2, 3, 4, 5, 6, 7, 8, 'B', 'a']");
    assert_int_equal(mp_list_sort(l, "default", true), 0);
    assert_proxy_repr(l, "['a', 'B', 8, 7, 6, 5, 4, 3, 2, 0.5]");
    assert_int_equal(mp_list_del_slice(l, 0, 2), 0);
    assert_int_equal(mp_list_extend(l, MP_LIST(MP_I64(-9), MP_I64(-1))), 0);
    assert_int_equal(mp_list_sort(l, "abs", false), 0);
    assert_proxy_repr(l, "[0.5, -1, 2, 3, 4, 5, 6, 7, 8, -9]");
    assert_remote(mp_list_sort(l, "nope", false), "KeyError", "no comparator named 'nope'");
    mp_proxy *w = mp_manager_list(m, MP_LIST(MP_STR("bb"), MP_STR("a"), MP_STR("Ab"),
                                             MP_STR("c")));
    assert_int_equal(mp_list_sort(w, "casefold", false), 0);
    assert_proxy_repr(w, "['a', 'Ab', 'bb', 'c']");
    assert_int_equal(mp_list_sort(w, "len", false), 0);
    assert_proxy_repr(w, "['a', 'c', 'Ab', 'bb']"); /* stable */
    assert_int_equal(mp_list_sort(w, "len", true), 0);
    assert_proxy_repr(w, "['Ab', 'bb', 'a', 'c']"); /* stable in reverse too */
    assert_int_equal(mp_list_set_slice(w, 0, MP_SLICE_END,
                                       MP_LIST(MP_I64(300), MP_I64(2), MP_I64(-1))),
                     0);
    assert_int_equal(mp_list_sort(w, "bytes", false), 0);
    assert_proxy_repr(w, "[-1, 2, 300]"); /* zigzag varints: 0x01, 0x04, 0xd8 0x04 */
    mp_proxy_free(w);
    /* Slices, as Python computes them. */
    r10 = mp_val_range(0, 10, 1);
    mp_proxy *s = mp_manager_list(m, r10);
    mp_val_free(r10);
    check_slice(s, 2, 5, 1, "[2, 3, 4]");
    check_slice(s, MP_SLICE_END, 3, 1, "[0, 1, 2]");
    check_slice(s, 7, MP_SLICE_END, 1, "[7, 8, 9]");
    check_slice(s, -3, MP_SLICE_END, 1, "[7, 8, 9]");
    check_slice(s, MP_SLICE_END, MP_SLICE_END, 3, "[0, 3, 6, 9]");
    check_slice(s, MP_SLICE_END, MP_SLICE_END, -1, "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    check_slice(s, 8, 2, -2, "[8, 6, 4]");
    check_slice(s, -1, -4, -1, "[9, 8, 7]");
    check_slice(s, 100, 200, 1, "[]");
    check_slice(s, -100, 2, 1, "[0, 1]");
    check_slice(s, 5, 2, 1, "[]");
    check_slice(s, 100, -100, -3, "[9, 6, 3, 0]");
    assert_int_equal(mp_list_slice(s, 0, 1, 0, &v), MP_EINVAL);
    assert_int_equal(mp_list_set_slice(s, 2, 5, MP_LIST(MP_STR("x"))), 0);
    assert_proxy_repr(s, "[0, 1, 'x', 5, 6, 7, 8, 9]");
    assert_int_equal(mp_list_set_slice(s, 1, 2,
                                       MP_LIST(MP_STR("y"), MP_STR("z"), MP_STR("w"))),
                     0);
    assert_proxy_repr(s, "[0, 'y', 'z', 'w', 'x', 5, 6, 7, 8, 9]");
    assert_int_equal(mp_list_set_slice(s, MP_SLICE_END, 0, MP_TUPLE(MP_I64(-1))), 0);
    assert_int_equal(mp_list_set_slice(s, 100, MP_SLICE_END, MP_TUPLE(MP_I64(10))), 0);
    assert_int_equal(mp_list_del_slice(s, 2, -2), 0);
    assert_proxy_repr(s, "[-1, 0, 9, 10]");
    assert_int_equal(mp_list_del_slice(s, MP_SLICE_END, MP_SLICE_END), 0);
    assert_int_equal(mp_list_len(s), 0);
    assert_remote(mp_list_pop(s, -1, &v), "IndexError", "pop from empty list");
    assert_int_equal(mp_list_copy(l, &v), 0);
    assert_val(v, "[0.5, -1, 2, 3, 4, 5, 6, 7, 8, -9]");
    assert_int_equal(mp_proxy_call(l, "__imul__", MP_TUPLE(MP_I64(0)), NULL), 0);
    assert_int_equal(mp_list_len(l), 0);
    assert_int_equal(mp_list_extend(l, MP_I64(1)), MP_EINVAL);
    assert_int_equal(mp_list_append(l, NULL), MP_EINVAL);
    assert_int_equal(mp_list_sort(l, "", false), MP_EINVAL);
    assert_null(mp_manager_list(m, MP_I64(5)));
    mp_proxy_free(s);
    mp_proxy_free(l);
    stop(m);
}

static void test_mgr_namespace_value_array(void **state)
{
    mp_manager *m = started();
    mp_proxy *ns = mp_manager_namespace(m);
    assert_non_null(ns);
    mp_val *v;
    assert_remote(mp_namespace_get(ns, "value", &v), "AttributeError",
                  "'Namespace' object has no attribute 'value'");
    assert_int_equal(mp_namespace_set(ns, "value", MP_STR("This is the value")), 0);
    assert_int_equal(mp_namespace_get(ns, "value", &v), 0);
    char *s = mp_val_tostring(v);
    assert_string_equal(s, "This is the value");
    free(s);
    mp_val_free(v);
    assert_int_equal(mp_namespace_set(ns, "my_list", MP_EMPTY_LIST), 0);
    assert_int_equal(mp_namespace_set(ns, "a", MP_I64(1)), 0);
    assert_proxy_repr(ns, "Namespace(a=1, my_list=[], value='This is the value')");
    /* The namespaces_mutable example: a fetched list is a copy. */
    assert_int_equal(mp_namespace_get(ns, "my_list", &v), 0);
    assert_int_equal(mp_val_list_append(v, MP_STR("This is the value")), 0);
    mp_val_free(v);
    assert_int_equal(mp_namespace_get(ns, "my_list", &v), 0);
    assert_val(v, "[]");
    assert_int_equal(mp_namespace_del(ns, "a"), 0);
    assert_remote(mp_namespace_del(ns, "a"), "AttributeError",
                  "'Namespace' object has no attribute 'a'");
    assert_int_equal(mp_namespace_copy(ns, &v), 0);
    assert_val(v, "{'value': 'This is the value', 'my_list': []}");
    assert_int_equal(mp_namespace_set(ns, "_private", MP_NONE), MP_EINVAL);
    assert_int_equal(mp_namespace_set(ns, "9x", MP_NONE), MP_EINVAL);
    assert_int_equal(mp_namespace_set(ns, "a b", MP_NONE), MP_EINVAL);
    assert_int_equal(mp_namespace_set(ns, "", MP_NONE), MP_EINVAL);
    assert_int_equal(mp_namespace_get(ns, NULL, &v), MP_EINVAL);
    mp_proxy *n2 = mp_manager_create(m, "Namespace",
                                     MP_TUPLE(MP_DICT(MP_STR("x"), MP_I64(1))));
    assert_proxy_repr(n2, "Namespace(x=1)");
    mp_proxy_free(n2);
    mp_proxy_free(ns);

    mp_proxy *val = mp_manager_value(m, "i", MP_I64(5));
    assert_proxy_repr(val, "Value('i', 5)");
    assert_int_equal(mp_valueproxy_set(val, MP_I64(7)), 0);
    assert_int_equal(mp_valueproxy_get(val, &v), 0);
    assert_val(v, "7");
    assert_int_equal(mp_valueproxy_set(val, NULL), MP_EINVAL);
    assert_null(mp_manager_value(m, "", MP_I64(1)));
    mp_proxy_free(val);

    {
        mp_val *r = mp_val_range(0, 10, 1);
        mp_proxy *a = mp_manager_array(m, "i", r);
        mp_val_free(r);
        assert_non_null(a);
        assert_int_equal(mp_arrayproxy_len(a), 10);
        for (int i = 0; i < 10; i++) {
            assert_int_equal(mp_arrayproxy_get(a, i, &v), 0);
            int64_t x = v->i;
            mp_val_free(v);
            assert_int_equal(mp_arrayproxy_set(a, i, MP_I64(x * x)), 0);
        }
        assert_proxy_repr(a, "array('i', [0, 1, 4, 9, 16, 25, 36, 49, 64, 81])");
        assert_int_equal(mp_arrayproxy_get(a, -1, &v), 0);
        assert_val(v, "81");
        assert_remote(mp_arrayproxy_get(a, 10, &v), "IndexError", "array index out of range");
        assert_remote(mp_arrayproxy_set(a, 0, MP_FLOAT(1.5)), "TypeError", NULL);
        assert_remote(mp_arrayproxy_set(a, 0, MP_I64(1LL << 31)), "OverflowError", NULL);
        assert_int_equal(mp_arrayproxy_set(a, 0, MP_I64(-(1LL << 31))), 0);
        assert_int_equal(mp_arrayproxy_tolist(a, &v), 0);
        assert_val(v, "[-2147483648, 1, 4, 9, 16, 25, 36, 49, 64, 81]");
        mp_proxy_free(a);
    }
    mp_proxy *f = mp_manager_array(m, "f", MP_LIST(MP_FLOAT(3.14), MP_I64(2)));
    assert_proxy_repr(f, "array('f', [3.140000104904175, 2.0])");
    mp_proxy_free(f);
    mp_proxy *b = mp_manager_array(m, "B", NULL);
    assert_proxy_repr(b, "array('B')");
    mp_proxy_free(b);
    assert_null(mp_manager_array(m, "B", MP_LIST(MP_I64(256))));
    assert_string_equal(mp_remote_error_type(), "OverflowError");
    assert_null(mp_manager_array(m, "z", NULL));
    assert_string_equal(mp_remote_error_type(), "ValueError");
    assert_null(mp_manager_array(m, "i", MP_I64(3)));
    stop(m);
}

/* ---- a registered type ------------------------------------------------------------------ */

struct counter {
    int64_t n;
};

static void *counter_new(const mp_val *args)
{
    int64_t start = 0;
    if (mp_val_len(args) > 1) {
        mp_remote_raise(MP_EINVAL, "TypeError", "Counter takes at most 1 argument (%zu given)",
                        mp_val_len(args));
        return NULL;
    }
    if (mp_val_len(args) == 1 && mp_val_as_int(mp_val_item(args, 0), &start) != 0) {
        mp_remote_raise(MP_EINVAL, "TypeError", "start must be an int");
        return NULL;
    }
    struct counter *c = malloc(sizeof *c);
    if (c != NULL)
        c->n = start;
    return c;
}

static void counter_free(void *self)
{
    free(self);
}

static int counter_add(void *self, const mp_val *args, mp_val **result)
{
    struct counter *c = self;
    int64_t k = 1;
    if (mp_val_len(args) == 1 && mp_val_as_int(mp_val_item(args, 0), &k) != 0)
        return mp_remote_raise(MP_EINVAL, "TypeError", "add() wants an int, not %s",
                               mp_val_type_name(mp_val_item(args, 0)));
    if (k < 0)
        return mp_remote_raise(-ERANGE, "ValueError", "cannot add %lld", (long long)k);
    c->n += k;
    *result = mp_val_int(c->n);
    return 0;
}

static int counter_get(void *self, const mp_val *args, mp_val **result)
{
    *result = mp_val_int(((struct counter *)self)->n);
    return 0;
}

static int counter_fail_plain(void *self, const mp_val *args, mp_val **result)
{
    return -EIO; /* no mp_remote_raise: a message is made up */
}

static int counter_timeout(void *self, const mp_val *args, mp_val **result)
{
    return mp_remote_raise(MP_ETIMEDOUT, "TimeoutError", "took too long");
}

static int counter_sleep(void *self, const mp_val *args, mp_val **result)
{
    double t = 0;
    mp_val_as_float(mp_val_item(args, 0), &t);
    usleep((useconds_t)(t * 1e6));
    return 0;
}

static int counter_big(void *self, const mp_val *args, mp_val **result)
{
    int64_t n = 0;
    mp_val_as_int(mp_val_item(args, 0), &n);
    char *buf = malloc((size_t)n);
    if (buf == NULL)
        return -ENOMEM;
    memset(buf, 'x', (size_t)n);
    *result = mp_val_bytes(buf, (size_t)n);
    free(buf);
    return 0;
}

static const mp_method counter_methods[] = {
    {"add", counter_add},         {"get", counter_get},     {"fail", counter_fail_plain},
    {"timeout", counter_timeout}, {"sleep", counter_sleep}, {"big", counter_big},
};

static mp_val *the_shared_dict;
static struct counter the_shared_counter;

static void *get_shared_dict(const mp_val *args)
{
    if (the_shared_dict == NULL)
        the_shared_dict = mp_val_dict();
    return the_shared_dict;
}

static void *get_shared_counter(const mp_val *args)
{
    return &the_shared_counter;
}

static void register_all(mp_manager *m)
{
    assert_int_equal(mp_manager_register(m, .type_name = "Counter", .create = counter_new,
                                         .destroy = counter_free, .methods = counter_methods,
                                         .nmethods = sizeof counter_methods /
                                                     sizeof counter_methods[0]),
                     0);
    assert_int_equal(mp_manager_register(m, .type_name = "shared_dict",
                                         .create = get_shared_dict, .kind = MP_PROXY_DICT),
                     0);
    assert_int_equal(mp_manager_register(m, .type_name = "shared_counter",
                                         .create = get_shared_counter,
                                         .methods = counter_methods, .nmethods = 2),
                     0);
}

static void test_mgr_registered(void **state)
{
    mp_manager *m = mp_manager_new();
    register_all(m);
    /* Refused registrations. */
    assert_int_equal(mp_manager_register(m, .type_name = "Counter", .create = counter_new),
                     MP_EINVAL);
    assert_int_equal(mp_manager_register(m, .type_name = "dict", .create = counter_new),
                     MP_EINVAL);
    assert_int_equal(mp_manager_register(m, .type_name = "Lock", .create = counter_new),
                     MP_EINVAL);
    assert_int_equal(mp_manager_register(m, .type_name = "NoCreate"), MP_EINVAL);
    assert_int_equal(mp_manager_register(m, .create = counter_new), MP_EINVAL);
    assert_int_equal(mp_manager_register(
                         m, .type_name = "0123456789012345678901234567890123456789012345678",
                         .create = counter_new),
                     MP_EINVAL);
    assert_int_equal(mp_manager_register(m, .type_name = "X", .create = counter_new,
                                         .kind = MP_PROXY_ARRAY),
                     MP_EINVAL);
    assert_int_equal(mp_manager_register(m, .type_name = "Y", .create = get_shared_dict,
                                         .kind = MP_PROXY_DICT, .methods = counter_methods,
                                         .nmethods = 1),
                     MP_EINVAL);
    static const mp_method dup[] = {{"a", counter_get}, {"a", counter_get}};
    assert_int_equal(mp_manager_register(m, .type_name = "Dup", .create = counter_new,
                                         .methods = dup, .nmethods = 2),
                     MP_EINVAL);
    assert_int_equal(mp_manager_register(m, .type_name = "Many", .create = counter_new,
                                         .methods = counter_methods, .nmethods = 1000),
                     MP_EINVAL);
    assert_int_equal(mp_manager_register(NULL, .type_name = "Z", .create = counter_new),
                     MP_EINVAL);
    assert_int_equal(mp_manager_start(m), 0);
    assert_int_equal(mp_manager_register(m, .type_name = "Late", .create = counter_new),
                     MP_EINVAL);

    mp_proxy *c = mp_manager_create(m, "Counter", MP_TUPLE(MP_I64(10)));
    assert_non_null(c);
    assert_int_equal(mp_proxy_kind_of(c), MP_PROXY_CUSTOM);
    assert_string_equal(mp_proxy_typeid(c), "Counter");
    mp_val *v;
    assert_int_equal(mp_proxy_call(c, "add", MP_TUPLE(MP_I64(5)), &v), 0);
    assert_val(v, "15");
    assert_int_equal(mp_proxy_call(c, "add", NULL, NULL), 0);
    assert_int_equal(mp_proxy_call(c, "get", NULL, &v), 0);
    assert_val(v, "16");
    assert_remote(mp_proxy_call(c, "add", MP_TUPLE(MP_STR("x")), &v), "TypeError",
                  "add() wants an int, not str");
    assert_int_equal(mp_remote_error_code(), MP_EINVAL);
    assert_remote(mp_proxy_call(c, "add", MP_TUPLE(MP_I64(-1)), &v), "ValueError",
                  "cannot add -1");
    assert_int_equal(mp_remote_error_code(), -ERANGE);
    assert_remote(mp_proxy_call(c, "fail", NULL, &v), "Error", NULL);
    assert_int_equal(mp_remote_error_code(), -EIO);
    /* Codes of a normal outcome pass through. */
    assert_int_equal(mp_proxy_call(c, "timeout", NULL, &v), MP_ETIMEDOUT);
    assert_remote(mp_proxy_call(c, "nope", NULL, &v), "AttributeError",
                  "method 'nope' of 'Counter' object is not exposed");
    assert_proxy_repr(c, "<Counter object>");
    /* Big replies and requests go through arena blocks. */
    assert_int_equal(mp_proxy_call(c, "big", MP_TUPLE(MP_I64(200000)), &v), 0);
    assert_int_equal(v->type, MP_VAL_BYTES);
    assert_int_equal(v->s.len, 200000);
    assert_int_equal(v->s.ptr[199999], 'x');
    assert_remote(mp_proxy_call(c, "add", MP_TUPLE(v), NULL), "TypeError", NULL);
    mp_val_free(v);

    assert_null(mp_manager_create(m, "Counter", MP_TUPLE(MP_STR("x"))));
    assert_int_equal(mp_last_error(), MP_EREMOTE);
    assert_string_equal(mp_remote_error_message(), "start must be an int");
    assert_null(mp_manager_create(m, "NoSuchType", NULL));
    assert_string_equal(mp_remote_error_type(), "KeyError");
    assert_null(mp_manager_create(m, "Counter", MP_I64(1)));
    assert_int_equal(mp_last_error(), MP_EINVAL);

    /* A shared object: the same pointer gives the same object. */
    mp_proxy *s1 = mp_manager_create(m, "shared_dict", NULL);
    mp_proxy *s2 = mp_manager_create(m, "shared_dict", NULL);
    assert_int_equal(mp_proxy_kind_of(s1), MP_PROXY_DICT);
    assert_int_equal(mp_dict_set(s1, MP_STR("k"), MP_I64(1)), 0);
    assert_int_equal(mp_dict_getitem(s2, MP_STR("k"), &v), 0);
    assert_val(v, "1");
    mp_proxy_free(s1);
    assert_int_equal(mp_dict_len(s2), 1); /* still referenced */
    mp_proxy_free(s2);
    mp_proxy *s3 = mp_manager_create(m, "shared_dict", NULL);
    assert_int_equal(mp_dict_len(s3), 1); /* destroy is NULL: the program keeps it */
    mp_proxy_free(s3);
    mp_proxy *k1 = mp_manager_create(m, "shared_counter", NULL);
    mp_proxy *k2 = mp_manager_create(m, "shared_counter", NULL);
    assert_int_equal(mp_proxy_call(k1, "add", MP_TUPLE(MP_I64(3)), NULL), 0);
    assert_int_equal(mp_proxy_call(k2, "get", NULL, &v), 0);
    assert_val(v, "3");
    mp_proxy_free(k1);
    mp_proxy_free(k2);
    mp_proxy_free(c);
    /* A freed proxy is refused locally. */
    assert_int_equal(mp_proxy_call(c, "get", NULL, &v), MP_EINVAL);
    stop(m);
}

/* ---- processes of the family ------------------------------------------------------------- */

struct worker_arg {
    mp_proxy *d;
    mp_proxy *l;
    mp_proxy *c;
    int id;
    int n;
};

static int dict_worker(void *arg, size_t size)
{
    struct worker_arg *w = arg;
    for (int i = 0; i < w->n; i++) {
        if (mp_dict_set(w->d, MP_TUPLE(MP_I64(w->id), MP_I64(i)), MP_I64(i * 2)) != 0)
            return 1;
        if (mp_list_append(w->l, MP_I64(w->id)) != 0)
            return 2;
        if (mp_proxy_call(w->c, "add", NULL, NULL) != 0)
            return 3;
    }
    return 0;
}

static void test_mgr_children(void **state)
{
    mp_manager *m = mp_manager_new();
    register_all(m);
    assert_int_equal(mp_manager_start(m), 0);
    struct worker_arg w = {.d = mp_manager_dict(m, NULL),
                           .l = mp_manager_list(m, NULL),
                           .c = mp_manager_create(m, "Counter", NULL),
                           .n = 300};
    mp_process *ps[6];
    for (int i = 0; i < 6; i++) {
        w.id = i;
        ps[i] = mpt_start(dict_worker, &w, sizeof w);
    }
    for (int i = 0; i < 6; i++)
        mpt_join_ok(ps[i], MP_FOREVER);
    assert_int_equal(mp_dict_len(w.d), 6 * 300);
    assert_int_equal(mp_list_len(w.l), 6 * 300);
    for (int i = 0; i < 6; i++)
        assert_int_equal(mp_list_count(w.l, MP_I64(i)), 300);
    mp_val *v;
    assert_int_equal(mp_proxy_call(w.c, "get", NULL, &v), 0);
    assert_val(v, "1800");
    assert_int_equal(mp_dict_getitem(w.d, MP_TUPLE(MP_I64(5), MP_I64(299)), &v), 0);
    assert_val(v, "598");
    mp_proxy_free(w.d);
    mp_proxy_free(w.l);
    mp_proxy_free(w.c);
    stop(m);
}

struct thread_arg {
    mp_proxy *d;
    int id;
    int n;
    int bad;
};

static void *thread_worker(void *arg)
{
    struct thread_arg *t = arg;
    for (int i = 0; i < t->n; i++) {
        mp_val *v;
        if (mp_dict_set(t->d, MP_I64(t->id * 100000 + i), MP_I64(i)) != 0 ||
            mp_dict_getitem(t->d, MP_I64(t->id * 100000 + i), &v) != 0 || v->i != i)
            t->bad++;
        else
            mp_val_free(v);
    }
    return NULL;
}

static void test_mgr_threads(void **state)
{
    mp_manager *m = started();
    mp_proxy *d = mp_manager_dict(m, NULL);
    pthread_t th[8];
    struct thread_arg ta[8];
    for (int i = 0; i < 8; i++) {
        ta[i] = (struct thread_arg){.d = d, .id = i, .n = 2000};
        assert_int_equal(pthread_create(&th[i], NULL, thread_worker, &ta[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ta[i].bad, 0);
    }
    assert_int_equal(mp_dict_len(d), 8 * 2000);
    /* The threads' channels were given back: many more threads still work. */
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 8; i++) {
            ta[i] = (struct thread_arg){.d = d, .id = 8 + round * 8 + i, .n = 20};
            assert_int_equal(pthread_create(&th[i], NULL, thread_worker, &ta[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(ta[i].bad, 0);
        }
    }
    mp_proxy_free(d);
    stop(m);
}

/* ---- hosted synchronisation objects and queues -------------------------------------------- */

struct sync_arg {
    mp_proxy *lock, *sem, *event, *cond, *barrier, *queue, *jqueue, *counter;
    int id;
};

static int sync_worker(void *arg, size_t size)
{
    struct sync_arg *a = arg;
    /* Locked increments of a manager counter. */
    for (int i = 0; i < 50; i++) {
        if (mp_proxy_acquire(a->lock, MP_FOREVER) != 0)
            return 1;
        mp_val *v;
        if (mp_proxy_call(a->counter, "get", NULL, &v) != 0)
            return 2;
        int64_t n = v->i;
        mp_val_free(v);
        if (mp_proxy_call(a->counter, "add", NULL, NULL) != 0)
            return 3;
        if (mp_proxy_call(a->counter, "get", NULL, &v) != 0 || v->i != n + 1)
            return 4;
        mp_val_free(v);
        if (mp_proxy_release(a->lock) != 0)
            return 5;
    }
    if (mp_proxy_wait(a->event, 10) != 0)
        return 6;
    int idx = mp_proxy_wait(a->barrier, 10);
    if (idx < 0 || idx > 3)
        return 7;
    if (mp_proxy_put(a->queue, MP_TUPLE(MP_I64(a->id), MP_STR("done")), MP_FOREVER) != 0)
        return 8;
    mp_val *job;
    if (mp_proxy_get(a->jqueue, 10, &job) != 0)
        return 9;
    mp_val_free(job);
    if (mp_proxy_task_done(a->jqueue) != 0)
        return 10;
    return 0;
}

static void test_mgr_sync_kinds(void **state)
{
    mp_manager *m = mp_manager_new();
    register_all(m);
    assert_int_equal(mp_manager_start(m), 0);
    struct sync_arg a = {
        .lock = mp_manager_lock(m),
        .sem = mp_manager_semaphore(m, 2),
        .event = mp_manager_event(m),
        .cond = mp_manager_condition(m),
        .barrier = mp_manager_barrier(m, 4, 0),
        .queue = mp_manager_queue(m, 0),
        .jqueue = mp_manager_joinable_queue(m, 0),
        .counter = mp_manager_create(m, "Counter", NULL),
    };
    assert_non_null(a.lock);
    assert_non_null(mp_proxy_native(a.lock));
    assert_non_null(a.barrier);
    mp_process *ps[4];
    for (int i = 0; i < 4; i++) {
        a.id = i;
        ps[i] = mpt_start(sync_worker, &a, sizeof a);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(mp_proxy_put(a.jqueue, MP_I64(i), MP_FOREVER), 0);
    usleep(20000);
    assert_int_equal(mp_proxy_is_set(a.event), 0);
    assert_int_equal(mp_proxy_set(a.event), 0);
    assert_int_equal(mp_proxy_join(a.jqueue, 20), 0);
    int got = 0;
    for (int i = 0; i < 4; i++) {
        mp_val *v;
        assert_int_equal(mp_proxy_get(a.queue, 20, &v), 0);
        got |= 1 << v->seq.items[0]->i;
        mp_val_free(v);
    }
    assert_int_equal(got, 15);
    for (int i = 0; i < 4; i++)
        mpt_join_ok(ps[i], MP_FOREVER);
    mp_val *v;
    assert_int_equal(mp_proxy_call(a.counter, "get", NULL, &v), 0);
    assert_val(v, "200");

    /* Each kind's own behaviour, in this process. */
    assert_int_equal(mp_proxy_acquire(a.lock, 0), 0);
    assert_int_equal(mp_proxy_call(a.lock, "locked", NULL, &v), 0);
    assert_val(v, "True");
    assert_int_equal(mp_proxy_release(a.lock), 0);
    assert_int_equal(mp_proxy_release(a.lock), MP_EINVAL);
    assert_int_equal(mp_proxy_acquire(a.sem, 0), 0);
    assert_int_equal(mp_proxy_get_value(a.sem), 1);
    assert_int_equal(mp_proxy_acquire(a.sem, 0), 0);
    assert_int_equal(mp_proxy_acquire(a.sem, 0.05), MP_ETIMEDOUT);
    assert_int_equal(mp_proxy_release(a.sem), 0);
    assert_int_equal(mp_proxy_release(a.sem), 0);
    mp_proxy *bs = mp_manager_bounded_semaphore(m, 1);
    assert_int_equal(mp_proxy_release(bs), MP_EINVAL);
    assert_string_equal(mp_remote_error_message(), "Semaphore released too many times");
    mp_proxy_free(bs);
    mp_proxy *rl = mp_manager_rlock(m);
    assert_int_equal(mp_proxy_acquire(rl, 0), 0);
    assert_int_equal(mp_proxy_acquire(rl, 0), 0);
    assert_int_equal(mp_proxy_release(rl), 0);
    assert_int_equal(mp_proxy_release(rl), 0);
    assert_int_equal(mp_proxy_release(rl), MP_EINVAL);
    mp_proxy_free(rl);
    assert_int_equal(mp_proxy_wait(a.cond, 0.01), MP_EINVAL); /* lock not held */
    assert_int_equal(mp_proxy_acquire(a.cond, MP_FOREVER), 0);
    assert_int_equal(mp_proxy_wait(a.cond, 0.05), MP_ETIMEDOUT);
    assert_int_equal(mp_proxy_notify(a.cond, 1), 0);
    assert_int_equal(mp_proxy_notify_all(a.cond), 0);
    assert_int_equal(mp_proxy_release(a.cond), 0);
    assert_int_equal(mp_proxy_clear(a.event), 0);
    assert_int_equal(mp_proxy_wait(a.event, 0.05), MP_ETIMEDOUT);
    assert_int_equal(mp_proxy_parties(a.barrier), 4);
    assert_int_equal(mp_proxy_n_waiting(a.barrier), 0);
    assert_int_equal(mp_proxy_broken(a.barrier), 0);
    assert_int_equal(mp_proxy_abort(a.barrier), 0);
    assert_int_equal(mp_proxy_wait(a.barrier, 1), MP_EBROKEN);
    assert_int_equal(mp_proxy_reset(a.barrier), 0);
    assert_int_equal(mp_proxy_broken(a.barrier), 0);
    assert_int_equal(mp_proxy_empty(a.queue), 1);
    assert_int_equal(mp_proxy_get(a.queue, 0, &v), MP_EEMPTY);
    assert_int_equal(mp_proxy_put(a.queue, MP_BYTES("\x00\x01", 2), 0), 0);
    assert_int_equal(mp_proxy_qsize(a.queue), 1);
    assert_int_equal(mp_proxy_full(a.queue), 0);
    assert_int_equal(mp_proxy_get(a.queue, 0, &v), 0);
    assert_val(v, "b'\\x00\\x01'");
    /* Raw bytes put into the native queue come out as bytes. */
    assert_int_equal(mp_queue_put(mp_proxy_native(a.queue), "\xff\xfe", 2, 0), 0);
    assert_int_equal(mp_proxy_get(a.queue, 0, &v), 0);
    assert_val(v, "b'\\xff\\xfe'");
    mp_proxy *bq = mp_manager_queue(m, 1);
    assert_int_equal(mp_proxy_put(bq, MP_NONE, 0), 0);
    assert_int_equal(mp_proxy_full(bq), 1);
    assert_int_equal(mp_proxy_put(bq, MP_NONE, 0.05), MP_EFULL);
    mp_proxy_free(bq);
    assert_int_equal(mp_proxy_task_done(a.jqueue), MP_EINVAL);
    assert_int_equal(mp_proxy_join(a.jqueue, 0), 0);
    /* Kind checks and bad arguments. */
    assert_int_equal(mp_proxy_acquire(a.event, 0), MP_EINVAL);
    assert_int_equal(mp_proxy_put(a.lock, MP_NONE, 0), MP_EINVAL);
    assert_int_equal(mp_proxy_acquire(a.lock, -2), MP_EINVAL);
    assert_int_equal(mp_proxy_wait(a.event, NAN), MP_EINVAL);
    assert_int_equal(mp_proxy_task_done(a.queue), MP_EINVAL);
    assert_null(mp_proxy_native(a.counter));
    assert_null(mp_manager_semaphore(m, -1));
    assert_null(mp_manager_barrier(m, 0, 0));
    assert_remote(mp_proxy_call(a.lock, "nope", NULL, NULL), "AttributeError", NULL);
    mp_proxy_free(a.lock);
    mp_proxy_free(a.sem);
    mp_proxy_free(a.event);
    mp_proxy_free(a.cond);
    mp_proxy_free(a.barrier);
    mp_proxy_free(a.queue);
    mp_proxy_free(a.jqueue);
    mp_proxy_free(a.counter);
    stop(m);
}

/* ---- over a socket, from unrelated programs ------------------------------------------------- */

/*
 * A manager serving on a free TCP port of 127.0.0.1 (with register_all's
 * types when registered), started, and *rm, another manager connected to it
 * over the socket (another program's view); *port, if not NULL, the port.
 */
static mp_manager *socket_pair(bool registered, mp_manager **rm, int *port)
{
    mp_manager *m = mp_manager_new(.host = "127.0.0.1", .port = 0);
    if (registered)
        register_all(m);
    assert_int_equal(mp_manager_start(m), 0);
    int p = 0;
    mp_manager_address(m, NULL, 0, NULL, 0, &p);
    *rm = mp_manager_new(.host = "127.0.0.1", .port = p);
    assert_int_equal(mp_manager_connect(*rm), 0);
    if (port != NULL)
        *port = p;
    return m;
}

static int run_peer(const char *addr, const char *key, const char *mode)
{
    pid_t pid;
    char *argv[] = {(char *)MPT_MGR_PEER, (char *)addr, (char *)key, (char *)mode, NULL};
    if (posix_spawn(&pid, MPT_MGR_PEER, NULL, NULL, argv, environ) != 0)
        return -1;
    return mpt_wait_status(pid);
}

static void remote_round(mp_manager *m, const char *addr)
{
    mp_proxy *d = mp_manager_create(m, "shared_dict", NULL);
    assert_int_equal(mp_dict_set(d, MP_STR("from_test"), MP_I64(41)), 0);
    assert_int_equal(run_peer(addr, "secret", "use"), 0);
    mp_val *v;
    assert_int_equal(mp_dict_getitem(d, MP_STR("from_peer"), &v), 0);
    assert_val(v, "42");
    assert_int_equal(run_peer(addr, "wrong", "badkey"), 0);
    assert_int_equal(run_peer(addr, "", "badkey"), 0);
    assert_int_equal(run_peer(addr, "secret", "garbage"), 0);
    /* The server is fine after all that. */
    assert_int_equal(mp_dict_len(d), 2);
    mp_proxy_free(d);
}

static void test_mgr_remote(void **state)
{
    mp_manager *m = mp_manager_new(.host = "127.0.0.1", .port = 0, .authkey = "secret",
                                   .authkey_len = 6);
    register_all(m);
    assert_int_equal(mp_manager_start(m), 0);
    char host[64];
    int port = 0;
    assert_int_equal(mp_manager_address(m, NULL, 0, host, sizeof host, &port), 2);
    assert_string_equal(host, "127.0.0.1");
    assert_true(port > 0);
    char addr[96];
    snprintf(addr, sizeof addr, "%s:%d", host, port);
    remote_round(m, addr);

    /* A connected manager in this program: calls go over the socket. */
    mp_manager *c = mp_manager_new(.host = "127.0.0.1", .port = port, .authkey = "secret",
                                   .authkey_len = 6);
    assert_int_equal(mp_manager_connect(c), 0);
    assert_int_equal(mp_manager_connect(c), MP_EINVAL);
    assert_int_equal(mp_manager_pid(c), 0);
    mp_proxy *d = mp_manager_dict(c, MP_DICT(MP_I64(1), MP_STR("one")));
    assert_proxy_repr(d, "{1: 'one'}");
    mp_proxy *ev = mp_manager_event(c);
    assert_null(mp_proxy_native(ev));
    assert_int_equal(mp_proxy_wait(ev, 0.05), MP_ETIMEDOUT);
    assert_int_equal(mp_proxy_set(ev), 0);
    assert_int_equal(mp_proxy_wait(ev, 0.05), 0);
    mp_proxy *q = mp_manager_queue(c, 0);
    double t0 = mp__now();
    mp_val *v;
    assert_int_equal(mp_proxy_get(q, 0.3, &v), MP_EEMPTY);
    assert_true(mp__now() - t0 >= 0.29);
    mp_proxy *cnt = mp_manager_create(c, "Counter", MP_TUPLE(MP_I64(1)));
    assert_int_equal(mp_proxy_call(cnt, "add", MP_TUPLE(MP_I64(1)), &v), 0);
    assert_val(v, "2");
    assert_int_equal(mp_proxy_call(cnt, "big", MP_TUPLE(MP_I64(300000)), &v), 0);
    assert_int_equal(v->s.len, 300000);
    mp_val_free(v);
    mp_proxy_free(cnt);
    mp_proxy_free(q);
    mp_proxy_free(ev);
    mp_proxy_free(d);
    mp_manager_free(c);

    /* A wrong key, and no server. */
    mp_manager *bad = mp_manager_new(.host = "127.0.0.1", .port = port, .authkey = "nope",
                                     .authkey_len = 4);
    assert_int_equal(mp_manager_connect(bad), MP_EAUTH);
    mp_manager_free(bad);
    /* A peer shuts the server down. */
    assert_int_equal(run_peer(addr, "secret", "shutdown"), 0);
    for (int i = 0; i < 200 && mp_manager_pid(m) != 0; i++)
        usleep(10000);
    assert_int_equal(mp_manager_pid(m), 0);
    mp_proxy *late = mp_manager_dict(m, NULL);
    assert_null(late);
    assert_int_equal(mp_last_error(), MP_EEOF);
    stop(m);

    /* AF_UNIX, by path. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/mp-test-mgr-%d", (int)getpid());
    m = mp_manager_new(.path = path, .authkey = "secret", .authkey_len = 6);
    register_all(m);
    assert_int_equal(mp_manager_start(m), 0);
    char got[108];
    assert_int_equal(mp_manager_address(m, got, sizeof got, NULL, 0, NULL), 1);
    assert_string_equal(got, path);
    remote_round(m, path);
    /* The address is taken: a second server cannot start. */
    mp_manager *m2 = mp_manager_new(.path = path);
    assert_int_equal(mp_manager_start(m2), -EADDRINUSE);
    assert_int_equal(mp_manager_start(m2), MP_EINVAL);
    mp_manager_free(m2);
    stop(m);
    assert_int_equal(access(path, F_OK), -1);
    mp_manager *none = mp_manager_new(.path = path);
    assert_int_equal(mp_manager_connect(none), -ENOENT);
    mp_manager_free(none);
}

/* Python's default authkey: current_process().authkey, inherited by
 * children, unknown to unrelated programs. */
struct key_client_arg {
    int port;
    bool own_key; /* set a key of its own first: then refused */
};

static int key_client(void *arg, size_t size)
{
    const struct key_client_arg *a = arg;
    if (a->own_key && mp_process_set_authkey(mp_current_process(), "other", 5) != 0)
        return 3;
    mp_manager *c = mp_manager_new(.host = "127.0.0.1", .port = a->port);
    if (c == NULL)
        return 4;
    int r = mp_manager_connect(c);
    int code = 5;
    if (a->own_key) {
        code = r == MP_EAUTH ? 0 : 6;
    } else if (r == 0) {
        mp_proxy *d = mp_manager_dict(c, NULL);
        code = d != NULL && mp_dict_set(d, MP_STR("child"), MP_I64(1)) == 0 ? 0 : 7;
        mp_proxy_free(d);
    }
    mp_manager_free(c);
    return code;
}

static void test_mgr_default_authkey(void **state)
{
    mp_manager *m = mp_manager_new(.host = "127.0.0.1", .port = 0);
    assert_int_equal(mp_manager_start(m), 0);
    int port = 0;
    assert_int_equal(mp_manager_address(m, NULL, 0, NULL, 0, &port), 2);
    for (int own = 0; own < 2; own++) {
        struct key_client_arg a = {.port = port, .own_key = own};
        mpt_run_ok(key_client, &a, sizeof a, 60);
    }
    /* The same key given explicitly works; another does not. */
    unsigned char key[MP_AUTHKEY_MAX];
    int n = mp_process_authkey(mp_current_process(), key, sizeof key);
    assert_int_equal(n, 32);
    mp_manager *c = mp_manager_new(.host = "127.0.0.1", .port = port, .authkey = key,
                                   .authkey_len = (size_t)n);
    assert_int_equal(mp_manager_connect(c), 0);
    mp_manager_free(c);
    c = mp_manager_new(.host = "127.0.0.1", .port = port, .authkey = "", .authkey_len = 0);
    assert_int_equal(mp_manager_connect(c), MP_EAUTH);
    mp_manager_free(c);
    /* An unrelated program has a key of its own. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(run_peer(addr, "", "badkey"), 0);
    stop(m);
}

/* ---- reliability ------------------------------------------------------------------------------ */

static int busy_client(void *arg, size_t size)
{
    struct worker_arg *w = arg;
    for (int i = 0;; i++) {
        mp_dict_set(w->d, MP_I64(w->id * 1000000 + i % 100), MP_LIST(MP_I64(i), MP_STR("x")));
        mp_val *v;
        if (mp_dict_get(w->d, MP_I64(w->id * 1000000 + i % 100), NULL, &v) == 0)
            mp_val_free(v);
        if (w->c != NULL && i % 8 == 0)
            mp_proxy_call(w->c, "sleep", MP_TUPLE(MP_FLOAT(0.002)), NULL);
    }
    return 0;
}

static void test_mgr_client_killed(void **state)
{
    mp_manager *m = mp_manager_new();
    register_all(m);
    assert_int_equal(mp_manager_start(m), 0);
    struct worker_arg w = {.d = mp_manager_dict(m, NULL),
                           .c = mp_manager_create(m, "Counter", NULL)};
    /* More kills than channels: dead clients' channels must be reused. */
    for (int round = 0; round < MGR_NCHAN / 4 + 8; round++) {
        mp_process *ps[5];
        for (int i = 0; i < 5; i++) {
            w.id = round * 5 + i;
            ps[i] = mpt_start(busy_client, &w, sizeof w);
        }
        usleep(2000 + (useconds_t)(rnd() % 8000));
        for (int i = 0; i < 5; i++) {
            assert_int_equal(mp_process_kill(ps[i]), 0);
            assert_int_equal(mp_process_join(ps[i], MP_FOREVER), 0);
            mp_process_free(ps[i]);
        }
        /* Other clients (this one) are not disturbed. */
        assert_int_equal(mp_dict_set(w.d, MP_STR("alive"), MP_I64(round)), 0);
    }
    mp_val *v;
    assert_int_equal(mp_dict_getitem(w.d, MP_STR("alive"), &v), 0);
    mp_val_free(v);
    assert_true(mp_dict_len(w.d) > 1);
    mp_proxy_free(w.d);
    mp_proxy_free(w.c);
    stop(m);
}

/*
 * Random client kills: client processes of the family SIGKILLed at random
 * moments (seed printed; MPT_SEED replays the parent's choices) while they
 * append to a list, put to and get from a hosted queue, set and get dict
 * items and take a hosted lock, and the others go on.  Each client notes in
 * shared memory what it attempted before a call and what was acknowledged
 * (returned 0) after it.  Afterwards: every acknowledged append and put is
 * in the server exactly once, nothing is there twice or unattempted (a get
 * in flight in a killed client may take one item with it), each dict key
 * holds the last acknowledged or the attempted value, the lock was never
 * held twice, a lock left held by a killed client is acquired with
 * MP_EOWNERDEAD, and nothing hangs.
 */
enum { RK_IDS = 96, RK_GOT = 1 << 18, RK_LIVE = 4 };
#define RK_TAG(id, j) ((int64_t)(id)*1000000 + (int64_t)(j))

struct rk_client {
    uint32_t att_l, ack_l, att_q, ack_q, att_d, ack_d;
};

struct rk_shared {
    struct rk_client c[RK_IDS];
    int64_t got[RK_GOT];
    uint32_t ngot, in_cs, cs_violations, ownerdead, stop;
};

struct rk_arg {
    mp_proxy *d, *l, *q, *lk;
    struct rk_shared *sh;
    int id;
};

static void rk_store(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static int rk_lock_step(struct rk_arg *a)
{
    struct rk_shared *sh = a->sh;
    int r = mp_proxy_acquire(a->lk, 10);
    if (r == MP_EOWNERDEAD) {
        __atomic_fetch_add(&sh->ownerdead, 1, __ATOMIC_SEQ_CST);
        rk_store(&sh->in_cs, 0);
    } else if (r != 0) {
        return 12;
    }
    if (__atomic_exchange_n(&sh->in_cs, 1, __ATOMIC_SEQ_CST) != 0)
        __atomic_fetch_add(&sh->cs_violations, 1, __ATOMIC_SEQ_CST);
    usleep(100);
    rk_store(&sh->in_cs, 0);
    return mp_proxy_release(a->lk) == 0 ? 0 : 13;
}

static int rk_client_main(void *arg, size_t size)
{
    struct rk_arg *a = arg;
    struct rk_shared *sh = a->sh;
    struct rk_client *me = &sh->c[a->id];
    uint32_t nl = 0, nq = 0, nd = 0;
    for (uint32_t i = 0; !__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST); i++) {
        mp_val *v = NULL;
        int r;
        switch (i % 5) {
        case 0:
            rk_store(&me->att_l, nl + 1);
            if (mp_list_append(a->l, MP_I64(RK_TAG(a->id, nl))) != 0)
                return 10;
            rk_store(&me->ack_l, ++nl);
            break;
        case 1:
            rk_store(&me->att_q, nq + 1);
            if (mp_proxy_put(a->q, MP_I64(RK_TAG(a->id, nq)), 10) != 0)
                return 11;
            rk_store(&me->ack_q, ++nq);
            break;
        case 2:
            r = mp_proxy_get(a->q, 0, &v);
            if (r == 0) {
                uint32_t k = __atomic_fetch_add(&sh->ngot, 1, __ATOMIC_SEQ_CST);
                if (k >= RK_GOT || v->type != MP_VAL_INT)
                    return 14;
                __atomic_store_n(&sh->got[k], v->i, __ATOMIC_SEQ_CST);
                mp_val_free(v);
            } else if (r != MP_EEMPTY) {
                return 15;
            }
            break;
        case 3:
            rk_store(&me->att_d, nd + 1);
            if (mp_dict_set(a->d, MP_I64(a->id), MP_I64(nd)) != 0)
                return 16;
            rk_store(&me->ack_d, ++nd);
            if (mp_dict_getitem(a->d, MP_I64(a->id), &v) != 0)
                return 17;
            r = v->type == MP_VAL_INT && v->i == (int64_t)nd - 1 ? 0 : 18;
            mp_val_free(v);
            if (r != 0)
                return r;
            break;
        default:
            if ((r = rk_lock_step(a)) != 0)
                return r;
        }
    }
    return 0;
}

/* Counts one appearance of tag in the server; fails on an unattempted or
 * duplicated one.  seen[id] has att entries. */
static void rk_seen(uint8_t **seen, const uint32_t *att, int64_t tag)
{
    int64_t id = tag / 1000000, j = tag % 1000000;
    assert_true(tag >= 0 && id < RK_IDS);
    if ((uint32_t)j >= att[id])
        fail_msg("tag %lld was never attempted (%u)", (long long)tag, att[id]);
    if (seen[id][j]++ != 0)
        fail_msg("tag %lld arrived twice", (long long)tag);
}

static void test_mgr_random_client_kills(void **state)
{
    /* Clients are killed for a fixed time and at least 11 kills are asked
     * for; under valgrind a spawned client takes seconds to start. */
    if (mpt_valgrind()) {
        fprintf(stderr, "test_mgr_random_client_kills: skipped under valgrind (a stress test "
                        "by the clock; processes start too slowly there)\n");
        skip();
    }
    uint64_t rng = mpt_seed("managers random client kills") | 1;
    mp_manager *m = started();
    struct rk_shared *sh = mp_shared_alloc(sizeof *sh);
    assert_non_null(sh);
    for (size_t k = 0; k < RK_GOT; k++)
        sh->got[k] = -1;
    struct rk_arg a = {.d = mp_manager_dict(m, NULL),
                       .l = mp_manager_list(m, NULL),
                       .q = mp_manager_queue(m, 0),
                       .lk = mp_manager_lock(m),
                       .sh = sh};
    assert_non_null(a.d);
    assert_non_null(a.l);
    assert_non_null(a.q);
    assert_non_null(a.lk);
    mp_process *live[RK_LIVE];
    int next = 0, kills = 0;
    for (int i = 0; i < RK_LIVE; i++)
        a.id = next++, live[i] = mpt_start(rk_client_main, &a, sizeof a);
    double t0 = mp__now();
    while (mp__now() - t0 < 2.5 && next < RK_IDS) {
        usleep((useconds_t)(2000 + mpt_rand(&rng) % 20000));
        int v = (int)(mpt_rand(&rng) % RK_LIVE);
        assert_int_equal(mp_process_kill(live[v]), 0);
        assert_int_equal(mp_process_join(live[v], 10), 0);
        int code = 0;
        assert_int_equal(mp_process_exitcode(live[v], &code), 0);
        if (code != -SIGKILL)
            fail_msg("client exited with %d before it was killed", code);
        mp_process_free(live[v]);
        kills++;
        a.id = next++;
        live[v] = mpt_start(rk_client_main, &a, sizeof a);
    }
    rk_store(&sh->stop, 1);
    for (int i = 0; i < RK_LIVE; i++) {
        assert_int_equal(mp_process_join(live[i], 30), 0);
        int code = -1;
        assert_int_equal(mp_process_exitcode(live[i], &code), 0);
        if (code != 0)
            fail_msg("surviving client exited with %d", code);
        mp_process_free(live[i]);
    }
    double took = mp__now() - t0;
    uint32_t att_l[RK_IDS], att_q[RK_IDS];
    uint8_t *seen_l[RK_IDS], *seen_q[RK_IDS];
    for (int id = 0; id < RK_IDS; id++) {
        att_l[id] = sh->c[id].att_l;
        att_q[id] = sh->c[id].att_q;
        seen_l[id] = calloc(att_l[id] + 1, 1);
        seen_q[id] = calloc(att_q[id] + 1, 1);
    }
    /* The list: every acknowledged append exactly once, none twice. */
    mp_val *all = NULL;
    ssize_t len = mp_list_len(a.l);
    assert_true(len >= 0);
    assert_int_equal(mp_list_slice(a.l, 0, len, 1, &all), 0);
    assert_int_equal(all->seq.len, (size_t)len);
    for (size_t k = 0; k < all->seq.len; k++)
        rk_seen(seen_l, att_l, all->seq.items[k]->i);
    mp_val_free(all);
    size_t acked_l = 0, acked_q = 0, unacked_in_l = 0, got = 0, drained = 0, lost_q = 0;
    for (int id = 0; id < next; id++) {
        for (uint32_t j = 0; j < att_l[id]; j++) {
            if (j < sh->c[id].ack_l && seen_l[id][j] != 1)
                fail_msg("acknowledged append %d/%u missing", id, j);
            unacked_in_l += j >= sh->c[id].ack_l && seen_l[id][j];
        }
        acked_l += sh->c[id].ack_l;
    }
    /* The queue: what clients got plus what is left, each at most once;
     * an acknowledged put is missing only if a killed client's get took it. */
    uint32_t ngot = sh->ngot < RK_GOT ? sh->ngot : RK_GOT;
    for (uint32_t k = 0; k < ngot; k++)
        if (sh->got[k] >= 0)
            rk_seen(seen_q, att_q, sh->got[k]), got++;
    mp_val *v;
    int r;
    while ((r = mp_proxy_get(a.q, 0, &v)) == 0) {
        rk_seen(seen_q, att_q, v->i);
        mp_val_free(v);
        drained++;
    }
    assert_int_equal(r, MP_EEMPTY);
    for (int id = 0; id < next; id++) {
        for (uint32_t j = 0; j < sh->c[id].ack_q; j++)
            lost_q += seen_q[id][j] == 0;
        acked_q += sh->c[id].ack_q;
    }
    if (lost_q > (size_t)kills)
        fail_msg("%zu acknowledged puts missing after %d kills", lost_q, kills);
    /* The dict: each key holds the last acknowledged or the attempted value. */
    ssize_t keys = 0;
    for (int id = 0; id < next; id++) {
        struct rk_client *c = &sh->c[id];
        r = mp_dict_getitem(a.d, MP_I64(id), &v);
        if (r == 0) {
            assert_int_equal(v->type, MP_VAL_INT);
            if (v->i + 1 < (int64_t)c->ack_d || v->i + 1 > (int64_t)c->att_d)
                fail_msg("dict[%d] = %lld, acknowledged %u, attempted %u", id, (long long)v->i,
                         c->ack_d, c->att_d);
            mp_val_free(v);
            keys++;
        } else {
            assert_int_equal(r, MP_EREMOTE);
            assert_int_equal(c->ack_d, 0);
        }
    }
    assert_int_equal(mp_dict_len(a.d), keys);
    /* The lock: never held twice; free, or recovered from a dead holder. */
    assert_int_equal(sh->cs_violations, 0);
    r = mp_proxy_acquire(a.lk, 5);
    assert_true(r == 0 || r == MP_EOWNERDEAD);
    assert_int_equal(mp_proxy_release(a.lk), 0);
    assert_int_equal(mp_proxy_acquire(a.lk, 5), 0);
    assert_int_equal(mp_proxy_release(a.lk), 0);
    print_message(
        "managers random kills: %d clients, %d kills, %.1f s; list: %zu appends "
        "acknowledged, all present once, %zu unacknowledged present; queue: %zu puts "
        "acknowledged, %zu got by clients, %zu left, %zu lost in killed gets, 0 "
        "duplicated; dict: %zd keys consistent; lock: %u MP_EOWNERDEAD recoveries, "
        "0 double holds\n",
        next, kills, took, acked_l, unacked_in_l, acked_q, got, drained, lost_q, keys,
        sh->ownerdead);
    assert_true(kills > 10);
    for (int id = 0; id < RK_IDS; id++)
        free(seen_l[id]), free(seen_q[id]);
    mp_proxy_free(a.d);
    mp_proxy_free(a.l);
    mp_proxy_free(a.q);
    mp_proxy_free(a.lk);
    mp_shared_free(sh);
    stop(m);
}

struct blocked_arg {
    mp_proxy *c;
    int result;
    double took;
};

static void *blocked_call(void *arg)
{
    struct blocked_arg *b = arg;
    double t0 = mp__now();
    b->result = mp_proxy_call(b->c, "sleep", MP_TUPLE(MP_FLOAT(30.0)), NULL);
    b->took = mp__now() - t0;
    return NULL;
}

static void test_mgr_server_killed(void **state)
{
    mp_manager *rm;
    mp_manager *m = socket_pair(true, &rm, NULL);
    /* In the family, through shared memory. */
    mp_proxy *c = mp_manager_create(m, "Counter", NULL);
    mp_proxy *d = mp_manager_dict(m, NULL);
    mp_proxy *rc = mp_manager_create(rm, "Counter", NULL);
    struct blocked_arg b = {.c = c}, rb = {.c = rc};
    pthread_t th, rth;
    assert_int_equal(pthread_create(&th, NULL, blocked_call, &b), 0);
    assert_int_equal(pthread_create(&rth, NULL, blocked_call, &rb), 0);
    usleep(200000);
    assert_int_equal(kill(mp_manager_pid(m), SIGKILL), 0);
    pthread_join(th, NULL);
    pthread_join(rth, NULL);
    assert_int_equal(b.result, MP_EEOF);
    assert_true(b.took < 5);
    assert_int_equal(rb.result, MP_EEOF);
    assert_true(rb.took < 5);
    /* Later calls fail at once. */
    double t0 = mp__now();
    assert_int_equal(mp_dict_set(d, MP_I64(1), MP_I64(1)), MP_EEOF);
    assert_int_equal(mp_dict_len(d), MP_EEOF);
    assert_true(mp__now() - t0 < 1);
    assert_null(mp_manager_dict(m, NULL));
    assert_int_equal(mp_last_error(), MP_EEOF);
    int r = mp_dict_len(mp_manager_dict(rm, NULL));
    assert_int_equal(r, MP_EINVAL);
    assert_int_equal(mp_last_error(), MP_EEOF);
    assert_int_equal(mp_proxy_call(rc, "get", NULL, NULL), MP_EEOF);
    mp_proxy_free(rc);
    mp_proxy_free(c);
    mp_proxy_free(d);
    mp_manager_free(rm);
    assert_int_equal(mp_manager_shutdown(m), 0);
    mp_manager_free(m);
}

static void test_mgr_malformed(void **state)
{
    /* In this process, straight into the dispatcher: never a crash. */
    mp_manager *m = mp_manager_new();
    register_all(m);
    struct mgr_srv *s = mp__srv_new(m);
    mp__buf out = {0};
    uint8_t buf[128];
    for (int i = 0; i < 100000; i++) {
        size_t n = rnd() % sizeof buf;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)(rnd() % 4 ? rnd() % 12 : rnd());
        int r = mp__srv_handle(s, buf, n, &out, true);
        assert_true(r == 0 || r == 1);
        assert_true(out.len > 0);
        assert_true(out.p[0] <= MGR_ST_PROXY);
    }
    /* Valid requests with mutations, on live objects. */
    mp__buf req = {0};
    mp__buf_putc(&req, MGR_OP_CREATE);
    mp__buf_varint(&req, 4);
    mp__buf_put(&req, "list", 4);
    mp__val_encode_buf(&req, MP_EMPTY_TUPLE);
    assert_int_equal(mp__srv_handle(s, (uint8_t *)req.p, req.len, &out, true), 0);
    assert_int_equal(out.p[0], MGR_ST_PROXY);
    static const char *const methods[] = {"append",   "sort",        "getslice", "setslice",
                                          "insert",   "__getitem__", "pop",      "index",
                                          "__imul__", "extend"};
    for (int i = 0; i < 50000; i++) {
        req.len = 0;
        mp__buf_putc(&req, MGR_OP_CALL);
        mp__buf_varint(&req, 1 + rnd() % 2);
        const char *name = methods[rnd() % 10];
        mp__buf_varint(&req, strlen(name));
        mp__buf_put(&req, name, strlen(name));
        mp_val *args = mp_val_tuple();
        size_t na = rnd() % 4;
        for (size_t k = 0; k < na; k++) {
            mp_val *x = rnd() % 2 ? mp_val_int((int64_t)(rnd() % 7) - 3)
                                  : random_val(2, false);
            mp_val_list_append(args, x);
            mp_val_free(x);
        }
        mp__val_encode_buf(&req, args);
        mp_val_free(args);
        if (rnd() % 4 == 0)
            req.p[rnd() % req.len] ^= (char)(1 << (rnd() % 8));
        int r = mp__srv_handle(s, (uint8_t *)req.p, req.len, &out, true);
        assert_true(r == 0 || r == 1);
    }
    /* Keep the list from growing without bound through __imul__: it did not crash. */
    mp__buf_free(&req);
    mp__buf_free(&out);
    mp__srv_free(s);
    mp_manager_free(m);

    /* Through the shared-memory channel of a running server. */
    m = started();
    mp__buf rep = {0};
    for (int i = 0; i < 2000; i++) {
        size_t n = 1 + rnd() % 64;
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rnd();
        if (buf[0] == MGR_OP_SHUTDOWN)
            buf[0] = MGR_OP_CALL;
        assert_int_equal(mp__chan_call(m, buf, n, &rep), 0);
        assert_true(rep.len > 0);
    }
    assert_int_equal(mp__chan_call(m, "", 0, &rep), 0);
    assert_int_equal(rep.p[0], MGR_ST_ERROR);
    mp__buf_free(&rep);
    mp_proxy *d = mp_manager_dict(m, NULL);
    assert_non_null(d);
    /* A hosted lock's methods are refused through the channel. */
    mp_proxy *l = mp_manager_lock(m);
    mp__buf r2 = {0}, q2 = {0};
    mp__buf_putc(&q2, MGR_OP_CALL);
    mp__buf_varint(&q2, l->oid);
    mp__buf_varint(&q2, 7);
    mp__buf_put(&q2, "acquire", 7);
    mp__val_encode_buf(&q2, MP_EMPTY_TUPLE);
    assert_int_equal(mp__chan_call(m, q2.p, q2.len, &r2), 0);
    assert_int_equal(r2.p[0], MGR_ST_ERROR);
    mp__buf_free(&q2);
    mp__buf_free(&r2);
    mp_proxy_free(l);
    mp_proxy_free(d);
    stop(m);
}

static void test_mgr_lifecycle(void **state)
{
    assert_null(mp_manager_new(.path = "/tmp/x", .host = "h"));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_manager_new(.host = "h", .port = 70000));
    assert_null(mp_manager_new(.port = 5));
    assert_null(mp_manager_new(.authkey_len = 3));
    char longkey[300] = {0};
    assert_null(mp_manager_new(.authkey = longkey, .authkey_len = sizeof longkey));
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    assert_null(mp_manager_new(.path = longpath));
    assert_null(mp_manager_new_opts(NULL));

    mp_manager *m = mp_manager_new();
    assert_int_equal(mp_manager_pid(m), 0);
    assert_null(mp_manager_dict(m, NULL)); /* not started */
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_int_equal(mp_manager_shutdown(m), MP_EINVAL);
    assert_int_equal(mp_manager_connect(m), MP_EINVAL); /* no address */
    assert_int_equal(mp_manager_address(m, NULL, 0, NULL, 0, NULL), 0);
    assert_int_equal(mp_manager_start(m), 0);
    assert_int_equal(mp_manager_start(m), MP_EINVAL);
    assert_int_equal(mp_manager_serve_forever(m), MP_EINVAL);
    mp_proxy *d = mp_manager_dict(m, NULL);
    assert_int_equal(mp_manager_shutdown(m), 0);
    assert_int_equal(mp_manager_shutdown(m), 0);
    assert_int_equal(mp_dict_set(d, MP_I64(1), MP_I64(2)), MP_EEOF);
    mp_proxy_free(d);
    mp_manager_free(m);
    assert_int_equal(mp_manager_start(m), MP_EINVAL);
    assert_null(mp_manager_dict(m, NULL));
    mp_manager_free(NULL);
    assert_int_equal(mp_manager_start(NULL), MP_EINVAL);
    assert_int_equal(mp_manager_shutdown(NULL), MP_EINVAL);
    assert_int_equal(mp_manager_pid(NULL), MP_EINVAL);

    /* Free without shutdown: the server goes away with the manager. */
    m = started();
    d = mp_manager_dict(m, NULL);
    pid_t pid = mp_manager_pid(m);
    mp_proxy_free(d);
    mp_manager_free(m);
    assert_int_equal(kill(pid, 0), -1);
    /* A proxy outliving its manager is refused. */
    m = started();
    d = mp_manager_dict(m, NULL);
    stop(m);
    assert_int_equal(mp_dict_len(d), MP_EINVAL);
    mp_proxy_free(d);

    /* serve_forever in a raw child; a client in this process shuts it down. */
    m = mp_manager_new();
    pid = fork();
    if (pid == 0)
        _exit(mp_manager_serve_forever(m) == 0 ? 0 : 1);
    assert_int_equal(mp__mgr_wait_started(m, 10), 0);
    d = mp_manager_list(m, MP_LIST(MP_I64(1)));
    assert_int_equal(mp_list_len(d), 1);
    mp_proxy_free(d);
    assert_int_equal(mp_manager_shutdown(m), 0);
    assert_int_equal(mpt_wait_status(pid), 0);
    mp_manager_free(m);
}

struct wait_arg {
    mp_proxy *p;
    int result;
    int result2;
};

static void *cond_waiter(void *arg)
{
    struct wait_arg *w = arg;
    w->result2 = mp_proxy_acquire(w->p, MP_FOREVER);
    w->result = mp_proxy_wait(w->p, MP_FOREVER);
    return NULL;
}

static void *barrier_waiter(void *arg)
{
    struct wait_arg *w = arg;
    w->result = mp_proxy_wait(w->p, MP_FOREVER);
    return NULL;
}

static void test_mgr_shutdown_wakes_remote_waiters(void **state)
{
    mp_manager *rm;
    mp_manager *m = socket_pair(false, &rm, NULL);
    struct wait_arg c = {.p = mp_manager_condition(rm)},
                    b = {.p = mp_manager_barrier(rm, 3, 0)};
    assert_non_null(c.p);
    assert_non_null(b.p);
    pthread_t tc, tb;
    assert_int_equal(pthread_create(&tc, NULL, cond_waiter, &c), 0);
    assert_int_equal(pthread_create(&tb, NULL, barrier_waiter, &b), 0);
    usleep(300000);
    double t0 = mp__now();
    assert_int_equal(mp_manager_shutdown(m), 0);
    pthread_join(tc, NULL);
    pthread_join(tb, NULL);
    assert_true(mp__now() - t0 < 3);
    assert_int_equal(c.result2, 0);
    assert_true(c.result == 0 || c.result == MP_EEOF);
    assert_true(b.result == MP_EBROKEN || b.result == MP_EEOF);
    mp_proxy_free(c.p);
    mp_proxy_free(b.p);
    mp_manager_free(rm);
    mp_manager_free(m);
}

/* ---- hosted waits end when the server goes (issue 16) ------------------------------------------- */

enum {
    HW_QGET,       /* Queue.get, forever */
    HW_QGET_TIMED, /* Queue.get(timeout=30): MP_EEOF, not MP_EEMPTY */
    HW_QPUT,       /* Queue.put on a full queue, forever */
    HW_LOCK,
    HW_RLOCK,
    HW_SEM,
    HW_EVENT,
    HW_COND,
    HW_BARRIER,
    HW_JOIN, /* JoinableQueue.join with a task not done */
    HW_NKINDS
};

static const char *const hw_names[HW_NKINDS] = {
    "Queue.get",     "Queue.get(30)",      "Queue.put",  "Lock.acquire",
    "RLock.acquire", "Semaphore.acquire",  "Event.wait", "Condition.wait",
    "Barrier.wait",  "JoinableQueue.join",
};

/* One waiter's report, in the arena (a child process writes it). */
struct hw_slot {
    _Atomic int ready;
    _Atomic int done;
    int result;
    double at; /* CLOCK_MONOTONIC when the call returned */
};

struct hw_arg {
    mp_proxy *p[HW_NKINDS];
    int kind;
    struct hw_slot *slot;
};

/* Block in one hosted wait until it ends; the result goes to the slot. */
static void hw_block(const struct hw_arg *a)
{
    mp_proxy *p = a->p[a->kind];
    mp_val *v = NULL;
    int r;
    atomic_store(&a->slot->ready, 1);
    switch (a->kind) {
    case HW_QGET:
        r = mp_proxy_get(p, MP_FOREVER, &v);
        break;
    case HW_QGET_TIMED:
        r = mp_proxy_get(p, 30, &v);
        break;
    case HW_QPUT:
        r = mp_proxy_put(p, MP_I64(2), MP_FOREVER);
        break;
    case HW_EVENT:
    case HW_BARRIER:
        r = mp_proxy_wait(p, MP_FOREVER);
        break;
    case HW_COND:
        r = mp_proxy_acquire(p, MP_FOREVER);
        if (r == 0)
            r = mp_proxy_wait(p, MP_FOREVER);
        break;
    case HW_JOIN:
        r = mp_proxy_join(p, MP_FOREVER);
        break;
    default:
        r = mp_proxy_acquire(p, MP_FOREVER);
        break;
    }
    mp_val_free(v);
    a->slot->at = mp__now();
    a->slot->result = r;
    atomic_store(&a->slot->done, 1);
}

static void *hw_thread(void *arg)
{
    hw_block(arg);
    return NULL;
}

static int hw_child(void *arg, size_t size)
{
    const struct hw_arg *a = arg;
    hw_block(a);
    return a->slot->result == MP_EEOF ? 0 : 1;
}

/* The objects, in the states that make every wait block; the caller
 * (this thread) holds the Lock and the RLock. */
static void hw_objects(mp_manager *m, mp_proxy *p[HW_NKINDS])
{
    p[HW_QGET] = p[HW_QGET_TIMED] = mp_manager_queue(m, 0);
    p[HW_QPUT] = mp_manager_queue(m, 1);
    p[HW_LOCK] = mp_manager_lock(m);
    p[HW_RLOCK] = mp_manager_rlock(m);
    p[HW_SEM] = mp_manager_semaphore(m, 0);
    p[HW_EVENT] = mp_manager_event(m);
    p[HW_COND] = mp_manager_condition(m);
    p[HW_BARRIER] = mp_manager_barrier(m, 100, 0);
    p[HW_JOIN] = mp_manager_joinable_queue(m, 0);
    for (int k = 0; k < HW_NKINDS; k++)
        assert_non_null(p[k]);
    assert_int_equal(mp_proxy_put(p[HW_QPUT], MP_I64(1), 0), 0);
    assert_int_equal(mp_proxy_put(p[HW_JOIN], MP_I64(1), 0), 0);
    assert_int_equal(mp_proxy_acquire(p[HW_LOCK], MP_FOREVER), 0);
    assert_int_equal(mp_proxy_acquire(p[HW_RLOCK], MP_FOREVER), 0);
}

static void hw_free_objects(mp_proxy *p[HW_NKINDS])
{
    for (int k = 0; k < HW_NKINDS; k++)
        if (k != HW_QGET_TIMED)
            mp_proxy_free(p[k]);
}

/* Wait (at most 15 s) until the waiter of slot is about to block. */
static void hw_wait_ready(struct hw_slot *slot)
{
    for (int t = 0; t < 3000 && !atomic_load(&slot->ready); t++)
        usleep(5000);
}

/* Wait until every slot says done (or until limit): true when all did. */
static bool hw_wait_done(struct hw_slot *slots, int n, double limit)
{
    double until = mp__now() + limit;
    for (;;) {
        int done = 0;
        for (int i = 0; i < n; i++)
            done += atomic_load(&slots[i].done);
        if (done == n)
            return true;
        if (mp__now() > until)
            return false;
        usleep(2000);
    }
}

/*
 * Every kind of hosted wait, blocked forever: a thread and a child process
 * of the family per kind (through the arena), and a thread per kind of a
 * program connected over the socket (through a server thread); then the
 * server is SIGKILLed (kill) or shut down.  Every wait returns MP_EEOF,
 * soon; later calls on those proxies return MP_EEOF again.
 */
static void hosted_waits_end(bool kill_server)
{
    mp_manager *rm;
    mp_manager *m = socket_pair(false, &rm, NULL);

    enum { NW = 3 * HW_NKINDS };
    struct hw_slot *slots = mp_shared_alloc(NW * sizeof *slots);
    assert_non_null(slots);
    memset(slots, 0, NW * sizeof *slots);
    struct hw_arg args[NW];
    mp_proxy *fam[HW_NKINDS], *rem[HW_NKINDS];
    hw_objects(m, fam);
    hw_objects(rm, rem);
    pthread_t th[NW];
    mp_process *ps[HW_NKINDS];
    for (int i = 0; i < NW; i++) {
        args[i] = (struct hw_arg){.kind = i % HW_NKINDS, .slot = &slots[i]};
        memcpy(args[i].p, i / HW_NKINDS == 2 ? rem : fam, sizeof args[i].p);
        if (i / HW_NKINDS == 1) {
            ps[i % HW_NKINDS] = mpt_start(hw_child, &args[i], sizeof args[i]);
        } else {
            assert_int_equal(pthread_create(&th[i], NULL, hw_thread, &args[i]), 0);
        }
    }
    for (int i = 0; i < NW; i++)
        hw_wait_ready(&slots[i]);
    usleep(300000); /* into their sleeps */
    for (int i = 0; i < NW; i++)
        if (atomic_load(&slots[i].done))
            fail_msg("%s (waiter %d) returned %d before the server went",
                     hw_names[i % HW_NKINDS], i, slots[i].result);

    pid_t server = mp_manager_pid(m);
    double t0 = mp__now();
    if (kill_server)
        assert_int_equal(kill(server, SIGKILL), 0);
    else
        assert_int_equal(mp_manager_shutdown(m), 0);
    if (!hw_wait_done(slots, NW, 20)) {
        for (int i = 0; i < NW; i++)
            if (!atomic_load(&slots[i].done))
                print_error("still blocked: %s, waiter %d\n", hw_names[i % HW_NKINDS], i);
        fail_msg("hosted waits still blocked 20 s after the server %s",
                 kill_server ? "was killed" : "shut down");
    }
    double worst = 0;
    for (int i = 0; i < NW; i++) {
        double took = slots[i].at - t0;
        if (slots[i].result != MP_EEOF)
            fail_msg("%s (waiter %d): %d (%s), want MP_EEOF", hw_names[i % HW_NKINDS], i,
                     slots[i].result, mp_err_name(slots[i].result));
        if (took > worst)
            worst = took;
    }
    /* managers.h promises about 50 ms; the bound leaves room for a loaded
     * machine (the figure is printed for the record). */
    print_message(
        "# hosted waits (%s): all %d returned MP_EEOF, the last %.1f ms after the %s\n",
        mpt_method(), NW, worst * 1e3, kill_server ? "SIGKILL" : "shutdown");
    assert_true(worst < 2.0);
    for (int i = 0; i < NW; i++) {
        if (i / HW_NKINDS == 1)
            mpt_join_ok(ps[i % HW_NKINDS], MP_FOREVER);
        else
            pthread_join(th[i], NULL);
    }

    /* Later calls: MP_EEOF again, on both transports (never the socket's
     * -ECONNREFUSED), also on the manager handles. */
    mp_val *v = NULL;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(mp_proxy_release(fam[HW_LOCK]), MP_EEOF);
        assert_int_equal(mp_proxy_get(fam[HW_QGET], 0.01, &v), MP_EEOF);
        assert_int_equal(mp_proxy_set(fam[HW_EVENT]), MP_EEOF);
        assert_int_equal(mp_proxy_release(rem[HW_LOCK]), MP_EEOF);
        assert_int_equal(mp_proxy_get(rem[HW_QGET], 0.01, &v), MP_EEOF);
        assert_int_equal(mp_proxy_set(rem[HW_EVENT]), MP_EEOF);
        assert_null(mp_manager_dict(rm, NULL));
        assert_int_equal(mp_last_error(), MP_EEOF);
        assert_null(mp_manager_dict(m, NULL));
        assert_int_equal(mp_last_error(), MP_EEOF);
    }
    hw_free_objects(fam);
    hw_free_objects(rem);
    mp_shared_free(slots);
    assert_int_equal(mp_manager_shutdown(rm), 0);
    mp_manager_free(rm);
    assert_int_equal(mp_manager_shutdown(m), 0);
    mp_manager_free(m);
}

static void test_mgr_hosted_waits_server_killed(void **state)
{
    hosted_waits_end(true);
}

static void test_mgr_hosted_waits_shutdown(void **state)
{
    hosted_waits_end(false);
}

/*
 * Shutdown frees a hosted object only once the family processes blocked
 * in it have left: a waiter that cannot leave (stopped) makes the server
 * keep the object, and the waiter, continued, leaves with MP_EEOF from
 * memory that is still the queue's.  A waiter that left in time lets the
 * server free it.
 */
static void test_mgr_shutdown_keeps_objects_in_use(void **state)
{
    for (int stopped = 0; stopped < 2; stopped++) {
        mp_manager *m = started();
        mp_proxy *q = mp_manager_queue(m, 0);
        assert_non_null(q);
        mp_queue *native = mp_proxy_native(q);
        struct hw_slot *slot = mp_shared_alloc(sizeof *slot);
        assert_non_null(slot);
        memset(slot, 0, sizeof *slot);
        struct hw_arg a = {.kind = HW_QGET, .slot = slot};
        a.p[HW_QGET] = q;
        mp_process *p = mpt_start(hw_child, &a, sizeof a);
        hw_wait_ready(slot);
        usleep(200000);
        if (stopped)
            assert_int_equal(kill(mp_process_pid(p), SIGSTOP), 0);
        assert_int_equal(mp_manager_shutdown(m), 0);
        if (stopped) {
            /* Still a queue: the server did not free it under the waiter. */
            assert_int_equal(mp_queue_qsize(native), 0);
            assert_int_equal(kill(mp_process_pid(p), SIGCONT), 0);
        }
        mpt_join_ok(p, 10);
        assert_int_equal(slot->result, MP_EEOF);
        if (stopped)
            mp_queue_free(native); /* kept by the server: ours to free now */
        else
            assert_int_equal(mp_queue_qsize(native), MP_EINVAL);
        mp_shared_free(slot);
        mp_proxy_free(q);
        mp_manager_free(m);
    }
}

/* A value nested as deep as a value may be is refused as an argument (it
 * would sit one level deeper, in the argument tuple): MP_EINVAL at once,
 * on every transport, not the server's "malformed request". */
static mp_val *nested(int depth)
{
    mp_val *v = mp_val_int(7);
    for (int i = 0; i < depth; i++) {
        mp_val *l = mp_val_list();
        assert_non_null(l);
        assert_int_equal(mp_val_list_append(l, v), 0);
        mp_val_free(v);
        v = l;
    }
    return v;
}

static void test_mgr_depth(void **state)
{
    mp_manager *rm;
    mp_manager *m = socket_pair(false, &rm, NULL);
    mp_val *ok = nested(MP_VAL_MAX_DEPTH - 1), *deep = nested(MP_VAL_MAX_DEPTH);
    mp_manager *ms[2] = {m, rm};
    for (int i = 0; i < 2; i++) {
        mp_proxy *d = mp_manager_dict(ms[i], NULL);
        mp_proxy *q = mp_manager_queue(ms[i], 0);
        assert_int_equal(mp_dict_set(d, MP_I64(1), deep), MP_EINVAL);
        assert_int_equal(mp_proxy_put(q, deep, 0), MP_EINVAL);
        assert_int_equal(mp_proxy_call(d, "get", MP_TUPLE(deep), NULL), MP_EINVAL);
        assert_null(mp_manager_list(ms[i], MP_LIST(deep)));
        assert_int_equal(mp_last_error(), MP_EINVAL);
        assert_int_equal(mp_dict_set(d, MP_I64(1), ok), 0);
        mp_val *v;
        assert_int_equal(mp_dict_getitem(d, MP_I64(1), &v), 0);
        assert_true(mp_val_eq(v, ok));
        mp_val_free(v);
        assert_int_equal(mp_proxy_put(q, ok, 0), 0);
        assert_int_equal(mp_proxy_get(q, 1, &v), 0);
        assert_true(mp_val_eq(v, ok));
        mp_val_free(v);
        mp_proxy_free(q);
        mp_proxy_free(d);
    }
    mp_val_free(ok);
    mp_val_free(deep);
    mp_manager_free(rm);
    stop(m);
}

static mp_queue *the_shared_queue;

static void *get_shared_queue(const mp_val *args)
{
    if (the_shared_queue == NULL)
        the_shared_queue = mp_queue_new();
    return the_shared_queue;
}

static void test_mgr_registered_hosted_kind(void **state)
{
    mp_manager *m = mp_manager_new();
    assert_int_equal(mp_manager_register(m, .type_name = "get_queue",
                                         .create = get_shared_queue, .kind = MP_PROXY_QUEUE),
                     0);
    assert_int_equal(mp_manager_start(m), 0);
    mp_proxy *a = mp_manager_create(m, "get_queue", NULL);
    mp_proxy *b = mp_manager_create(m, "get_queue", NULL);
    assert_non_null(a);
    assert_int_equal(mp_proxy_kind_of(a), MP_PROXY_QUEUE);
    assert_non_null(mp_proxy_native(a));
    assert_ptr_equal(mp_proxy_native(a), mp_proxy_native(b));
    assert_int_equal(mp_proxy_put(a, MP_STR("hello"), 0), 0);
    mp_val *v;
    assert_int_equal(mp_proxy_get(b, 1, &v), 0);
    assert_val(v, "'hello'");
    mp_proxy_free(a);
    mp_proxy_free(b);
    stop(m);
}

static int forgetful_owner(void *arg, size_t size)
{
    pid_t *server = arg;
    mp_manager *m = mp_manager_new();
    if (m == NULL || mp_manager_start(m) != 0)
        return 1;
    mp_proxy *d = mp_manager_dict(m, NULL);
    if (d == NULL || mp_dict_set(d, MP_I64(1), MP_I64(2)) != 0)
        return 2;
    pid_t *shared = *(pid_t **)server;
    *shared = mp_manager_pid(m);
    return 0; /* no shutdown, no free: the exit finalizer stops the server */
}

static void test_mgr_exit_without_shutdown(void **state)
{
    pid_t *shared = mp_shared_alloc(sizeof *shared);
    assert_non_null(shared);
    mpt_run_ok(forgetful_owner, &shared, sizeof shared, 30);
    assert_true(*shared > 0);
    /* The server was a child of the owner, reaped by it before it exited. */
    assert_int_equal(kill(*shared, 0), -1);
    mp_shared_free(shared);
}

static int read_exitcode(void *arg, size_t size)
{
    mp_manager *m;
    if (size != sizeof m)
        return 10;
    memcpy(&m, arg, sizeof m);
    int code = -100;
    int r = mp_manager_exitcode(m, &code);
    return r == 0 ? (code == 0 ? 0 : 11) : 12;
}

/* Python's m._process.exitcode: None while it runs, 0 after shutdown, -9
 * for a server that was killed. */
static void test_mgr_exitcode(void **state)
{
    int code = -100;
    mp_manager *m = mp_manager_new();
    assert_int_equal(mp_manager_exitcode(m, &code), MP_ETIMEDOUT);
    assert_int_equal(mp_manager_start(m), 0);
    assert_int_equal(mp_manager_exitcode(m, &code), MP_ETIMEDOUT);
    assert_int_equal(mp_manager_exitcode(m, NULL), MP_EINVAL);
    assert_int_equal(mp_manager_exitcode(NULL, &code), MP_EINVAL);
    assert_int_equal(code, -100);
    assert_int_equal(mp_manager_shutdown(m), 0);
    assert_int_equal(mp_manager_exitcode(m, &code), 0);
    assert_int_equal(code, 0);
    /* Other processes of the family read it too. */
    mpt_run_ok(read_exitcode, &m, sizeof m, 30);
    mp_manager_free(m);

    m = started();
    assert_int_equal(kill(mp_manager_pid(m), SIGKILL), 0);
    int r = MP_ETIMEDOUT;
    for (int i = 0; i < 500 && r == MP_ETIMEDOUT; i++) {
        r = mp_manager_exitcode(m, &code);
        if (r == MP_ETIMEDOUT)
            usleep(10000);
    }
    assert_int_equal(r, 0);
    assert_int_equal(code, -SIGKILL);
    assert_int_equal(mp_manager_shutdown(m), 0);
    assert_int_equal(mp_manager_exitcode(m, &code), 0);
    assert_int_equal(code, -SIGKILL);
    mp_manager_free(m);
}

struct init_probe {
    pid_t pid;
    int value;
    int calls;
};

struct init_arg {
    struct init_probe *probe;
    int value;
};

static int mgr_init(void *arg, size_t size)
{
    struct init_arg a;
    if (arg == NULL || size != sizeof a)
        return MP_EINVAL;
    memcpy(&a, arg, sizeof a);
    a.probe->pid = getpid();
    a.probe->value = a.value;
    a.probe->calls++;
    return 0;
}

static int mgr_init_fails(void *arg, size_t size)
{
    (void)arg;
    (void)size;
    return -EPERM;
}

/* Python's m.start(initializer, initargs): run once in the server. */
static void test_mgr_initializer(void **state)
{
    struct init_probe *probe = mp_shared_alloc(sizeof *probe);
    assert_non_null(probe);
    memset(probe, 0, sizeof *probe);
    struct init_arg a = {.probe = probe, .value = 42};
    mp_manager *m = mp_manager_new(.initializer = mgr_init, .initarg = &a,
                                   .initarg_size = sizeof a);
    assert_non_null(m);
    a.value = 7; /* the bytes were copied */
    assert_int_equal(mp_manager_start(m), 0);
    assert_int_equal(probe->calls, 1);
    assert_int_equal(probe->pid, mp_manager_pid(m));
    assert_int_equal(probe->value, 42);
    mp_proxy *d = mp_manager_dict(m, NULL);
    assert_int_equal(mp_dict_set(d, MP_I64(1), MP_I64(2)), 0);
    mp_proxy_free(d);
    stop(m);
    assert_int_equal(probe->calls, 1);
    mp_shared_free(probe);

    /* A failing initializer fails the start with its code. */
    m = mp_manager_new(.initializer = mgr_init_fails);
    assert_non_null(m);
    assert_int_equal(mp_manager_start(m), -EPERM);
    assert_null(mp_manager_dict(m, NULL));
    mp_manager_free(m);

    /* Bad arguments. */
    assert_null(mp_manager_new(.initarg = &a, .initarg_size = sizeof a));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_manager_new(.initializer = mgr_init, .initarg_size = 4));
    assert_int_equal(mp_last_error(), MP_EINVAL);
}

static int set_child(void *arg, size_t size)
{
    mp_proxy *st;
    if (size != sizeof st)
        return 10;
    memcpy(&st, arg, sizeof st);
    if (mp_setproxy_add(st, MP_STR("child")) != 0 || mp_setproxy_add(st, MP_I64(1)) != 0)
        return 11;
    return mp_setproxy_contains(st, MP_I64(2)) == 1 ? 0 : 12;
}

/* Python's SyncManager.set() (test_set in CPython's _TestContainers). */
static void test_mgr_set(void **state)
{
    mp_manager *m = started();
    mp_proxy *st = mp_manager_set(m, MP_LIST(MP_I64(1), MP_I64(2), MP_I64(1), MP_STR("a")));
    assert_non_null(st);
    assert_int_equal(mp_proxy_kind_of(st), MP_PROXY_SET);
    assert_string_equal(mp_proxy_typeid(st), "set");
    assert_int_equal(mp_setproxy_len(st), 3);
    assert_proxy_repr(st, "{1, 2, 'a'}");
    assert_int_equal(mp_setproxy_add(st, MP_I64(2)), 0);
    assert_int_equal(mp_setproxy_add(st, MP_TUPLE(MP_I64(3), MP_STR("t"))), 0);
    assert_int_equal(mp_setproxy_len(st), 4);
    assert_int_equal(mp_setproxy_contains(st, MP_TUPLE(MP_I64(3), MP_STR("t"))), 1);
    assert_int_equal(mp_setproxy_contains(st, MP_I64(9)), 0);
    assert_int_equal(mp_setproxy_discard(st, MP_I64(9)), 0);
    assert_int_equal(mp_setproxy_discard(st, MP_TUPLE(MP_I64(3), MP_STR("t"))), 0);
    assert_remote(mp_setproxy_remove(st, MP_I64(9)), "KeyError", "9");
    assert_int_equal(mp_setproxy_remove(st, MP_STR("a")), 0);
    assert_proxy_repr(st, "{1, 2}");
    mp_val *v = NULL;
    assert_int_equal(mp_setproxy_union(st, MP_LIST(MP_I64(2), MP_I64(5)), &v), 0);
    assert_val(v, "[1, 2, 5]");
    assert_int_equal(mp_setproxy_intersection(st, MP_TUPLE(MP_I64(2), MP_I64(5)), &v), 0);
    assert_val(v, "[2]");
    assert_int_equal(mp_setproxy_difference(st, MP_LIST(MP_I64(2)), &v), 0);
    assert_val(v, "[1]");
    assert_int_equal(mp_setproxy_len(st), 2); /* those made new sets */
    assert_int_equal(mp_setproxy_update(st, MP_LIST(MP_I64(7), MP_I64(1))), 0);
    assert_int_equal(mp_setproxy_members(st, &v), 0);
    assert_val(v, "[1, 2, 7]");
    /* Shared with a child under every start method. */
    mpt_run_ok(set_child, &st, sizeof st, 30);
    assert_int_equal(mp_setproxy_len(st), 4);
    assert_int_equal(mp_setproxy_contains(st, MP_STR("child")), 1);
    assert_int_equal(mp_setproxy_pop(st, &v), 0);
    assert_val(v, "'child'");
    assert_int_equal(mp_setproxy_clear(st), 0);
    assert_int_equal(mp_setproxy_len(st), 0);
    assert_proxy_repr(st, "set()");
    assert_remote(mp_setproxy_pop(st, &v), "KeyError", "'pop from an empty set'");

    /* Bad input, refused before anything is sent or by the server. */
    assert_int_equal(mp_setproxy_add(st, MP_LIST(MP_I64(1))), MP_EINVAL);
    assert_int_equal(mp_setproxy_add(st, NULL), MP_EINVAL);
    assert_int_equal(mp_setproxy_contains(st, MP_EMPTY_DICT), MP_EINVAL);
    assert_int_equal(mp_setproxy_update(st, MP_I64(1)), MP_EINVAL);
    assert_int_equal(mp_setproxy_update(st, MP_LIST(MP_EMPTY_LIST)), MP_EINVAL);
    assert_int_equal(mp_setproxy_union(st, MP_LIST(MP_I64(1)), NULL), MP_EINVAL);
    assert_int_equal(mp_setproxy_pop(st, NULL), MP_EINVAL);
    assert_remote(mp_proxy_call(st, "add", MP_TUPLE(MP_EMPTY_LIST), NULL), "TypeError",
                  "unhashable type: 'list'");
    assert_null(mp_manager_set(m, MP_I64(3)));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_manager_set(m, MP_LIST(MP_EMPTY_DICT)));
    mp_proxy *d = mp_manager_dict(m, NULL);
    assert_int_equal(mp_setproxy_len(d), MP_EINVAL); /* a proxy of another kind */
    assert_int_equal(mp_setproxy_add(d, MP_I64(1)), MP_EINVAL);
    mp_proxy_free(d);
    mp_proxy *e = mp_manager_set(m, NULL);
    assert_int_equal(mp_setproxy_len(e), 0);
    mp_proxy_free(e);
    mp_proxy_free(st);
    stop(m);
}

static int iter_child(void *arg, size_t size)
{
    mp_proxy *l;
    if (size != sizeof l)
        return 10;
    memcpy(&l, arg, sizeof l);
    mp_proxy_iter *it = mp_proxy_iter_new(l);
    if (it == NULL)
        return 11;
    int64_t sum = 0, x;
    const mp_val *v;
    while (mp_proxy_iter_next(it, &v) == 1)
        if (mp_val_as_int(v, &x) == 0)
            sum += x;
    mp_proxy_iter_free(it);
    return sum == 6 ? 0 : 12;
}

/* dict |, |=; list +, *, +=, *=, reversed; for x in proxy. */
static void test_mgr_operators_iter(void **state)
{
    mp_manager *m = started();
    mp_proxy *d = mp_manager_dict(m, MP_DICT(MP_STR("a"), MP_I64(1), MP_STR("b"), MP_I64(2)));
    mp_val *v = NULL;
    assert_int_equal(mp_dict_or(d, MP_DICT(MP_STR("b"), MP_I64(3), MP_STR("c"), MP_I64(4)),
                                &v),
                     0);
    assert_val(v, "{'a': 1, 'b': 3, 'c': 4}");
    assert_proxy_repr(d, "{'a': 1, 'b': 2}");
    assert_int_equal(mp_dict_ior(d, MP_DICT(MP_STR("c"), MP_I64(5))), 0);
    assert_int_equal(mp_dict_ior(d, MP_LIST(MP_TUPLE(MP_STR("a"), MP_I64(0)))), 0);
    assert_proxy_repr(d, "{'a': 0, 'b': 2, 'c': 5}");
    assert_int_equal(mp_dict_or(d, MP_LIST(MP_I64(1)), &v), MP_EINVAL);
    assert_int_equal(mp_dict_or(d, MP_EMPTY_DICT, NULL), MP_EINVAL);
    assert_remote(mp_proxy_call(d, "__or__", MP_TUPLE(MP_EMPTY_LIST), NULL), "TypeError",
                  "unsupported operand type(s) for |: 'dict' and 'list'");
    assert_remote(mp_dict_ior(d, MP_I64(3)), "TypeError", NULL);

    mp_proxy *l = mp_manager_list(m, MP_LIST(MP_I64(1), MP_I64(2), MP_I64(3)));
    assert_int_equal(mp_list_add(l, MP_LIST(MP_I64(4)), &v), 0);
    assert_val(v, "[1, 2, 3, 4]");
    assert_int_equal(mp_list_add(l, MP_TUPLE(MP_I64(4)), &v), MP_EINVAL);
    assert_remote(mp_proxy_call(l, "__add__", MP_TUPLE(MP_EMPTY_TUPLE), NULL), "TypeError",
                  "can only concatenate list (not \"tuple\") to list");
    assert_int_equal(mp_list_mul(l, 2, &v), 0);
    assert_val(v, "[1, 2, 3, 1, 2, 3]");
    assert_int_equal(mp_list_mul(l, -1, &v), 0);
    assert_val(v, "[]");
    assert_int_equal(mp_list_reversed(l, &v), 0);
    assert_val(v, "[3, 2, 1]");
    assert_proxy_repr(l, "[1, 2, 3]");
    /* Forked, spawned or forkserver child iterates the same list. */
    mpt_run_ok(iter_child, &l, sizeof l, 30);
    assert_int_equal(mp_list_iadd(l, MP_TUPLE(MP_I64(4))), 0);
    assert_int_equal(mp_list_imul(l, 2), 0);
    assert_proxy_repr(l, "[1, 2, 3, 4, 1, 2, 3, 4]");
    assert_int_equal(mp_list_imul(l, 0), 0);
    assert_int_equal(mp_list_len(l), 0);
    assert_int_equal(mp_list_iadd(l, MP_I64(1)), MP_EINVAL);
    assert_int_equal(mp_list_mul(l, 2, NULL), MP_EINVAL);
    assert_int_equal(mp_list_reversed(d, &v), MP_EINVAL);

    /* Iteration over a snapshot: dict keys, list items, set members. */
    mp_proxy_iter *it = mp_proxy_iter_new(d);
    assert_non_null(it);
    assert_int_equal(mp_dict_set(d, MP_STR("z"), MP_I64(9)), 0); /* not seen */
    const mp_val *x;
    char got[64] = "";
    while (mp_proxy_iter_next(it, &x) == 1) {
        const char *sp;
        size_t n;
        assert_int_equal(mp_val_as_str(x, &sp, &n), 0);
        strncat(got, sp, n);
    }
    assert_string_equal(got, "abc");
    assert_int_equal(mp_proxy_iter_next(it, &x), 0);
    assert_null(x);
    assert_int_equal(mp_proxy_iter_next(it, NULL), MP_EINVAL);
    assert_int_equal(mp_proxy_iter_next(NULL, &x), MP_EINVAL);
    mp_proxy_iter_free(it);
    it = mp_proxy_iter_new(l); /* empty */
    assert_non_null(it);
    assert_int_equal(mp_proxy_iter_next(it, &x), 0);
    mp_proxy_iter_free(it);
    mp_proxy *st = mp_manager_set(m, MP_LIST(MP_I64(5), MP_I64(6)));
    it = mp_proxy_iter_new(st);
    int64_t sum = 0, i;
    while (mp_proxy_iter_next(it, &x) == 1) {
        assert_int_equal(mp_val_as_int(x, &i), 0);
        sum += i;
    }
    assert_int_equal(sum, 11);
    mp_proxy_iter_free(it);
    mp_proxy_iter_free(NULL);
    mp_proxy *ns = mp_manager_namespace(m);
    assert_null(mp_proxy_iter_new(ns));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_proxy_iter_new(NULL));
    mp_proxy_free(ns);
    mp_proxy_free(st);
    mp_proxy_free(l);
    mp_proxy_free(d);
    stop(m);
}

struct hold_arg {
    mp_proxy *d;
    pthread_barrier_t *go;
    int result;
};

static void *holding_thread(void *arg)
{
    struct hold_arg *h = arg;
    __atomic_store_n(&h->result, (int)mp_dict_len(h->d), __ATOMIC_RELAXED);
    pthread_barrier_wait(h->go); /* keep the channel until all have called */
    return NULL;
}

static void test_mgr_limits(void **state)
{
    /* More threads at once than channels: the last ones get -EAGAIN. */
    mp_manager *m = started();
    mp_proxy *d = mp_manager_dict(m, NULL);
    assert_int_equal(mp_dict_len(d), 0); /* this thread holds one channel */
    enum { N = MGR_NCHAN + 3 };
    static struct hold_arg h[N];
    static pthread_t th[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N + 1);
    for (int i = 0; i < N; i++) {
        h[i] = (struct hold_arg){.d = d, .go = &go, .result = 1};
        assert_int_equal(pthread_create(&th[i], NULL, holding_thread, &h[i]), 0);
    }
    /* Wait until every thread has called. */
    for (int t = 0; t < 10000; t++) {
        int done = 0;
        for (int i = 0; i < N; i++)
            done += __atomic_load_n(&h[i].result, __ATOMIC_RELAXED) != 1;
        if (done == N)
            break;
        usleep(1000);
    }
    pthread_barrier_wait(&go);
    int ok = 0, again = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += h[i].result == 0;
        again += h[i].result == -EAGAIN;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(ok, MGR_NCHAN - 1);
    assert_int_equal(again, N - (MGR_NCHAN - 1));
    /* The threads are gone: their channels work for the next ones. */
    assert_int_equal(mp_dict_len(d), 0);
    mp_proxy_free(d);
    stop(m);

    /* Registration limits. */
    m = mp_manager_new();
    for (int i = 0; i < 32; i++) {
        char name[16];
        snprintf(name, sizeof name, "T%d", i);
        assert_int_equal(mp_manager_register(m, .type_name = name, .create = counter_new), 0);
    }
    assert_int_equal(mp_manager_register(m, .type_name = "T32", .create = counter_new),
                     MP_EINVAL);
    for (int i = 0; i < 16; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        assert_int_equal(mp_manager_register_comparator(m, name, cmp_by_abs), 0);
    }
    assert_int_equal(mp_manager_register_comparator(m, "c16", cmp_by_abs), MP_EINVAL);
    assert_int_equal(mp_manager_register_comparator(NULL, "x", cmp_by_abs), MP_EINVAL);
    mp_manager_free(m);
}

/* ---- proxies stored in managed objects -------------------------------------- */

/* d[key] as a proxy (Python's d[key] when the value is a proxy). */
static mp_proxy *dict_proxy_at(mp_proxy *d, const char *key)
{
    mp_val *r = NULL;
    assert_int_equal(mp_dict_getitem(d, MP_STR(key), &r), 0);
    assert_int_equal(mp_val_typeof(r), MP_VAL_PROXY);
    mp_proxy *p = mp_proxy_from_val(NULL, r);
    mp_val_free(r);
    assert_non_null(p);
    return p;
}

static mp_proxy *list_proxy_at(mp_proxy *l, int64_t i)
{
    mp_val *r = NULL;
    assert_int_equal(mp_list_get(l, i, &r), 0);
    assert_int_equal(mp_val_typeof(r), MP_VAL_PROXY);
    mp_proxy *p = mp_proxy_from_val(NULL, r);
    mp_val_free(r);
    assert_non_null(p);
    return p;
}

static int64_t dict_int(mp_proxy *d, const char *key)
{
    mp_val *v = NULL;
    int64_t i = -1;
    assert_int_equal(mp_dict_getitem(d, MP_STR(key), &v), 0);
    assert_int_equal(mp_val_as_int(v, &i), 0);
    mp_val_free(v);
    return i;
}

/* CPython's test_dict_proxy_nested, step by step. */
static void nested_dicts(mp_manager *m)
{
    ssize_t base = mp_manager_object_count(m);
    assert_true(base >= 0);
    mp_proxy *pets = mp_manager_dict(m, MP_DICT(MP_STR("ferrets"), MP_I64(2),
                                                MP_STR("hamsters"), MP_I64(4)));
    mp_proxy *supplies = mp_manager_dict(m, MP_DICT(MP_STR("water"), MP_I64(10),
                                                    MP_STR("feed"), MP_I64(3)));
    mp_val *rp = mp_val_proxy(pets), *rs = mp_val_proxy(supplies);
    assert_non_null(rp);
    assert_string_equal(mp_val_type_name(rp), "DictProxy");
    assert_string_equal(rp->ref.type_id, "dict");
    mp_proxy *d = mp_manager_dict(m, MP_DICT(MP_STR("pets"), rp, MP_STR("supplies"), rs));
    assert_non_null(d);
    mp_val_free(rp);
    mp_val_free(rs);
    assert_int_equal(mp_manager_object_count(m), base + 3);

    mp_proxy *x = dict_proxy_at(d, "supplies");
    assert_int_equal(mp_proxy_kind_of(x), MP_PROXY_DICT);
    assert_int_equal(dict_int(x, "water"), 10);
    assert_int_equal(mp_dict_set(x, MP_STR("blankets"), MP_I64(5)), 0);
    mp_proxy_free(x);
    assert_int_equal(dict_int(supplies, "blankets"), 5);
    assert_int_equal(mp_dict_set(supplies, MP_STR("water"), MP_I64(7)), 0);
    x = dict_proxy_at(d, "supplies");
    assert_int_equal(dict_int(x, "water"), 7);
    mp_proxy_free(x);

    /* The container keeps them alive once their proxies are gone. */
    mp_proxy_free(pets);
    mp_proxy_free(supplies);
    assert_int_equal(mp_manager_object_count(m), base + 3);
    pets = dict_proxy_at(d, "pets");
    assert_int_equal(dict_int(pets, "ferrets"), 2);
    supplies = dict_proxy_at(d, "supplies");
    assert_int_equal(mp_dict_set(supplies, MP_STR("blankets"), MP_I64(11)), 0);
    x = dict_proxy_at(d, "supplies");
    assert_int_equal(dict_int(x, "blankets"), 11);
    mp_proxy_free(x);

    /* Emptied, the outer dict lets go; the proxies still hold them. */
    assert_int_equal(mp_dict_clear(d), 0);
    assert_int_equal(mp_dict_len(d), 0);
    assert_int_equal(dict_int(supplies, "water"), 7);
    assert_int_equal(dict_int(pets, "hamsters"), 4);

    /* A list of them (l = m.list([pets, supplies])). */
    rp = mp_val_proxy(pets);
    rs = mp_val_proxy(supplies);
    mp_proxy *l = mp_manager_list(m, MP_LIST(rp, rs));
    mp_val_free(rp);
    mp_val_free(rs);
    x = list_proxy_at(l, 0);
    assert_int_equal(mp_dict_set(x, MP_STR("marmots"), MP_I64(1)), 0);
    mp_proxy_free(x);
    assert_int_equal(dict_int(pets, "marmots"), 1);
    mp_proxy_free(pets);
    mp_proxy_free(supplies);
    x = list_proxy_at(l, 0);
    assert_int_equal(dict_int(x, "marmots"), 1);
    mp_proxy_free(x);

    /* outer = m.list([[88, 99], l]): a plain list stays a list. */
    mp_val *rl = mp_val_proxy(l);
    mp_proxy *outer = mp_manager_list(m, MP_LIST(MP_LIST(MP_I64(88), MP_I64(99)), rl));
    mp_val_free(rl);
    mp_val *v = NULL;
    assert_int_equal(mp_list_get(outer, 0, &v), 0);
    assert_val(v, "[88, 99]");
    mp_proxy *inner = list_proxy_at(outer, -1);
    x = list_proxy_at(inner, -1);
    assert_int_equal(dict_int(x, "feed"), 3);
    mp_proxy_free(x);
    mp_proxy_free(inner);
    /* The repr of the whole list names the proxy. */
    assert_int_equal(mp_list_copy(outer, &v), 0);
    char *text = mp_val_repr(v);
    mp_val_free(v);
    assert_non_null(strstr(text, "[[88, 99], <ListProxy object, typeid 'list', id "));
    free(text);

    /* Freeing the containers frees everything they alone held. */
    mp_proxy_free(l);
    assert_true(mp_manager_object_count(m) > base + 1);
    mp_proxy_free(outer);
    assert_int_equal(mp_manager_object_count(m), base + 1);
    mp_proxy_free(d);
    assert_int_equal(mp_manager_object_count(m), base);
}

/* CPython's test_list_proxy_in_list and test_nested_queue. */
static void nested_lists_queues(mp_manager *m)
{
    ssize_t base = mp_manager_object_count(m);
    /* a = m.list([m.list(range(3)) for _ in range(3)]): the proxies live
     * until the outer list holds their objects. */
    mp_val *refs = mp_val_list();
    mp_proxy *ps[3];
    for (int i = 0; i < 3; i++) {
        mp_val *range = mp_val_range(0, 3, 1);
        ps[i] = mp_manager_list(m, range);
        mp_val_free(range);
        mp_val *r = mp_val_proxy(ps[i]);
        assert_int_equal(mp_val_list_append(refs, r), 0);
        mp_val_free(r);
    }
    mp_proxy *a = mp_manager_list(m, refs);
    mp_val_free(refs);
    for (int i = 0; i < 3; i++)
        mp_proxy_free(ps[i]);
    assert_int_equal(mp_manager_object_count(m), base + 4);
    for (int i = 0; i < 3; i++) {
        mp_proxy *x = list_proxy_at(a, i);
        assert_int_equal(mp_list_len(x), 3);
        mp_val *v;
        assert_int_equal(mp_list_copy(x, &v), 0);
        assert_val(v, "[0, 1, 2]");
        mp_proxy_free(x);
    }
    mp_proxy *x = list_proxy_at(a, 0);
    assert_int_equal(mp_list_set(x, -1, MP_I64(55)), 0);
    mp_proxy_free(x);
    x = list_proxy_at(a, 0);
    mp_val *v;
    assert_int_equal(mp_list_get(x, -1, &v), 0);
    assert_val(v, "55");
    mp_proxy_free(x);
    /* Overwriting and removing entries lets the inner lists go. */
    assert_int_equal(mp_list_set(a, 0, MP_STR("plain")), 0);
    assert_int_equal(mp_manager_object_count(m), base + 3);
    /* A popped reference was its object's last holder: the object is gone
     * (take a proxy before removing it; docs/managers.md). */
    assert_int_equal(mp_list_pop(a, -1, &v), 0);
    assert_int_equal(mp_manager_object_count(m), base + 2);
    assert_null(mp_proxy_from_val(NULL, v));
    assert_int_equal(mp_last_error(), MP_EREMOTE);
    mp_val_free(v);
    assert_int_equal(mp_list_del(a, 1), 0);
    assert_int_equal(mp_manager_object_count(m), base + 1);
    /* a[0] was a list proxy; an append of itself makes no trouble. */
    mp_val *ra = mp_val_proxy(a);
    assert_int_equal(mp_list_append(a, ra), 0);
    assert_int_equal(mp_list_remove(a, ra), 0);
    mp_val_free(ra);
    assert_int_equal(mp_list_len(a), 1);

    /* Queues in a list and in a dict. */
    mp_proxy *q = mp_manager_queue(m, 0);
    mp_val *rq = mp_val_proxy(q);
    assert_int_equal(mp_list_append(a, rq), 0);
    mp_proxy_free(q);
    mp_proxy *d = mp_manager_dict(m, NULL);
    assert_int_equal(mp_dict_set(d, MP_I64(0), rq), 0);
    mp_val_free(rq);
    q = list_proxy_at(a, -1);
    assert_int_equal(mp_proxy_kind_of(q), MP_PROXY_QUEUE);
    assert_int_equal(mp_proxy_put(q, MP_I64(123), 5), 0);
    mp_proxy_free(q);
    q = list_proxy_at(a, -1);
    assert_int_equal(mp_proxy_get(q, 5, &v), 0);
    assert_val(v, "123");
    mp_proxy_free(q);
    assert_int_equal(mp_dict_getitem(d, MP_I64(0), &v), 0);
    q = mp_proxy_from_val(NULL, v);
    mp_val_free(v);
    assert_int_equal(mp_proxy_put(q, MP_I64(456), 5), 0);
    assert_int_equal(mp_proxy_get(q, 5, &v), 0);
    assert_val(v, "456");
    mp_proxy_free(q);
    mp_proxy_free(a);
    mp_proxy_free(d);
    assert_int_equal(mp_manager_object_count(m), base);
}

struct nested_arg {
    mp_proxy *d;
    int id;
};

/* A child: d['l'].append(id) and d['ns'] set through the outer dict. */
static int nested_child(void *arg, size_t size)
{
    struct nested_arg *a = arg;
    mp_val *r = NULL;
    if (mp_dict_getitem(a->d, MP_STR("l"), &r) != 0)
        return 10;
    mp_proxy *l = mp_proxy_from_val(NULL, r);
    mp_val_free(r);
    if (l == NULL)
        return 11;
    int rc = mp_list_append(l, MP_I64(a->id)) == 0 ? 0 : 12;
    /* Store a proxy of its own making; the parent reads it. */
    mp_proxy *mine = mp_manager_list(l->m, MP_LIST(MP_I64(a->id * 10)));
    r = mine ? mp_val_proxy(mine) : NULL;
    if (r == NULL || mp_dict_set(a->d, MP_I64(a->id), r) != 0)
        rc = 13;
    mp_val_free(r);
    mp_proxy_free(mine);
    mp_proxy_free(l);
    return rc;
}

static void test_mgr_nested_proxies(void **state)
{
    mp_manager *m = started();
    nested_dicts(m);
    nested_lists_queues(m);

    /* Children of every start method mutate through the outer container. */
    ssize_t base = mp_manager_object_count(m);
    mp_proxy *l = mp_manager_list(m, NULL);
    mp_val *rl = mp_val_proxy(l);
    mp_proxy *d = mp_manager_dict(m, MP_DICT(MP_STR("l"), rl));
    mp_val_free(rl);
    mp_proxy_free(l);
    mp_process *ps[3];
    struct nested_arg na = {.d = d};
    for (int i = 0; i < 3; i++) {
        na.id = i + 1;
        ps[i] = mpt_start(nested_child, &na, sizeof na);
    }
    for (int i = 0; i < 3; i++)
        mpt_join_ok(ps[i], MP_FOREVER);
    l = dict_proxy_at(d, "l");
    assert_int_equal(mp_list_len(l), 3);
    assert_int_equal(mp_list_sort(l, NULL, false), 0);
    mp_val *v;
    assert_int_equal(mp_list_copy(l, &v), 0);
    assert_val(v, "[1, 2, 3]");
    mp_proxy_free(l);
    assert_int_equal(mp_dict_getitem(d, MP_I64(2), &v), 0);
    l = mp_proxy_from_val(NULL, v);
    mp_val_free(v);
    assert_int_equal(mp_list_copy(l, &v), 0);
    assert_val(v, "[20]");
    mp_proxy_free(l);
    assert_int_equal(mp_manager_object_count(m), base + 5);
    mp_proxy_free(d);
    assert_int_equal(mp_manager_object_count(m), base);

    /* A proxy of another manager cannot be stored here. */
    mp_manager *m2 = started();
    mp_proxy *other = mp_manager_list(m2, NULL);
    mp_val *ro = mp_val_proxy(other);
    d = mp_manager_dict(m, NULL);
    assert_int_equal(mp_dict_set(d, MP_I64(1), ro), MP_EINVAL);
    assert_null(mp_proxy_from_val(m, ro));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    /* Not a key, not a set member, not a reference: MP_EINVAL. */
    assert_false(mp_val_hashable(ro));
    assert_null(mp_proxy_from_val(NULL, MP_I64(1)));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_proxy_from_val(NULL, NULL));
    /* Bytes that claim an object the server does not hold. */
    mp_val *forged = mp__val_new_ref("list", 4, "", 0, 999999, MP_PROXY_LIST);
    assert_int_equal(mp_dict_set(d, MP_I64(1), forged), MP_EREMOTE);
    assert_string_equal(mp_remote_error_type(), "KeyError");
    assert_null(mp_proxy_from_val(NULL, forged)); /* no manager to ask */
    assert_null(mp_proxy_from_val(m, forged));
    assert_int_equal(mp_last_error(), MP_EREMOTE);
    mp_val_free(forged);
    /* The wrong kind or typeid for an id that exists: refused too. */
    mp_val *rd = mp_val_proxy(d);
    void *enc;
    size_t n;
    assert_int_equal(mp_val_encode(rd, &enc, &n), 0);
    mp_val *dec;
    assert_int_equal(mp_val_decode(enc, n, &dec, NULL), 0);
    free(enc);
    assert_true(mp_val_eq(dec, rd));
    mp_proxy *again = mp_proxy_from_val(m, dec); /* a decoded one needs m */
    assert_non_null(again);
    assert_int_equal(mp_dict_set(again, MP_I64(5), MP_I64(6)), 0);
    assert_int_equal(mp_dict_len(d), 1);
    mp_proxy_free(again);
    dec->ref.kind = MP_PROXY_LIST;
    assert_null(mp_proxy_from_val(m, dec));
    assert_int_equal(mp_last_error(), MP_EREMOTE);
    mp_val_free(dec);
    mp_val_free(rd);
    mp_proxy_free(d);

    /* A proxy of an object whose server died: MP_EEOF. */
    mp_proxy *ql = mp_manager_list(m2, NULL);
    mp_val *rq = mp_val_proxy(ql);
    assert_int_equal(mp_list_append(ql, ro), 0);
    mp_proxy *held = list_proxy_at(ql, 0);
    mp_proxy_free(other);
    assert_int_equal(kill(mp_manager_pid(m2), SIGKILL), 0);
    double t0 = mp__now();
    while (mp_list_len(held) != MP_EEOF && mp__now() - t0 < 5)
        usleep(10000);
    assert_int_equal(mp_list_len(held), MP_EEOF);
    assert_null(mp_proxy_from_val(NULL, rq));
    assert_int_equal(mp_last_error(), MP_EEOF);
    assert_null(mp_proxy_from_val(NULL, ro));
    assert_int_equal(mp_last_error(), MP_EEOF);
    mp_val_free(rq);
    mp_val_free(ro);
    mp_proxy_free(held);
    mp_proxy_free(ql);
    stop(m2);
    stop(m);
}

/* The same through a socket connection (another program's view). */
static void test_mgr_nested_proxies_remote(void **state)
{
    mp_manager *rm;
    int port;
    mp_manager *m = socket_pair(false, &rm, &port);
    ssize_t base = mp_manager_object_count(rm);
    mp_proxy *q = mp_manager_queue(rm, 0);
    mp_val *rq = mp_val_proxy(q);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    assert_string_equal(mp_val_proxy_address(rq), want);
    mp_proxy *d = mp_manager_dict(rm, NULL);
    assert_int_equal(mp_dict_set(d, MP_STR("q"), rq), 0);
    mp_val_free(rq);
    mp_proxy_free(q);
    q = dict_proxy_at(d, "q");
    assert_null(mp_proxy_native(q));
    assert_int_equal(mp_proxy_put(q, MP_STR("x"), 5), 0);
    mp_proxy_free(q);
    /* The family side sees the same objects. */
    assert_int_equal(mp_manager_object_count(m), base + 2);
    mp_proxy *fq = mp_manager_dict(m, NULL);
    mp_proxy_free(fq);
    q = dict_proxy_at(d, "q");
    mp_val *v;
    assert_int_equal(mp_proxy_get(q, 5, &v), 0);
    assert_val(v, "'x'");
    mp_proxy_free(q);
    /* A reference through the family's manager object is another
     * manager's for the connected one. */
    mp_proxy *fl = mp_manager_list(m, NULL);
    mp_val *rf = mp_val_proxy(fl);
    assert_int_equal(mp_dict_set(d, MP_STR("l"), rf), MP_EINVAL);
    mp_val_free(rf);
    mp_proxy_free(fl);
    mp_proxy_free(d);
    assert_int_equal(mp_manager_object_count(rm), base);
    mp_manager_free(rm);
    stop(m);
}

/* Proxy references in the value encoding: exact bytes and garbage. */
static void test_codec_proxy_refs(void **state)
{
    static const uint8_t good[] = {0x0a, 0x05, 0x02, 0x04, 'l', 'i', 's', 't', 0x02, '/', 'x'};
    mp_val *v = NULL;
    assert_int_equal(mp_val_decode(good, sizeof good, &v, NULL), 0);
    assert_int_equal(mp_val_typeof(v), MP_VAL_PROXY);
    assert_int_equal(v->ref.oid, 5);
    assert_int_equal(v->ref.kind, MP_PROXY_LIST);
    assert_string_equal(v->ref.type_id, "list");
    assert_string_equal(mp_val_proxy_address(v), "/x");
    assert_repr(v, "<ListProxy object, typeid 'list', id 5>");
    assert_true(mp_val_truth(v));
    assert_int_equal(mp_val_len(v), 0);
    uint64_t h;
    assert_int_equal(mp_val_hash(v, &h), MP_EINVAL);
    assert_true(mp_val_cmp(v, MP_EMPTY_DICT) > 0);
    mp_val *c = mp_val_copy(v);
    assert_true(mp_val_eq(c, v));
    c->ref.oid = 6;
    assert_false(mp_val_eq(c, v));
    assert_true(mp_val_cmp(v, c) < 0);
    mp_val_free(c);
    void *buf;
    size_t n;
    assert_int_equal(mp_val_encode(v, &buf, &n), 0);
    assert_int_equal(n, sizeof good);
    assert_memory_equal(buf, good, n);
    free(buf);
    /* As a dict key: unhashable. */
    mp_val *dict = mp_val_dict();
    assert_int_equal(mp_val_dict_set(dict, v, MP_NONE), MP_EINVAL);
    assert_int_equal(mp_val_dict_set(dict, MP_NONE, v), 0);
    assert_int_equal(mp_val_encode(dict, &buf, &n), 0);
    mp_val *back;
    assert_int_equal(mp_val_decode(buf, n, &back, NULL), 0);
    assert_true(mp_val_eq(back, dict));
    mp_val_free(back);
    free(buf);
    mp_val_free(dict);
    mp_val_free(v);
    /* Truncated at every byte. */
    for (size_t k = 0; k < sizeof good; k++)
        expect_bad(good, k);
    /* Id 0, kind 0, kind past the last, an empty or too long typeid, a NUL
     * in it, invalid UTF-8, an address that is too long. */
    expect_bad("\x0a\x00\x02\x01l\x00", 6);
    expect_bad("\x0a\x01\x00\x01l\x00", 6);
    expect_bad("\x0a\x01\x13\x01l\x00", 6);
    expect_bad("\x0a\x01\x7f\x01l\x00", 6);
    expect_bad("\x0a\x01\x02\x00\x00", 5);
    expect_bad("\x0a\x01\x02\x02l\x00\x00", 7);
    expect_bad("\x0a\x01\x02\x01\xff\x00", 6);
    expect_bad("\x0a\x01\x02\x01l\x01\xff", 7);
    expect_bad("\x0a\x01\x02\x01l\x01\x00", 7);
    uint8_t longid[4 + 48 + 1] = {0x0a, 0x01, 0x02, 48};
    memset(longid + 4, 'a', 48);
    longid[52] = 0x00;
    expect_bad(longid, sizeof longid);
    longid[3] = 47;
    longid[51] = 0x00;
    assert_int_equal(mp_val_decode(longid, sizeof longid - 1, &v, NULL), 0);
    mp_val_free(v);
    uint8_t longaddr[7 + 256] = {0x0a, 0x01, 0x02, 0x01, 'l', 0x80, 0x02};
    memset(longaddr + 7, 'a', 256);
    expect_bad(longaddr, sizeof longaddr);
    /* Overflowing oid varint, a varint kind that does not fit. */
    expect_bad("\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x02\x01l\x00", 15);
    expect_bad("\x0a\x01\xff\xff\xff\xff\x7f\x01l\x00", 10);
    /* Trailing garbage after a good reference. */
    expect_bad("\x0a\x01\x02\x01l\x00\x00", 7);
}

/* ---- a Pool in the manager ----------------------------------------------------- */

static int mpool_sqr(const void *in, size_t in_size, void *out, size_t out_size, void *arg)
{
    int64_t x;
    memcpy(&x, in, sizeof x);
    if (x == -1) {
        mp_pool_set_error("no square for %d", -1);
        return -EDOM;
    }
    x *= x;
    memcpy(out, &x, sizeof x);
    return 0;
}

/* The bytes task: "sleep:<ms>" sleeps, "fail" fails, else echoes upper-cased. */
static int mpool_bytes(const void *in, size_t n, mp_pool_out *out, void *arg)
{
    if (arg != NULL)
        return -EFAULT;
    if (n > 6 && memcmp(in, "sleep:", 6) == 0) {
        char ms[16] = "";
        memcpy(ms, (const char *)in + 6, n - 6 < 15 ? n - 6 : 15);
        usleep((useconds_t)atoi(ms) * 1000);
        return mp_pool_out_write(out, "slept", 5);
    }
    if (n == 4 && memcmp(in, "fail", 4) == 0) {
        mp_pool_set_error("failed on purpose");
        return -ERANGE;
    }
    char *p = mp_pool_out_reserve(out, n);
    if (p == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char c = ((const char *)in)[i];
        p[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
    return 0;
}

static int mpool_child(void *arg, size_t size)
{
    mp_proxy *pool = *(mp_proxy **)arg;
    int64_t in[20], out[20];
    for (int i = 0; i < 20; i++)
        in[i] = i + 100;
    if (mp_poolproxy_map(pool, mpool_sqr, in, sizeof in[0], 20, out, sizeof out[0]) != 0)
        return 1;
    for (int i = 0; i < 20; i++)
        if (out[i] != (i + 100) * (i + 100))
            return 2;
    void *res = NULL;
    size_t n = 0;
    if (mp_poolproxy_apply(pool, mpool_bytes, "child", 5, &res, &n) != 0 || n != 5 ||
        memcmp(res, "CHILD", 5) != 0)
        return 3;
    free(res);
    return 0;
}

static void test_mgr_pool(void **state)
{
    mp_manager *m = started();
    ssize_t base = mp_manager_object_count(m);
    mp_proxy *pool = mp_manager_pool(m, 2);
    assert_non_null(pool);
    assert_int_equal(mp_proxy_kind_of(pool), MP_PROXY_POOL);
    assert_string_equal(mp_proxy_typeid(pool), "Pool");
    assert_proxy_repr(pool, "<Pool processes=2>");

    /* apply (test_apply: sqr(5)), as bytes. */
    void *res = NULL;
    size_t n = 0;
    assert_int_equal(mp_poolproxy_apply(pool, mpool_bytes, "abc", 3, &res, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(res, "ABC", 3);
    free(res);
    assert_int_equal(mp_poolproxy_apply(pool, mpool_bytes, NULL, 0, NULL, NULL), 0);

    /* map (test_map), and over nothing (test_empty_iterable). */
    int64_t in[100], out[100];
    for (int i = 0; i < 100; i++)
        in[i] = i;
    memset(out, 0, sizeof out);
    assert_int_equal(mp_poolproxy_map(pool, mpool_sqr, in, sizeof in[0], 100, out,
                                      sizeof out[0]),
                     0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(out[i], i * i);
    assert_int_equal(mp_poolproxy_map(pool, mpool_sqr, NULL, sizeof in[0], 0, NULL, 8), 0);
    mp_proxy *ar = mp_poolproxy_map_async(pool, mpool_sqr, in, sizeof in[0], 10, 8, 3);
    assert_non_null(ar);
    assert_int_equal(mp_asyncproxy_get(ar, 10, &res, &n), 0);
    assert_int_equal(n, 10 * 8);
    assert_memory_equal(res, out, 80);
    free(res);
    mp_proxy_free(ar);

    /* A failing item: its code and message. */
    in[7] = -1;
    assert_int_equal(mp_poolproxy_map(pool, mpool_sqr, in, sizeof in[0], 10, out,
                                      sizeof out[0]),
                     -EDOM);
    assert_string_equal(mp_remote_error_message(), "no square for -1");
    assert_int_equal(mp_poolproxy_apply(pool, mpool_bytes, "fail", 4, &res, &n), -ERANGE);
    assert_string_equal(mp_remote_error_message(), "failed on purpose");

    /* apply_async and AsyncResult (test_async, test_async_timeout). */
    ar = mp_poolproxy_apply_async(pool, mpool_bytes, "sleep:300", 9);
    assert_non_null(ar);
    assert_int_equal(mp_proxy_kind_of(ar), MP_PROXY_ASYNC_RESULT);
    assert_null(mp_proxy_native(ar));
    assert_null(mp_proxy_native(pool));
    assert_int_equal(mp_asyncproxy_ready(ar), 0);
    assert_int_equal(mp_asyncproxy_successful(ar), MP_EINVAL);
    double t0 = mp__now();
    assert_int_equal(mp_asyncproxy_get(ar, 0.05, &res, &n), MP_ETIMEDOUT);
    assert_true(mp__now() - t0 < 0.25);
    assert_null(res);
    assert_int_equal(mp_asyncproxy_wait(ar, 0.01), MP_ETIMEDOUT);
    /* What another program might send: the server checks the timeout. */
    assert_int_equal(mp_asyncproxy_get(ar, -5, &res, &n), MP_EINVAL);
    assert_remote(mp_proxy_call(ar, "get", MP_TUPLE(MP_FLOAT(-5)), NULL), "ValueError", NULL);
    assert_remote(mp_proxy_call(ar, "wait", MP_TUPLE(MP_STR("x")), NULL), "TypeError", NULL);
    assert_int_equal(mp_asyncproxy_get(ar, MP_FOREVER, &res, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(res, "slept", 5);
    free(res);
    assert_int_equal(mp_asyncproxy_ready(ar), 1);
    assert_int_equal(mp_asyncproxy_successful(ar), 1);
    assert_int_equal(mp_asyncproxy_wait(ar, 0), 0);
    mp_proxy_free(ar);
    ar = mp_poolproxy_apply_async(pool, mpool_bytes, "fail", 4);
    assert_int_equal(mp_asyncproxy_wait(ar, 10), 0);
    assert_int_equal(mp_asyncproxy_successful(ar), 0);
    assert_int_equal(mp_asyncproxy_get(ar, 0, NULL, NULL), -ERANGE);
    mp_proxy_free(ar);

    /* Processes of the family share the pool through the proxy. */
    mp_process *ps[2];
    for (int i = 0; i < 2; i++)
        ps[i] = mpt_start(mpool_child, &pool, sizeof pool);
    for (int i = 0; i < 2; i++)
        mpt_join_ok(ps[i], MP_FOREVER);

    /* Bad arguments. */
    assert_null(mp_poolproxy_apply_async(pool, NULL, "x", 1));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_int_equal(mp_poolproxy_map(pool, mpool_sqr, in, 0, 3, out, 8), MP_EINVAL);
    mp_proxy *d = mp_manager_dict(m, NULL);
    assert_int_equal(mp_poolproxy_apply(d, mpool_bytes, "x", 1, NULL, NULL), MP_EINVAL);
    assert_int_equal(mp_asyncproxy_get(d, 1, NULL, NULL), MP_EINVAL);
    assert_int_equal(mp_proxy_call(pool, "map_async", MP_TUPLE(MP_I64(1)), NULL), MP_EREMOTE);
    assert_int_equal(mp_proxy_call(pool, "map_async",
                                   MP_TUPLE(MP_I64(1), MP_I64(2), MP_BYTES("abc", 3),
                                            MP_I64(2), MP_I64(8), MP_I64(0)),
                                   NULL),
                     MP_EREMOTE);
    assert_int_equal(mp_proxy_call(pool, "imap", NULL, NULL), MP_EREMOTE);
    assert_string_equal(mp_remote_error_type(), "AttributeError");
    assert_null(mp_manager_create(m, "AsyncResult", NULL));
    mp_proxy_free(d);

    /* join before close is refused; close, then join (test_make_pool). */
    assert_int_equal(mp_poolproxy_join(pool, 1), MP_EINVAL);
    ar = mp_poolproxy_apply_async(pool, mpool_bytes, "sleep:100", 9);
    assert_int_equal(mp_poolproxy_close(pool), 0);
    assert_int_equal(mp_poolproxy_apply(pool, mpool_bytes, "x", 1, NULL, NULL), MP_EREMOTE);
    assert_int_equal(mp_poolproxy_join(pool, 30), 0);
    assert_int_equal(mp_asyncproxy_get(ar, 0, NULL, NULL), 0);
    mp_proxy_free(ar);
    mp_proxy_free(pool);
    assert_int_equal(mp_manager_object_count(m), base);

    /* terminate with work pending (test_terminate). */
    pool = mp_manager_pool(m, 1);
    ar = mp_poolproxy_apply_async(pool, mpool_bytes, "sleep:20000", 11);
    mp_proxy *ar2 = mp_poolproxy_apply_async(pool, mpool_bytes, "x", 1);
    usleep(100000);
    t0 = mp__now();
    assert_int_equal(mp_poolproxy_terminate(pool), 0);
    assert_int_equal(mp_poolproxy_join(pool, 30), 0);
    assert_true(mp__now() - t0 < 10);
    assert_int_equal(mp_asyncproxy_get(ar, 10, NULL, NULL), MP_EWORKERLOST);
    assert_true(mp_asyncproxy_get(ar2, 10, NULL, NULL) < 0);
    mp_proxy_free(ar);
    /* A pool freed before its last result: the result keeps it. */
    mp_proxy_free(pool);
    assert_int_equal(mp_asyncproxy_ready(ar2), 1);
    mp_proxy_free(ar2);
    assert_int_equal(mp_manager_object_count(m), base);

    /* The server dies while a result is awaited: MP_EEOF. */
    pool = mp_manager_pool(m, 1);
    ar = mp_poolproxy_apply_async(pool, mpool_bytes, "sleep:20000", 11);
    pid_t spid = mp_manager_pid(m);
    assert_int_equal(kill(spid, SIGKILL), 0);
    t0 = mp__now();
    assert_int_equal(mp_asyncproxy_get(ar, 30, NULL, NULL), MP_EEOF);
    assert_true(mp__now() - t0 < 5);
    assert_int_equal(mp_poolproxy_apply(pool, mpool_bytes, "x", 1, NULL, NULL), MP_EEOF);
    mp_proxy_free(ar);
    mp_proxy_free(pool);
    stop(m);
}

/* Through a socket: the pool can be made and stopped, not sent functions. */
static void test_mgr_pool_remote(void **state)
{
    mp_manager *rm;
    mp_manager *m = socket_pair(false, &rm, NULL);
    mp_proxy *pool = mp_manager_pool(rm, 1);
    assert_non_null(pool);
    assert_int_equal(mp_poolproxy_apply(pool, mpool_bytes, "x", 1, NULL, NULL), MP_EINVAL);
    /* A result made in the family is awaited by the remote side in the
     * server's connection thread. */
    mp_proxy *fpool = mp_manager_pool(m, 1);
    mp_proxy *ar = mp_poolproxy_apply_async(fpool, mpool_bytes, "sleep:200", 9);
    mp_val *r = mp_val_proxy(ar);
    mp_proxy *d = mp_manager_dict(m, MP_DICT(MP_STR("r"), r));
    void *enc;
    size_t n;
    assert_int_equal(mp_val_encode(r, &enc, &n), 0);
    mp_val_free(r);
    mp_proxy_free(ar);
    /* The other program receives the reference as bytes. */
    mp_val *dec;
    assert_int_equal(mp_val_decode(enc, n, &dec, NULL), 0);
    free(enc);
    mp_proxy *rar = mp_proxy_from_val(rm, dec);
    mp_val_free(dec);
    assert_non_null(rar);
    assert_null(mp_proxy_native(rar));
    void *res = NULL;
    assert_int_equal(mp_asyncproxy_get(rar, 10, &res, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(res, "slept", 5);
    free(res);
    assert_int_equal(mp_asyncproxy_successful(rar), 1);
    mp_proxy_free(rar);
    assert_int_equal(mp_poolproxy_close(pool), 0);
    assert_int_equal(mp_poolproxy_join(pool, 30), 0);
    mp_proxy_free(pool);
    mp_proxy_free(fpool);
    mp_proxy_free(d);
    mp_manager_free(rm);
    stop(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_val_repr_seed_outputs),
        cmocka_unit_test(test_val_repr_floats),
        cmocka_unit_test(test_val_repr_strings),
        cmocka_unit_test(test_val_eq_hash_cmp),
        cmocka_unit_test(test_val_containers),
        cmocka_unit_test(test_val_parse),
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_exact_bytes),
        cmocka_unit_test(test_codec_malformed),
        cmocka_unit_test(test_codec_fuzz),
        cmocka_unit_test_setup_teardown(test_mgr_dict, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_list, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_namespace_value_array, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_registered, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_children, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_threads, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_sync_kinds, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_remote, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_default_authkey, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_client_killed, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_random_client_kills, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_server_killed, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_malformed, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_lifecycle, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_shutdown_wakes_remote_waiters, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_hosted_waits_server_killed, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_hosted_waits_shutdown, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_shutdown_keeps_objects_in_use, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_depth, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_registered_hosted_kind, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_exit_without_shutdown, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_exitcode, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_initializer, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_set, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_operators_iter, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_limits, mpt_setup, mpt_teardown),
        cmocka_unit_test(test_codec_proxy_refs),
        cmocka_unit_test_setup_teardown(test_mgr_nested_proxies, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_nested_proxies_remote, mpt_setup,
                                        mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_pool, mpt_setup, mpt_teardown),
        cmocka_unit_test_setup_teardown(test_mgr_pool_remote, mpt_setup, mpt_teardown),
    };
    return cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
}
