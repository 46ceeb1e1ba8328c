/*
 * val_text.c: values as Python text: repr, str and a literal parser
 * (ast.literal_eval's subset for the types of libmp/val.h).
 */
#include "internal/val.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- repr --------------------------------------------------------------- */

void mp__float_repr(mp__buf *b, double f)
{
    if (isnan(f)) {
        mp__buf_puts(b, "nan");
        return;
    }
    if (isinf(f)) {
        mp__buf_puts(b, f < 0 ? "-inf" : "inf");
        return;
    }
    /* The shortest %e form that reads back as the same double. */
    char tmp[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    /* tmp is [-]D[.DDD]e(+|-)XX: split into sign, digits and exponent. */
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    size_t nd = 0;
    for (; *p != 'e'; p++)
        if (*p != '.' && nd < sizeof digits - 1)
            digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int exp = atoi(p + 1);
    if (neg)
        mp__buf_putc(b, '-');
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            mp__buf_puts(b, "0.");
            for (int i = -1; i > exp; i--)
                mp__buf_putc(b, '0');
            mp__buf_put(b, digits, nd);
        } else {
            size_t whole = (size_t)exp + 1;
            for (size_t i = 0; i < whole; i++)
                mp__buf_putc(b, i < nd ? digits[i] : '0');
            mp__buf_putc(b, '.');
            if (nd > whole)
                mp__buf_put(b, digits + whole, nd - whole);
            else
                mp__buf_putc(b, '0');
        }
    } else {
        mp__buf_putc(b, digits[0]);
        if (nd > 1) {
            mp__buf_putc(b, '.');
            mp__buf_put(b, digits + 1, nd - 1);
        }
        mp__buf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
}

/* Decode one UTF-8 sequence (known valid) at p; returns its length. */
static size_t utf8_get(const unsigned char *p, uint32_t *cp)
{
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] < 0xe0) {
        *cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
        return 2;
    }
    if (p[0] < 0xf0) {
        *cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
        return 3;
    }
    *cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
          (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
    return 4;
}

/* Code points Python's repr escapes although they are not ASCII controls:
 * C1 controls, no-break space, soft hyphen, line and paragraph separators,
 * zero-width and direction marks, the byte order mark. */
static bool unprintable(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0xa0) || cp == 0xad || (cp >= 0x200b && cp <= 0x200f) ||
           cp == 0x2028 || cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) || cp == 0xfeff;
}

static void quoted(mp__buf *b, const char *s, size_t n, bool bytes)
{
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    if (bytes)
        mp__buf_putc(b, 'b');
    mp__buf_putc(b, q);
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c == (unsigned)q || c == '\\') {
            mp__buf_putc(b, '\\');
            mp__buf_putc(b, (char)c);
        } else if (c == '\n') {
            mp__buf_puts(b, "\\n");
        } else if (c == '\r') {
            mp__buf_puts(b, "\\r");
        } else if (c == '\t') {
            mp__buf_puts(b, "\\t");
        } else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
            mp__buf_printf(b, "\\x%02x", c);
        } else if (c >= 0x80) {
            uint32_t cp;
            size_t len = utf8_get(p + i, &cp);
            if (!unprintable(cp))
                mp__buf_put(b, p + i, len);
            else if (cp <= 0xff)
                mp__buf_printf(b, "\\x%02x", (unsigned)cp);
            else
                mp__buf_printf(b, "\\u%04x", (unsigned)cp);
            i += len;
            continue;
        } else {
            mp__buf_putc(b, (char)c);
        }
        i++;
    }
    mp__buf_putc(b, q);
}

