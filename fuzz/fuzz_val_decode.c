/*
 * fuzz_val_decode: the manager value codec (val_codec.c), the binary form
 * in which managers exchange values with other processes.
 *
 * Invariant checked beyond "no crash, no leak": a value that decodes
 * encodes again, and that encoding decodes to a value that encodes to the
 * same bytes (decode and encode agree); a copy of it (proxy references
 * included) encodes to those bytes too.
 */
#include <libmp.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mp_val *v = NULL;
    size_t used = 0;
    if (mp_val_decode(data, size, &v, &used) != 0) {
        if (v != NULL)
            abort(); /* a failed decode hands nothing back */
        return 0;
    }
    if (used > size)
        abort();
    void *b1 = NULL, *b2 = NULL;
    size_t n1 = 0, n2 = 0;
    if (mp_val_encode(v, &b1, &n1) == 0) {
        mp_val *w = NULL;
        if (mp_val_decode(b1, n1, &w, &used) != 0 || used != n1)
            abort();
        if (mp_val_encode(w, &b2, &n2) == 0 && (n1 != n2 || memcmp(b1, b2, n1) != 0))
            abort();
        mp_val_free(w);
        free(b2);
        b2 = NULL;
        mp_val *c = mp_val_copy(v);
        if (c == NULL || mp_val_encode(c, &b2, &n2) != 0 || n1 != n2 ||
            memcmp(b1, b2, n1) != 0)
            abort();
        mp_val_free(c);
    }
    free(b1);
    free(b2);
    mp_val_free(v);
    return 0;
}
