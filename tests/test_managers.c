/* test_managers.c: typed values, their encoding, and the manager. */
#include "internal/mp.h"
#include "internal/val.h"
#include "mptest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    static const char *const words[] = {"", "a", "it's", "say \"hi\"", "\xc3\xa9t\xc3\xa9",
                                        "tab\there", "\x01\x7f", "long string with words"};
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
        assert_int_equal(mp_val_dict_set(d, MP_INT(i), MP_INT(i * 2)), 0);
    assert_repr(d, "{0: 0, 1: 2, 2: 4, 3: 6, 4: 8, 5: 10, 6: 12, 7: 14, 8: 16, 9: 18}");
    mp_val_free(d);

    mp_val *l = mp_val_range(9, -1, -1);
    assert_repr(l, "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
    mp_val_free(l);

    assert_repr(MP_DICT(MP_FLOAT(0.25), MP_NONE, MP_INT(1), MP_STR("1"), MP_STR("2"), MP_INT(2)),
                "{0.25: None, 1: '1', '2': 2}");
    d = mp_val_dict();
    assert_int_equal(mp_val_dict_set(d, MP_INT(1), MP_STR("1")), 0);
    assert_int_equal(mp_val_dict_set(d, MP_STR("2"), MP_INT(2)), 0);
    assert_int_equal(mp_val_dict_set(d, MP_FLOAT(0.25), MP_NONE), 0);
    assert_repr(d, "{1: '1', '2': 2, 0.25: None}");
    mp_val_free(d);
    assert_repr(MP_EMPTY_LIST, "[]");
    assert_repr(MP_EMPTY_DICT, "{}");
    assert_repr(MP_EMPTY_TUPLE, "()");
    assert_repr(MP_TUPLE(MP_INT(1)), "(1,)");
    assert_repr(MP_TUPLE(MP_INT(1), MP_TRUE, MP_FALSE), "(1, True, False)");
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
        {0.25, "0.25"}, {1.0, "1.0"}, {-0.0, "-0.0"}, {0.0, "0.0"}, {0.1, "0.1"},
        {(double)3.14f, "3.140000104904175"}, {9.859601020812988, "9.859601020812988"},
        {1e16, "1e+16"}, {1e15, "1000000000000000.0"}, {1e-5, "1e-05"}, {0.0001, "0.0001"},
        {123456789.0, "123456789.0"}, {1.5e300, "1.5e+300"}, {5e-324, "5e-324"},
        {2.675, "2.675"}, {1234.5, "1234.5"}, {-2.5e-7, "-2.5e-07"}, {3.1415927, "3.1415927"},
        {1.7976931348623157e308, "1.7976931348623157e+308"}, {INFINITY, "inf"},
        {-INFINITY, "-inf"}, {NAN, "nan"}, {100.0, "100.0"}, {0.3, "0.3"},
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
    assert_repr(MP_BYTES("\x00\xff" "a'", 4), "b\"\\x00\\xffa'\"");
    assert_repr(MP_BYTES("", 0), "b''");
    assert_repr(MP_INT(INT64_MIN), "-9223372036854775808");
    /* Invalid UTF-8 in a literal is refused, not printed. */
    assert_null(mp_val_repr(MP_STR("\xff")));
    assert_int_equal(mp_last_error(), MP_EINVAL);
    assert_null(mp_val_repr(NULL));
    assert_null(mp_val_str("\xc0\x80"));
    assert_null(mp_val_strn("\xed\xa0\x80", 3)); /* a surrogate */
    assert_null(mp_val_strn("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_null(mp_val_strn("\xe2\x82", 2)); /* truncated */
    mp_val *ok = mp_val_strn("\xf0\x9f\x98\x80", 4);
    assert_non_null(ok);
    mp_val_free(ok);
}

static void test_val_eq_hash_cmp(void **state)
{
    uint64_t h1, h2, h3;
    assert_true(mp_val_eq(MP_INT(1), MP_FLOAT(1.0)));
    assert_true(mp_val_eq(MP_INT(1), MP_TRUE));
    assert_false(mp_val_eq(MP_INT(1), MP_STR("1")));
    assert_false(mp_val_eq(MP_STR("a"), MP_BYTES("a", 1)));
    assert_false(mp_val_eq(MP_FLOAT(NAN), MP_FLOAT(NAN)));
    assert_false(mp_val_eq(MP_LIST(MP_INT(1)), MP_TUPLE(MP_INT(1))));
    assert_true(mp_val_eq(MP_INT(INT64_MAX), MP_INT(INT64_MAX)));
    assert_false(mp_val_eq(MP_INT(INT64_MAX), MP_FLOAT(9223372036854775807.0)));
    assert_false(mp_val_eq(MP_INT((1LL << 53) + 1), MP_FLOAT((double)(1LL << 53))));
    assert_int_equal(mp_val_hash(MP_INT(1), &h1), 0);
    assert_int_equal(mp_val_hash(MP_FLOAT(1.0), &h2), 0);
    assert_int_equal(mp_val_hash(MP_TRUE, &h3), 0);
    assert_true(h1 == h2 && h2 == h3);
    assert_int_equal(mp_val_hash(MP_LIST(MP_INT(1)), &h1), MP_EINVAL);
    assert_int_equal(mp_val_hash(MP_TUPLE(MP_INT(1), MP_EMPTY_DICT), &h1), MP_EINVAL);
    assert_int_equal(mp_val_hash(MP_TUPLE(MP_INT(1), MP_STR("x")), &h1), 0);
    assert_int_equal(mp_val_hash(NULL, &h1), MP_EINVAL);
    assert_true(mp_val_eq(MP_DICT(MP_INT(1), MP_STR("a"), MP_INT(2), MP_STR("b")),
                          MP_DICT(MP_INT(2), MP_STR("b"), MP_FLOAT(1.0), MP_STR("a"))));

    assert_true(mp_val_cmp(MP_INT(1), MP_FLOAT(1.5)) < 0);
    assert_true(mp_val_cmp(MP_FLOAT(-1.5), MP_INT(-1)) < 0);
    assert_true(mp_val_cmp(MP_INT(-1), MP_FLOAT(-1.5)) > 0);
    assert_true(mp_val_cmp(MP_INT(INT64_MAX), MP_FLOAT(1e19)) < 0);
    assert_true(mp_val_cmp(MP_FLOAT(NAN), MP_INT(INT64_MAX)) > 0);
    assert_int_equal(mp_val_cmp(MP_FLOAT(NAN), MP_FLOAT(NAN)), 0);
    assert_true(mp_val_cmp(MP_NONE, MP_INT(-5)) < 0);
    assert_true(mp_val_cmp(MP_INT(5), MP_STR("")) < 0);
    assert_true(mp_val_cmp(MP_STR("b"), MP_STR("ab")) > 0);
    assert_true(mp_val_cmp(MP_STR("a"), MP_STR("ab")) < 0);
    assert_true(mp_val_cmp(MP_STR("\xc3\xa9"), MP_STR("z")) > 0);
    assert_true(mp_val_cmp(MP_LIST(MP_INT(1), MP_INT(2)), MP_LIST(MP_INT(1), MP_INT(3))) < 0);
    assert_int_equal(mp_val_cmp(MP_INT(2), MP_FLOAT(2.0)), 0);
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
        assert_int_equal(mp_val_dict_set(d, MP_INT(i), MP_INT(-i)), 0);
    for (int i = 0; i < 20000; i += 2)
        assert_int_equal(mp_val_dict_del(d, MP_FLOAT((double)i)), 0);
    assert_int_equal(mp_val_dict_del(d, MP_INT(0)), -ENOENT);
    assert_int_equal(mp_val_len(d), 10000);
    for (int i = 0; i < 20000; i++) {
        const mp_val *x = mp_val_dict_get(d, MP_INT(i));
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
        assert_int_equal(mp_val_dict_set(d, MP_STR("churn"), MP_INT(i)), 0);
        assert_int_equal(mp_val_dict_del(d, MP_STR("churn")), 0);
    }
    /* An existing key keeps its place and its first spelling. */
    assert_int_equal(mp_val_dict_set(d, MP_TRUE, MP_STR("one")), 0);
    assert_int_equal(mp_val_len(d), 10000);
    assert_string_equal(mp_val_dict_get(d, MP_INT(1))->s.ptr, "one");
    assert_int_equal(mp_val_dict_set(d, MP_LIST(MP_INT(1)), MP_NONE), MP_EINVAL);
    assert_int_equal(mp_val_dict_set((mp_val *)MP_DICT(MP_INT(1), MP_NONE), MP_INT(2), MP_NONE), MP_EINVAL);
    mp_val_free(d);

    d = mp_val_dict();
    assert_int_equal(mp_val_dict_set(d, MP_TRUE, MP_STR("a")), 0);
    assert_int_equal(mp_val_dict_set(d, MP_FLOAT(1.0), MP_STR("b")), 0);
    assert_repr(d, "{True: 'b'}");
    mp_val_free(d);

    mp_val *l = mp_val_list();
    assert_int_equal(mp_val_list_append(l, MP_INT(1)), 0);
    assert_int_equal(mp_val_list_insert(l, 0, MP_INT(0)), 0);
    assert_int_equal(mp_val_list_insert(l, 100, MP_INT(3)), 0);
    assert_int_equal(mp_val_list_insert(l, -1, MP_INT(2)), 0);
    assert_repr(l, "[0, 1, 2, 3]");
    assert_int_equal(mp_val_item(l, -1)->i, 3);
    assert_null(mp_val_item(l, 4));
    assert_null(mp_val_item(l, -5));
    assert_int_equal(mp_val_list_set(l, -4, MP_STR("z")), 0);
    assert_int_equal(mp_val_list_set(l, 4, MP_STR("z")), MP_EINVAL);
    assert_int_equal(mp_val_list_del(l, 1), 0);
    assert_repr(l, "['z', 2, 3]");
    assert_int_equal(mp_val_list_append((mp_val *)MP_EMPTY_LIST, MP_INT(1)), MP_EINVAL);
    assert_int_equal(mp_val_list_append(l, MP_STR("\xff")), MP_EINVAL);
    assert_int_equal(mp_val_len(l), 3);
    mp_val_free(l);
    assert_null(mp_val_range(0, 1, 0));
    l = mp_val_range(0, 10, 3);
    assert_repr(l, "[0, 3, 6, 9]");
    mp_val_free(l);

    /* Copies are deep and equal; literals copy into allocated values. */
    const mp_val *lit = MP_DICT(MP_STR("k"), MP_LIST(MP_INT(1), MP_TUPLE(MP_NONE, MP_FLOAT(2.5))),
                                MP_INT(7), MP_BYTES("x", 1));
    mp_val *c = mp_val_copy(lit);
    assert_non_null(c);
    assert_true(mp_val_eq(c, lit));
    assert_int_equal(mp_val_dict_set(c, MP_INT(8), MP_NONE), 0);
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
    assert_int_equal(mp_val_as_float(MP_INT(3), &f), 0);
    assert_true(f == 3.0);
    assert_int_equal(mp_val_as_str(MP_STR("hey"), &p, &len), 0);
    assert_int_equal(len, 3);
    assert_int_equal(mp_val_as_str(MP_INT(1), &p, &len), MP_EINVAL);
    assert_int_equal(mp_val_as_bool(MP_FALSE, &b), 0);
    assert_false(b);
    assert_int_equal(mp_val_as_bool(NULL, &b), MP_EINVAL);
}

static void test_val_parse(void **state)
{
    static const char *const ok[] = {
        "None", "True", "False", "0", "-5", "+7", "1_000", "0x1F", "-0o17", "0b101",
        "9223372036854775807", "-9223372036854775808", "2.5", "-1e-05", ".5", "1.",
        "inf", "-inf", "'a'", "\"it's\"", "'\\x41\\u00e9\\U0001F600\\n\\101'", "b'\\x00ab'",
        "[]", "[1, 2,]", "()", "(1,)", "(1)", "{}", "{'a': [1, (2, 3)], 4: None}",
        "  [ 1 , 'x' ]  ", "{0.25: None, 1: '1', '2': 2}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        mp_val *v;
        if (mp_val_parse(ok[i], &v) != 0)
            fail_msg("parse failed: %s", ok[i]);
        mp_val_free(v);
    }
    static const char *const bad[] = {
        "", "[", "[1 2]", "{1}", "{[]: 1}", "{1: 2, 1: 3}", "9223372036854775808",
        "-9223372036854775809", "'abc", "b'\xc3\xa9'", "'\\x4'", "nope", "1 2", "(1 2)",
        "'\\ud800'", "0x", "1e", "[1,,]",
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
    assert_int_equal(mp_val_encode(MP_DICT(MP_INT(1), MP_LIST(MP_STR("ab"), MP_NONE, MP_TRUE)),
                                   &buf, &len), 0);
    static const uint8_t want[] = {0x09, 0x01, 0x03, 0x02, 0x07, 0x03, 0x05, 0x02, 'a', 'b', 0x00, 0x02};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    free(buf);
    assert_int_equal(mp_val_encode(MP_INT(-1), &buf, &len), 0);
    assert_int_equal(len, 2);
    assert_int_equal(((uint8_t *)buf)[1], 0x01);
    free(buf);
    assert_int_equal(mp_val_encode(MP_INT(INT64_MIN), &buf, &len), 0);
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
    assert_int_equal(mp_val_encode(MP_INT(1), NULL, &len), MP_EINVAL);
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
    };
    return cmocka_run_group_tests_name(MP_TEST_NAME, tests, NULL, NULL);
}