static int repr_rec(mp__buf *b, const mp_val *v, bool as_str, int depth)
{
    if (v == NULL || depth > MP_VAL_MAX_DEPTH)
        return MP_EINVAL;
    switch (v->type) {
    case MP_VAL_NONE:
        mp__buf_puts(b, "None");
        return 0;
    case MP_VAL_BOOL:
        mp__buf_puts(b, v->b ? "True" : "False");
        return 0;
    case MP_VAL_INT:
        mp__buf_printf(b, "%lld", (long long)v->i);
        return 0;
    case MP_VAL_FLOAT:
        mp__float_repr(b, v->f);
        return 0;
    case MP_VAL_STR:
        if (v->s.ptr == NULL && v->s.len > 0)
            return MP_EINVAL;
        if (!mp__utf8_valid(v->s.ptr, v->s.len))
            return MP_EINVAL;
        if (as_str)
            mp__buf_put(b, v->s.ptr, v->s.len);
        else
            quoted(b, v->s.ptr, v->s.len, false);
        return 0;
    case MP_VAL_BYTES:
        if (v->s.ptr == NULL && v->s.len > 0)
            return MP_EINVAL;
        quoted(b, v->s.ptr, v->s.len, true);
        return 0;
    case MP_VAL_LIST:
    case MP_VAL_TUPLE: {
        bool tuple = v->type == MP_VAL_TUPLE;
        if (v->seq.items == NULL && v->seq.len > 0)
            return MP_EINVAL;
        mp__buf_putc(b, tuple ? '(' : '[');
        for (size_t i = 0; i < v->seq.len; i++) {
            if (i)
                mp__buf_puts(b, ", ");
            int r = repr_rec(b, v->seq.items[i], false, depth + 1);
            if (r != 0)
                return r;
        }
        if (tuple && v->seq.len == 1)
            mp__buf_putc(b, ',');
        mp__buf_putc(b, tuple ? ')' : ']');
        return 0;
    }
    case MP_VAL_DICT: {
        if (v->dict.kv_ == NULL && v->dict.slots_ > 0)
            return MP_EINVAL;
        mp__buf_putc(b, '{');
        bool first = true;
        for (size_t s = 0; s < v->dict.slots_; s++) {
            if (v->dict.kv_[2 * s] == NULL)
                continue;
            if (!first)
                mp__buf_puts(b, ", ");
            first = false;
            int r = repr_rec(b, v->dict.kv_[2 * s], false, depth + 1);
            if (r == 0) {
                mp__buf_puts(b, ": ");
                r = repr_rec(b, v->dict.kv_[2 * s + 1], false, depth + 1);
            }
            if (r != 0)
                return r;
        }
        mp__buf_putc(b, '}');
        return 0;
    }
    case MP_VAL_PROXY:
        /* Python prints the object's address; the id names it here. */
        if (!mp__ref_ok(v))
            return MP_EINVAL;
        mp__buf_printf(b, "<%s object, typeid '%s', id %llu>",
                       mp__proxy_class_name(v->ref.kind), v->ref.type_id,
                       (unsigned long long)v->ref.oid);
        return 0;
    default:
        return MP_EINVAL;
    }
}

int mp__val_repr_buf(mp__buf *b, const mp_val *v, bool as_str)
{
    return repr_rec(b, v, as_str, 0);
}

static char *repr_common(const mp_val *v, bool as_str)
{
    mp__buf b = {0};
    int r = repr_rec(&b, v, as_str, 0);
    if (r != 0) {
        mp__buf_free(&b);
        return mp__fail_null(r);
    }
    char *s = mp__buf_cstr(&b);
    return s != NULL ? s : mp__fail_null(-ENOMEM);
}

char *mp_val_repr(const mp_val *v)
{
    return repr_common(v, false);
}

char *mp_val_tostring(const mp_val *v)
{
    return repr_common(v, true);
}

int mp_val_fprint(FILE *f, const mp_val *v)
{
    if (f == NULL)
        return MP_EINVAL;
    mp__buf b = {0};
    int r = repr_rec(&b, v, true, 0);
    if (r == 0 && b.oom)
        r = -ENOMEM;
    if (r == 0 && b.len > 0 && fwrite(b.p, 1, b.len, f) != b.len)
        r = mp__errno();
    mp__buf_free(&b);
    return r;
}

