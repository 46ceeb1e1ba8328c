/*
 * digest.c: MD5 (RFC 1321), SHA-256 and SHA-384 (FIPS 180-4) and HMAC
 * (RFC 2104), written for the authkey challenge of multiprocessing's
 * connections.  libmp depends on no crypto library; these are the only
 * digests that CPython's challenge uses in practice (HMAC-MD5 for
 * CPython <= 3.11, HMAC-SHA256 for 3.12+; SHA-384 is one of 3.12's
 * allowed alternatives and costs only the SHA-512 core).
 */
#include "internal/conn.h"

#include <string.h>

static const uint32_t md5_k[64] = {
    0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu, 0xf57c0fafu, 0x4787c62au, 0xa8304613u,
    0xfd469501u, 0x698098d8u, 0x8b44f7afu, 0xffff5bb1u, 0x895cd7beu, 0x6b901122u, 0xfd987193u,
    0xa679438eu, 0x49b40821u, 0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau, 0xd62f105du,
    0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u, 0x21e1cde6u, 0xc33707d6u, 0xf4d50d87u, 0x455a14edu,
    0xa9e3e905u, 0xfcefa3f8u, 0x676f02d9u, 0x8d2a4c8au, 0xfffa3942u, 0x8771f681u, 0x6d9d6122u,
    0xfde5380cu, 0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u, 0x289b7ec6u, 0xeaa127fau,
    0xd4ef3085u, 0x04881d05u, 0xd9d4d039u, 0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u, 0xf4292244u,
    0x432aff97u, 0xab9423a7u, 0xfc93a039u, 0x655b59c3u, 0x8f0ccc92u, 0xffeff47du, 0x85845dd1u,
    0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u, 0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu,
    0xeb86d391u,
};

static const uint32_t sha256_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u,
};

