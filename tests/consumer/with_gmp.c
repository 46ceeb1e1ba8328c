/* with_gmp.c: <gmp.h> and <libmp.h> in one program: no clash of names. */
#include <gmp.h>
#include <libmp.h>
#include <stdio.h>

int main(void)
{
    mpz_t a;
    mp_limb_t limb = 3;
    mp_size_t n = 1;
    mpz_init_set_ui(a, (unsigned long)limb);
    mpz_mul_ui(a, a, 14);
    void *p = mp_shared_alloc(64);
    int ok = mpz_get_ui(a) == 42 && n == 1 && p != NULL && mp_shared_free(p) == 0;
    mpz_clear(a);
    printf("gmp and libmp: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