/* ---- parse ---------------------------------------------------------------- */

typedef struct parser {
    const char *s;
    size_t pos;
    int err;
} parser;

static void skip_ws(parser *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
           p->s[p->pos] == '\r')
        p->pos++;
}

static bool accept(parser *p, char c)
{
    skip_ws(p);
    if (p->s[p->pos] != c)
        return false;
    p->pos++;
    return true;
}

static bool word(parser *p, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(p->s + p->pos, w, n) != 0)
        return false;
    char c = p->s[p->pos + n];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
        return false;
    p->pos += n;
    return true;
}

static mp_val *parse_value(parser *p, int depth);

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void put_utf8(mp__buf *b, uint32_t cp)
{
    char t[4];
    if (cp < 0x80) {
        mp__buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        t[0] = (char)(0xc0 | cp >> 6);
        t[1] = (char)(0x80 | (cp & 0x3f));
        mp__buf_put(b, t, 2);
    } else if (cp < 0x10000) {
        t[0] = (char)(0xe0 | cp >> 12);
        t[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        t[2] = (char)(0x80 | (cp & 0x3f));
        mp__buf_put(b, t, 3);
    } else {
        t[0] = (char)(0xf0 | cp >> 18);
        t[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        t[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        t[3] = (char)(0x80 | (cp & 0x3f));
        mp__buf_put(b, t, 4);
    }
}

static mp_val *parse_string(parser *p, bool bytes)
{
    char q = p->s[p->pos];
    if (q != '\'' && q != '"') {
        p->err = MP_EINVAL;
        return NULL;
    }
    p->pos++;
    mp__buf b = {0};
    for (;;) {
        char c = p->s[p->pos];
        if (c == '\0' || c == '\n') {
            p->err = MP_EINVAL;
            goto fail;
        }
        p->pos++;
        if (c == q)
            break;
        if (c != '\\') {
            if (bytes && (unsigned char)c >= 0x80) {
                p->err = MP_EINVAL; /* bytes literals are ASCII */
                goto fail;
            }
            mp__buf_putc(&b, c);
            continue;
        }
        c = p->s[p->pos++];
        uint32_t cp = 0;
        int digits = 0;
        switch (c) {
        case 'n':
            mp__buf_putc(&b, '\n');
            continue;
        case 't':
            mp__buf_putc(&b, '\t');
            continue;
        case 'r':
            mp__buf_putc(&b, '\r');
            continue;
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
            cp = (uint32_t)(c - '0');
            for (int k = 0; k < 2 && p->s[p->pos] >= '0' && p->s[p->pos] <= '7'; k++)
                cp = cp * 8 + (uint32_t)(p->s[p->pos++] - '0');
            if (bytes) {
                mp__buf_putc(&b, (char)(cp & 0xff));
                continue;
            }
            put_utf8(&b, cp);
            continue;
        case 'a':
            mp__buf_putc(&b, '\a');
            continue;
        case 'b':
            mp__buf_putc(&b, '\b');
            continue;
        case 'f':
            mp__buf_putc(&b, '\f');
            continue;
        case 'v':
            mp__buf_putc(&b, '\v');
            continue;
        case '\\':
        case '\'':
        case '"':
            mp__buf_putc(&b, c);
            continue;
        case '\n':
            continue;
        case 'x':
            digits = 2;
            break;
        case 'u':
            digits = bytes ? 0 : 4;
            break;
        case 'U':
            digits = bytes ? 0 : 8;
            break;
        default:
            break;
        }
        if (digits == 0) {
            /* Python keeps unknown escapes as they are. */
            mp__buf_putc(&b, '\\');
            if (c == '\0') {
                p->err = MP_EINVAL;
                goto fail;
            }
            mp__buf_putc(&b, c);
            continue;
        }
        for (int k = 0; k < digits; k++) {
            int h = hexval(p->s[p->pos]);
            if (h < 0) {
                p->err = MP_EINVAL;
                goto fail;
            }
            cp = cp * 16 + (uint32_t)h;
            p->pos++;
        }
        if (bytes) {
            mp__buf_putc(&b, (char)cp);
        } else {
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                p->err = MP_EINVAL;
                goto fail;
            }
            put_utf8(&b, cp);
        }
    }
    if (b.oom) {
        p->err = -ENOMEM;
        goto fail;
    }
    if (!bytes && !mp__utf8_valid(b.p, b.len)) {
        p->err = MP_EINVAL;
        goto fail;
    }
    mp_val *v = mp__val_new_bytes(bytes ? MP_VAL_BYTES : MP_VAL_STR, b.p, b.len);
    mp__buf_free(&b);
    if (v == NULL)
        p->err = -ENOMEM;
    return v;
fail:
    mp__buf_free(&b);
    return NULL;
}

static mp_val *parse_number(parser *p)
{
    const char *start = p->s + p->pos;
    const char *q = start;
    bool neg = false;
    if (*q == '-' || *q == '+') {
        neg = *q == '-';
        q++;
        while (*q == ' ')
            q++;
    }
    if (strncmp(q, "inf", 3) == 0 || strncmp(q, "nan", 3) == 0) {
        mp_val *v = mp__val_new(MP_VAL_FLOAT);
        if (v == NULL) {
            p->err = -ENOMEM;
            return NULL;
        }
        v->f = q[0] == 'i' ? INFINITY : NAN;
        if (neg)
            v->f = -v->f;
        p->pos = (size_t)(q + 3 - p->s);
        return v;
    }
    /* Copy the token without underscores. */
    char tok[128];
    size_t n = 0;
    int base = 10;
    if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X' || q[1] == 'o' || q[1] == 'O' ||
                        q[1] == 'b' || q[1] == 'B')) {
        base = q[1] == 'x' || q[1] == 'X' ? 16 : q[1] == 'o' || q[1] == 'O' ? 8 : 2;
        q += 2;
    }
    bool is_float = false;
    for (;; q++) {
        char c = *q;
        if (c == '_')
            continue;
        bool ok = base == 16 ? hexval(c) >= 0 : (c >= '0' && c <= '9');
        if (base == 10 && (c == '.' || c == 'e' || c == 'E')) {
            ok = true;
            is_float = true;
        }
        if (base == 10 && (c == '+' || c == '-') && n > 0 &&
            (tok[n - 1] == 'e' || tok[n - 1] == 'E'))
            ok = true;
        if (!ok)
            break;
        if (n >= sizeof tok - 1) {
            p->err = MP_EINVAL;
            return NULL;
        }
        tok[n++] = c;
    }
    tok[n] = '\0';
    if (n == 0) {
        p->err = MP_EINVAL;
        return NULL;
    }
    mp_val *v;
    char *end;
    if (is_float) {
        errno = 0;
        double f = strtod(tok, &end);
        if (*end != '\0') {
            p->err = MP_EINVAL;
            return NULL;
        }
        v = mp__val_new(MP_VAL_FLOAT);
        if (v)
            v->f = neg ? -f : f;
    } else {
        errno = 0;
        unsigned long long u = strtoull(tok, &end, base);
        if (*end != '\0' || errno == ERANGE ||
            u > (neg ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX)) {
            p->err = MP_EINVAL;
            return NULL;
        }
        v = mp__val_new(MP_VAL_INT);
        if (v)
            v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
    }
    if (v == NULL) {
        p->err = -ENOMEM;
        return NULL;
    }
    p->pos = (size_t)(q - p->s);
    return v;
}

