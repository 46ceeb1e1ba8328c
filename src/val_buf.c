/*
 * val_buf.c: the growable byte buffer and the UTF-8 check that the value
 * code, the encoding and the manager share (internal/val.h).
 */
#include "internal/val.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the byte buffer ---------------------------------------------------- */

bool mp__buf_reserve(mp__buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->cap - b->len > more)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len <= more) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void mp__buf_put(mp__buf *b, const void *p, size_t n)
{
    if (n == 0 || !mp__buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void mp__buf_putc(mp__buf *b, char c)
{
    if (!mp__buf_reserve(b, 1))
        return;
    b->p[b->len++] = c;
}

void mp__buf_puts(mp__buf *b, const char *s)
{
    mp__buf_put(b, s, strlen(s));
}

void mp__buf_printf(mp__buf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        mp__buf_put(b, tmp, (size_t)n);
        return;
    }
    if (!mp__buf_reserve(b, (size_t)n + 1))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void mp__buf_varint(mp__buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        tmp[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    mp__buf_put(b, tmp, n);
}

void mp__buf_free(mp__buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

char *mp__buf_cstr(mp__buf *b)
{
    mp__buf_putc(b, '\0');
    if (b->oom) {
        mp__buf_free(b);
        return NULL;
    }
    char *s = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return s;
}

/* ---- UTF-8 -------------------------------------------------------------- */

bool mp__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}