static const uint32_t sha256_h0[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

static const uint64_t sha512_k[80] = {
    0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full, 0xe9b5dba58189dbbcull,
    0x3956c25bf348b538ull, 0x59f111f1b605d019ull, 0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull,
    0xd807aa98a3030242ull, 0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
    0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull, 0xc19bf174cf692694ull,
    0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull, 0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull,
    0x2de92c6f592b0275ull, 0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
    0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full, 0xbf597fc7beef0ee4ull,
    0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull, 0x06ca6351e003826full, 0x142929670a0e6e70ull,
    0x27b70a8546d22ffcull, 0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
    0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull, 0x92722c851482353bull,
    0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull, 0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull,
    0xd192e819d6ef5218ull, 0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
    0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull, 0x34b0bcb5e19b48a8ull,
    0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull, 0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull,
    0x748f82ee5defb2fcull, 0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
    0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull, 0xc67178f2e372532bull,
    0xca273eceea26619cull, 0xd186b8c721c0c207ull, 0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull,
    0x06f067aa72176fbaull, 0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
    0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull, 0x431d67c49c100d4cull,
    0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull, 0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull,
};

static const uint64_t sha384_h0[8] = {
    0xcbbb9d5dc1059ed8ull, 0x629a292a367cd507ull, 0x9159015a3070dd17ull, 0x152fecd8f70e5939ull,
    0x67332667ffc00b31ull, 0x8eb44a8768581511ull, 0xdb0c2e0d64f98fa7ull, 0x47b5481dbefa4fa4ull,
};

static const unsigned char md5_shift[16] = {
    7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21,
};

static inline uint32_t rol32(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static inline uint32_t ror32(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint64_t ror64(uint64_t x, unsigned n)
{
    return (x >> n) | (x << (64 - n));
}

static inline uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint64_t load_be64(const unsigned char *p)
{
    return (uint64_t)load_be32(p) << 32 | load_be32(p + 4);
}

static inline void store_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void store_be32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static inline void store_be64(unsigned char *p, uint64_t v)
{
    store_be32(p, (uint32_t)(v >> 32));
    store_be32(p + 4, (uint32_t)v);
}

/* ---- MD5 ---------------------------------------------------------------- */

static void md5_init(mp__hash *h)
{
    static const uint32_t iv[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u};
    memcpy(h->state.w32, iv, sizeof iv);
}

static void md5_compress(mp__hash *h, const unsigned char *block)
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++)
        m[i] = load_le32(block + 4 * i);
    uint32_t a = h->state.w32[0], b = h->state.w32[1];
    uint32_t c = h->state.w32[2], d = h->state.w32[3];
    for (unsigned i = 0; i < 64; i++) {
        uint32_t f;
        unsigned g;
        switch (i / 16) {
        case 0:
            f = (b & c) | (~b & d);
            g = i;
            break;
        case 1:
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
            break;
        case 2:
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
            break;
        default:
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
            break;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rol32(a + f + md5_k[i] + m[g], md5_shift[(i / 16) * 4 + i % 4]);
        a = t;
    }
    h->state.w32[0] += a;
    h->state.w32[1] += b;
    h->state.w32[2] += c;
    h->state.w32[3] += d;
}

static void md5_finish(mp__hash *h, unsigned char *out)
{
    for (int i = 0; i < 4; i++)
        store_le32(out + 4 * i, h->state.w32[i]);
}

/* ---- SHA-256 ------------------------------------------------------------ */

static void sha256_init(mp__hash *h)
{
    memcpy(h->state.w32, sha256_h0, sizeof sha256_h0);
}

static void sha256_compress(mp__hash *h, const unsigned char *block)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(block + 4 * i);
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t v[8];
    memcpy(v, h->state.w32, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ror32(v[4], 6) ^ ror32(v[4], 11) ^ ror32(v[4], 25);
        uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
        uint32_t t1 = v[7] + S1 + ch + sha256_k[i] + w[i];
        uint32_t S0 = ror32(v[0], 2) ^ ror32(v[0], 13) ^ ror32(v[0], 22);
        uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
        uint32_t t2 = S0 + maj;
        memmove(v + 1, v, 7 * sizeof v[0]);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        h->state.w32[i] += v[i];
}

static void sha256_finish(mp__hash *h, unsigned char *out)
{
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, h->state.w32[i]);
}

/* ---- SHA-384 (the SHA-512 core with other initial values, truncated) --- */

static void sha384_init(mp__hash *h)
{
    memcpy(h->state.w64, sha384_h0, sizeof sha384_h0);
}

static void sha512_compress(mp__hash *h, const unsigned char *block)
{
    uint64_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = load_be64(block + 8 * i);
    for (int i = 16; i < 80; i++) {
        uint64_t s0 = ror64(w[i - 15], 1) ^ ror64(w[i - 15], 8) ^ (w[i - 15] >> 7);
        uint64_t s1 = ror64(w[i - 2], 19) ^ ror64(w[i - 2], 61) ^ (w[i - 2] >> 6);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint64_t v[8];
    memcpy(v, h->state.w64, sizeof v);
    for (int i = 0; i < 80; i++) {
        uint64_t S1 = ror64(v[4], 14) ^ ror64(v[4], 18) ^ ror64(v[4], 41);
        uint64_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
        uint64_t t1 = v[7] + S1 + ch + sha512_k[i] + w[i];
        uint64_t S0 = ror64(v[0], 28) ^ ror64(v[0], 34) ^ ror64(v[0], 39);
        uint64_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
        uint64_t t2 = S0 + maj;
        memmove(v + 1, v, 7 * sizeof v[0]);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        h->state.w64[i] += v[i];
}

static void sha384_finish(mp__hash *h, unsigned char *out)
{
    for (int i = 0; i < 6; i++)
        store_be64(out + 8 * i, h->state.w64[i]);
}

const mp__hash_alg mp__md5 = {"md5", 16, 64, md5_init, md5_compress, md5_finish};
const mp__hash_alg mp__sha256 = {"sha256",        32,           64, sha256_init,
                                 sha256_compress, sha256_finish};
const mp__hash_alg mp__sha384 = {"sha384",        48,           128, sha384_init,
                                 sha512_compress, sha384_finish};

const mp__hash_alg *mp__hash_find(const char *name, size_t len)
{
    static const mp__hash_alg *const all[] = {&mp__md5, &mp__sha256, &mp__sha384};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strlen(all[i]->name) == len && memcmp(all[i]->name, name, len) == 0)
            return all[i];
    return NULL;
}

/* ---- the generic Merkle-Damgard driver ---------------------------------- */

void mp__hash_init(mp__hash *h, const mp__hash_alg *alg)
{
    memset(h, 0, sizeof *h);
    h->alg = alg;
    alg->init(h);
}

void mp__hash_update(mp__hash *h, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t bl = h->alg->block_len;
    h->bytes += len;
    if (h->used > 0) {
        size_t take = bl - h->used < len ? bl - h->used : len;
        memcpy(h->buf + h->used, p, take);
        h->used += take;
        p += take;
        len -= take;
        if (h->used < bl)
            return;
        h->alg->compress(h, h->buf);
        h->used = 0;
    }
    for (; len >= bl; p += bl, len -= bl)
        h->alg->compress(h, p);
    memcpy(h->buf, p, len);
    h->used = len;
}

void mp__hash_final(mp__hash *h, unsigned char *out)
{
    /* MD5 stores the bit length little-endian in 8 bytes; the SHA-2 family
     * big-endian in 8 (64-byte blocks) or 16 (128-byte blocks) bytes. */
    size_t bl = h->alg->block_len;
    size_t len_bytes = bl == 128 ? 16 : 8;
    uint64_t bits = h->bytes << 3;
    h->buf[h->used++] = 0x80;
    if (h->used > bl - len_bytes) {
        memset(h->buf + h->used, 0, bl - h->used);
        h->alg->compress(h, h->buf);
        h->used = 0;
    }
    memset(h->buf + h->used, 0, bl - h->used);
    if (h->alg == &mp__md5) {
        store_le32(h->buf + bl - 8, (uint32_t)bits);
        store_le32(h->buf + bl - 4, (uint32_t)(bits >> 32));
    } else {
        if (len_bytes == 16)
            store_be64(h->buf + bl - 16, h->bytes >> 61);
        store_be64(h->buf + bl - 8, bits);
    }
    h->alg->compress(h, h->buf);
    h->alg->finish(h, out);
}

/* ---- HMAC (RFC 2104) ----------------------------------------------------- */

void mp__hmac(const mp__hash_alg *alg, const void *key, size_t key_len, const void *msg,
              size_t msg_len, unsigned char *out)
{
    unsigned char k[MP__HASH_MAX_BLOCK] = {0};
    unsigned char pad[MP__HASH_MAX_BLOCK];
    unsigned char inner[MP__HASH_MAX_DIGEST];
    mp__hash h;
    size_t bl = alg->block_len;

    if (key_len > bl) {
        mp__hash_init(&h, alg);
        mp__hash_update(&h, key, key_len);
        mp__hash_final(&h, k);
    } else if (key_len > 0) {
        memcpy(k, key, key_len);
    }
    for (size_t i = 0; i < bl; i++)
        pad[i] = k[i] ^ 0x36;
    mp__hash_init(&h, alg);
    mp__hash_update(&h, pad, bl);
    mp__hash_update(&h, msg, msg_len);
    mp__hash_final(&h, inner);
    for (size_t i = 0; i < bl; i++)
        pad[i] = k[i] ^ 0x5c;
    mp__hash_init(&h, alg);
    mp__hash_update(&h, pad, bl);
    mp__hash_update(&h, inner, alg->digest_len);
    mp__hash_final(&h, out);
}

bool mp__bytes_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}