/* Items up to the closing bracket; tuples detect (x) versus (x,). */
static mp_val *parse_seq(parser *p, char close, mp_val_type type, int depth)
{
    mp_val *l = mp__val_new(type);
    if (l == NULL) {
        p->err = -ENOMEM;
        return NULL;
    }
    bool comma = false;
    while (!accept(p, close)) {
        if (l->seq.len > 0 && !comma) {
            p->err = MP_EINVAL;
            goto fail;
        }
        mp_val *item = parse_value(p, depth + 1);
        if (item == NULL)
            goto fail;
        if (mp__val_list_push(l, item) != 0) {
            p->err = -ENOMEM;
            goto fail;
        }
        comma = accept(p, ',');
    }
    if (type == MP_VAL_TUPLE && l->seq.len == 1 && !comma) {
        /* (x) is just x. */
        mp_val *x = mp__val_list_remove(l, 0);
        mp_val_free(l);
        return x;
    }
    return l;
fail:
    mp_val_free(l);
    return NULL;
}

static mp_val *parse_dict(parser *p, int depth)
{
    mp_val *d = mp__val_new(MP_VAL_DICT);
    if (d == NULL) {
        p->err = -ENOMEM;
        return NULL;
    }
    bool comma = false;
    while (!accept(p, '}')) {
        if (d->dict.count > 0 && !comma) {
            p->err = MP_EINVAL;
            goto fail;
        }
        mp_val *k = parse_value(p, depth + 1);
        if (k == NULL)
            goto fail;
        if (!accept(p, ':')) {
            mp_val_free(k);
            p->err = MP_EINVAL;
            goto fail;
        }
        mp_val *x = parse_value(p, depth + 1);
        if (x == NULL) {
            mp_val_free(k);
            goto fail;
        }
        int r = mp__val_dict_put(d, k, x, false);
        if (r != 0) {
            if (r == 1) {
                mp_val_free(k);
                mp_val_free(x);
            }
            p->err = r == -ENOMEM ? -ENOMEM : MP_EINVAL;
            goto fail;
        }
        comma = accept(p, ',');
    }
    return d;
fail:
    mp_val_free(d);
    return NULL;
}

