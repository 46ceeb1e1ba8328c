/*
 * with_gmp.c: <libmp.h> in one program with the other "mp" libraries:
 * GMP's <gmp.h> always, and libtommath's <tommath.h> (built with
 * -DWITH_TOMMATH) or else the declarations of BSD's <mp.h> (those two
 * clash with each other: both declare mp_gcd).  A libmp name equal to one
 * of theirs fails the build (a redefinition, or a conflicting declaration).
 */
#include <gmp.h>
#ifdef WITH_TOMMATH
#include <tommath.h>
#endif
#include <libmp.h>
#include <stdio.h>

#ifndef WITH_TOMMATH
/* BSD's <mp.h> (FreeBSD libmp, over OpenSSL's BIGNUM) is not packaged for
 * Linux; these are its public names, declared as it declares them. */
typedef struct mp__bsd_mint {
    void *bn;
} MINT;
void mp_gcd(const MINT *, const MINT *, MINT *);
MINT *mp_itom(short);
void mp_madd(const MINT *, const MINT *, MINT *);
int mp_mcmp(const MINT *, const MINT *);
void mp_mdiv(const MINT *, const MINT *, MINT *, MINT *);
void mp_mfree(MINT *);
void mp_min(MINT *);
void mp_mout(const MINT *);
void mp_move(const MINT *, MINT *);
void mp_msqrt(const MINT *, MINT *, MINT *);
void mp_msub(const MINT *, const MINT *, MINT *);
char *mp_mtox(const MINT *);
void mp_mult(const MINT *, const MINT *, MINT *);
void mp_pow(const MINT *, const MINT *, const MINT *, MINT *);
void mp_rpow(const MINT *, short, MINT *);
void mp_sdiv(const MINT *, short, MINT *, short *);
MINT *mp_xtom(const char *);
#endif

static int gmp_ok(void)
{
    MP_INT a; /* GMP's old name for __mpz_struct, next to libmp's MP_I64 */
    mp_limb_t limb = 3;
    mp_size_t n = 1;
    mpz_init_set_ui(&a, (unsigned long)limb);
    mpz_mul_ui(&a, &a, 14);
    int ok = mpz_get_ui(&a) == 42 && n == 1;
    mpz_clear(&a);
    return ok;
}

static int tommath_ok(void)
{
#ifdef WITH_TOMMATH
    mp_int t;
    if (mp_init_i32(&t, 6) != MP_OKAY)
        return 0;
    int ok = mp_mul_d(&t, 7, &t) == MP_OKAY && mp_get_i32(&t) == 42;
    mp_clear(&t);
    return ok;
#else
    return 1;
#endif
}

static int libmp_ok(void)
{
    void *p = mp_shared_alloc(64);
    mp_val *v = mp_val_copy(MP_LIST(MP_I64(42), MP_FLOAT(2.5), MP_STR("x")));
    int64_t i = 0;
    int ok = p != NULL && v != NULL && mp_val_as_int(mp_val_item(v, 0), &i) == 0 && i == 42;
    mp_val_free(v);
    return ok && mp_shared_free(p) == 0;
}

int main(void)
{
#ifdef WITH_TOMMATH
    const char *other = "tommath";
#else
    const char *other = "BSD mp.h"; /* declared only: BSD's library is not linked */
#endif
    int ok = gmp_ok() && tommath_ok() && libmp_ok();
    printf("gmp, %s and libmp: %s\n", other, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
