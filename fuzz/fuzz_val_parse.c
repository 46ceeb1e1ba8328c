/*
 * fuzz_val_parse: the Python-literal parser (val_text.c, mp_val_parse).
 *
 * Invariant: what parses prints (mp_val_repr) as text that parses again to
 * a value printing the same text.
 */
#include <libmp.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    mp_val *v = NULL;
    if (mp_val_parse(text, &v) == 0) {
        char *r1 = mp_val_repr(v);
        char *s = mp_val_tostring(v);
        mp_val *w = NULL;
        if (r1 != NULL) {
            if (mp_val_parse(r1, &w) != 0)
                abort(); /* repr printed something parse rejects */
            char *r2 = mp_val_repr(w);
            if (r2 != NULL && strcmp(r1, r2) != 0)
                abort();
            free(r2);
        }
        mp_val_free(w);
        free(s);
        free(r1);
        mp_val_free(v);
    } else if (v != NULL) {
        abort(); /* a failed parse hands nothing back */
    }
    free(text);
    return 0;
}