static mp_val *parse_value(parser *p, int depth)
{
    if (depth > MP_VAL_MAX_DEPTH) {
        p->err = MP_EINVAL;
        return NULL;
    }
    skip_ws(p);
    char c = p->s[p->pos];
    if (c == '[') {
        p->pos++;
        return parse_seq(p, ']', MP_VAL_LIST, depth);
    }
    if (c == '(') {
        p->pos++;
        return parse_seq(p, ')', MP_VAL_TUPLE, depth);
    }
    if (c == '{') {
        p->pos++;
        return parse_dict(p, depth);
    }
    if (c == '\'' || c == '"')
        return parse_string(p, false);
    if ((c == 'b' || c == 'B') && (p->s[p->pos + 1] == '\'' || p->s[p->pos + 1] == '"')) {
        p->pos++;
        return parse_string(p, true);
    }
    mp_val *v = NULL;
    if (word(p, "None")) {
        v = mp__val_new(MP_VAL_NONE);
    } else if (word(p, "True") || word(p, "False")) {
        v = mp__val_new(MP_VAL_BOOL);
        if (v)
            v->b = p->s[p->pos - 1] == 'e' && p->s[p->pos - 2] == 'u';
    } else if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'i' ||
               c == 'n') {
        return parse_number(p);
    } else {
        p->err = MP_EINVAL;
        return NULL;
    }
    if (v == NULL)
        p->err = -ENOMEM;
    return v;
}

int mp_val_parse(const char *text, mp_val **out)
{
    if (out != NULL)
        *out = NULL;
    if (text == NULL || out == NULL)
        return MP_EINVAL;
    parser p = {.s = text, .pos = 0, .err = 0};
    mp_val *v = parse_value(&p, 0);
    if (v == NULL)
        return p.err ? p.err : MP_EINVAL;
    skip_ws(&p);
    if (p.s[p.pos] != '\0') {
        mp_val_free(v);
        return MP_EINVAL;
    }
    *out = v;
    return 0;
}
