/* crypto_test — known-answer vectors, AEAD tampering, Shamir, signer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"

static void hex_to(const char *hex, uint8_t *out, size_t len)
{
    assert_int_equal(nhid_hex_decode(hex, out, len), NHID_OK);
}

/* ---- hashes, HMAC, HKDF ----------------------------------------------------- */

static void test_sha256_vectors(void **state)
{
    (void)state;
    uint8_t out[32], want[32];

    /* FIPS 180-2 appendix B.1 ("abc") and the empty string. */
    nhid_sha256("abc", 3, out);
    hex_to("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
    assert_memory_equal(out, want, 32);
    nhid_sha256("", 0, out);
    hex_to("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
    assert_memory_equal(out, want, 32);
}

static void test_hmac_rfc4231_tc2(void **state)
{
    (void)state;
    uint8_t out[32], want[32];
    const char *data = "what do ya want for nothing?";

    nhid_hmac_sha256((const uint8_t *)"Jefe", 4, data, strlen(data), out);
    hex_to("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
    assert_memory_equal(out, want, 32);
}

static void test_hkdf_rfc5869_tc1(void **state)
{
    (void)state;
    uint8_t ikm[22], salt[13], info[10], okm[42], want[42];

    memset(ikm, 0x0b, sizeof(ikm));
    hex_to("000102030405060708090a0b0c", salt, sizeof(salt));
    hex_to("f0f1f2f3f4f5f6f7f8f9", info, sizeof(info));
    hex_to("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
           want, sizeof(want));
    assert_int_equal(nhid_hkdf_sha256(ikm, sizeof(ikm), salt, sizeof(salt), info, sizeof(info), okm,
                                      sizeof(okm)),
                     NHID_OK);
    assert_memory_equal(okm, want, sizeof(want));
    assert_int_equal(nhid_hkdf_sha256(ikm, sizeof(ikm), NULL, 0, NULL, 0, okm, 255 * 32 + 1),
                     NHID_ERR_INVALID);
}

/* ---- AEAD ------------------------------------------------------------------- */

static void test_aead_round_trip(void **state)
{
    (void)state;
    uint8_t key[32], *ct = NULL, *pt = NULL;
    size_t ctlen = 0, ptlen = 0;
    const char *msg = "the quick brown fox";
    const char *aad = "kv/data/a";

    assert_int_equal(nhid_random_bytes(key, sizeof(key)), NHID_OK);
    assert_int_equal(nhid_aead_seal(key, (const uint8_t *)aad, strlen(aad), (const uint8_t *)msg,
                                    strlen(msg), &ct, &ctlen),
                     NHID_OK);
    assert_int_equal(ctlen, strlen(msg) + NHID_AEAD_OVERHEAD);
    assert_null(memmem(ct, ctlen, msg, strlen(msg)));
    assert_int_equal(nhid_aead_open(key, (const uint8_t *)aad, strlen(aad), ct, ctlen, &pt, &ptlen),
                     NHID_OK);
    assert_int_equal(ptlen, strlen(msg));
    assert_memory_equal(pt, msg, ptlen);
    free(pt);
    free(ct);

    /* Empty plaintext and no AAD. */
    assert_int_equal(nhid_aead_seal(key, NULL, 0, NULL, 0, &ct, &ctlen), NHID_OK);
    assert_int_equal(ctlen, NHID_AEAD_OVERHEAD);
    assert_int_equal(nhid_aead_open(key, NULL, 0, ct, ctlen, &pt, &ptlen), NHID_OK);
    assert_int_equal(ptlen, 0);
    free(pt);
    free(ct);

    /* Two seals of one message differ (random nonce). */
    {
        uint8_t *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        assert_int_equal(nhid_aead_seal(key, NULL, 0, (const uint8_t *)msg, 5, &a, &al), NHID_OK);
        assert_int_equal(nhid_aead_seal(key, NULL, 0, (const uint8_t *)msg, 5, &b, &bl), NHID_OK);
        assert_memory_not_equal(a, b, NHID_GCM_NONCE_LEN);
        free(a);
        free(b);
    }
}

static void test_aead_tamper(void **state)
{
    (void)state;
    uint8_t key[32], key2[32], *ct = NULL, *pt = (uint8_t *)"untouched";
    size_t ctlen = 0, ptlen = 99;
    const char *msg = "attack at dawn";
    const uint8_t aad[] = "secret/a";
    /* Offsets: a nonce byte, a ciphertext byte, a tag byte. */
    size_t offsets[3];

    assert_int_equal(nhid_random_bytes(key, sizeof(key)), NHID_OK);
    memcpy(key2, key, sizeof(key));
    key2[0] ^= 1;
    assert_int_equal(
        nhid_aead_seal(key, aad, sizeof(aad) - 1, (const uint8_t *)msg, strlen(msg), &ct, &ctlen),
        NHID_OK);
    offsets[0] = 3;
    offsets[1] = NHID_GCM_NONCE_LEN + 2;
    offsets[2] = ctlen - 1;
    for (size_t i = 0; i < 3; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            ct[offsets[i]] ^= (uint8_t)(1u << bit);
            assert_int_equal(nhid_aead_open(key, aad, sizeof(aad) - 1, ct, ctlen, &pt, &ptlen),
                             NHID_ERR_TAMPERED);
            ct[offsets[i]] ^= (uint8_t)(1u << bit);
        }
    }
    /* Out-parameters untouched on failure. */
    assert_string_equal((const char *)pt, "untouched");
    assert_int_equal(ptlen, 99);
    /* Wrong AAD, missing AAD, wrong key, truncated input. */
    assert_int_equal(nhid_aead_open(key, (const uint8_t *)"secret/b", 8, ct, ctlen, &pt, &ptlen),
                     NHID_ERR_TAMPERED);
    assert_int_equal(nhid_aead_open(key, NULL, 0, ct, ctlen, &pt, &ptlen), NHID_ERR_TAMPERED);
    assert_int_equal(nhid_aead_open(key2, aad, sizeof(aad) - 1, ct, ctlen, &pt, &ptlen),
                     NHID_ERR_TAMPERED);
    assert_int_equal(nhid_aead_open(key, aad, sizeof(aad) - 1, ct, ctlen - 1, &pt, &ptlen),
                     NHID_ERR_TAMPERED);
    assert_int_equal(nhid_aead_open(key, aad, sizeof(aad) - 1, ct, 10, &pt, &ptlen),
                     NHID_ERR_TAMPERED);
    /* The buffer variant wipes what it decrypted before returning the error. */
    {
        uint8_t buf[64];
        ct[ctlen - 1] ^= 0x80;
        memset(buf, 0xee, sizeof(buf));
        assert_int_equal(nhid_aead_open_to(key, aad, sizeof(aad) - 1, ct, ctlen, buf),
                         NHID_ERR_TAMPERED);
        assert_null(memmem(buf, sizeof(buf), "attack", 6));
    }
    free(ct);
}

/* ---- base64 ----------------------------------------------------------------- */

static void test_base64_rfc4648_vectors(void **state)
{
    (void)state;
    /* RFC 4648 §10. */
    static const char *const vec[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char *enc = NULL;
        uint8_t *dec = NULL;
        size_t declen = 0;
        const char *plain = vec[i][0], *b64 = vec[i][1];

        assert_int_equal(nhid_base64_encode((const uint8_t *)plain, strlen(plain), &enc), NHID_OK);
        assert_string_equal(enc, b64);
        free(enc);
        assert_int_equal(nhid_base64_decode(b64, strlen(b64), &dec, &declen), NHID_OK);
        assert_int_equal(declen, strlen(plain));
        assert_memory_equal(dec, plain, declen);
        free(dec);
        /* Without padding too. */
        {
            size_t n = strlen(b64);
            while (n > 0 && b64[n - 1] == '=')
                n--;
            assert_int_equal(nhid_base64_decode(b64, n, &dec, &declen), NHID_OK);
            assert_int_equal(declen, strlen(plain));
            assert_memory_equal(dec, plain, declen);
            free(dec);
        }
        /* base64url without padding. */
        assert_int_equal(nhid_base64url_encode((const uint8_t *)plain, strlen(plain), &enc),
                         NHID_OK);
        assert_null(strchr(enc, '='));
        free(enc);
    }
}

static void test_base64_alphabets_and_errors(void **state)
{
    (void)state;
    const uint8_t raw[] = {0xfb, 0xff, 0xbf};
    char *enc = NULL;
    uint8_t *dec = NULL;
    size_t declen = 0;
    static const char *const bad[] = {
        "Z",        /* impossible length */
        "Zg=",      /* padded but not a multiple of 4 */
        "Zh==",     /* non-zero unused bits */
        "Zm9v!",    /* not base64 */
        "Zm 9v",    /* whitespace */
        "Zg==Zg==", /* padding in the middle */
        "Z===",
    };

    assert_int_equal(nhid_base64_encode(raw, sizeof(raw), &enc), NHID_OK);
    assert_string_equal(enc, "+/+/");
    free(enc);
    assert_int_equal(nhid_base64url_encode(raw, sizeof(raw), &enc), NHID_OK);
    assert_string_equal(enc, "-_-_");
    free(enc);
    assert_int_equal(nhid_base64_decode("-_-_", 4, &dec, &declen), NHID_OK);
    assert_int_equal(declen, 3);
    assert_memory_equal(dec, raw, 3);
    free(dec);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dec = NULL;
        assert_int_equal(nhid_base64_decode(bad[i], strlen(bad[i]), &dec, &declen),
                         NHID_ERR_INVALID);
        assert_null(dec);
    }
}

/* ---- tokens and UUIDs --------------------------------------------------------- */

static void test_uuid_and_token(void **state)
{
    (void)state;
    char a[37], b[37], tok[NHID_TOKEN_MAX];

    assert_int_equal(nhid_uuid(a), NHID_OK);
    assert_int_equal(nhid_uuid(b), NHID_OK);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    assert_int_equal(a[8], '-');
    assert_int_equal(a[13], '-');
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));

    assert_int_equal(nhid_random_token("nhs.", tok), NHID_OK);
    assert_int_equal(strlen(tok), 4 + 43);
    assert_true(strncmp(tok, "nhs.", 4) == 0);
    assert_null(strpbrk(tok + 4, "+/="));
    assert_int_equal(nhid_random_token(NULL, tok), NHID_OK);
    assert_int_equal(strlen(tok), 43);
    assert_int_equal(nhid_random_token("a-prefix-that-is-far-too-long", tok), NHID_ERR_TOO_LARGE);
}

/* ---- Shamir ----------------------------------------------------------------- */

/* An independent GF(2^8) multiply with a chosen reduction polynomial. */
static uint8_t gf_mul(uint8_t a, uint8_t b, unsigned poly)
{
    unsigned r = 0, x = a;
    while (b) {
        if (b & 1)
            r ^= x;
        x <<= 1;
        if (x & 0x100)
            x ^= poly;
        b >>= 1;
    }
    return (uint8_t)r;
}

static uint8_t gf_inv(uint8_t a, unsigned poly)
{
    for (unsigned c = 1; c < 256; c++)
        if (gf_mul(a, (uint8_t)c, poly) == 1)
            return (uint8_t)c;
    return 0;
}

/* Lagrange interpolation at x = 0 over GF(2^8) mod poly (the oracle). */
static void oracle_combine(const uint8_t *const *shares, unsigned k, size_t len, unsigned poly,
                           uint8_t *out)
{
    memset(out, 0, len);
    for (unsigned i = 0; i < k; i++) {
        uint8_t li = 1;
        for (unsigned j = 0; j < k; j++) {
            if (i == j)
                continue;
            /* l_i(0) = prod x_j / (x_i - x_j); subtraction is XOR. */
            li = gf_mul(li, gf_mul(shares[j][0], gf_inv(shares[i][0] ^ shares[j][0], poly), poly),
                        poly);
        }
        for (size_t b = 0; b < len; b++)
            out[b] ^= gf_mul(li, shares[i][1 + b], poly);
    }
}

static void test_shamir_all_subsets(void **state)
{
    (void)state;
    uint8_t secret[32], got[32], **shares = NULL;
    unsigned subsets3 = 0;

    assert_int_equal(nhid_random_bytes(secret, sizeof(secret)), NHID_OK);
    assert_int_equal(nhid_shamir_split(secret, sizeof(secret), 5, 3, &shares), NHID_OK);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(shares[i][0], i + 1);
    /* Every subset of size >= 3 recovers the secret; size 2 does not. */
    for (unsigned mask = 1; mask < 32; mask++) {
        const uint8_t *pick[5];
        unsigned k = 0;
        for (unsigned i = 0; i < 5; i++)
            if (mask & (1u << i))
                pick[k++] = shares[i];
        if (k < 2)
            continue;
        assert_int_equal(nhid_shamir_combine(pick, k, sizeof(secret), got), NHID_OK);
        if (k >= 3)
            assert_memory_equal(got, secret, sizeof(secret));
        else
            assert_memory_not_equal(got, secret, sizeof(secret));
        subsets3 += k == 3;
    }
    assert_int_equal(subsets3, 10);
    /* Order of shares does not matter. */
    {
        const uint8_t *pick[3] = {shares[4], shares[0], shares[2]};
        assert_int_equal(nhid_shamir_combine(pick, 3, sizeof(secret), got), NHID_OK);
        assert_memory_equal(got, secret, sizeof(secret));
    }
    /* Duplicate x (even with a different share following) and zero x are refused. */
    {
        const uint8_t *dup[3] = {shares[0], shares[1], shares[0]};
        uint8_t zero[33] = {0};
        const uint8_t *withzero[3] = {shares[0], shares[1], zero};
        assert_int_equal(nhid_shamir_combine(dup, 3, sizeof(secret), got), NHID_ERR_INVALID);
        assert_int_equal(nhid_shamir_combine(withzero, 3, sizeof(secret), got), NHID_ERR_INVALID);
    }
    nhid_shamir_free_shares(shares, 5, sizeof(secret) + 1);
}

static void test_shamir_params(void **state)
{
    (void)state;
    uint8_t secret[16] = "sixteen byte key", got[16], **shares = (uint8_t **)0x1;

    assert_int_equal(nhid_shamir_split(secret, 16, 3, 4, &shares), NHID_ERR_INVALID);
    assert_int_equal(nhid_shamir_split(secret, 16, 3, 0, &shares), NHID_ERR_INVALID);
    assert_int_equal(nhid_shamir_split(secret, 16, 256, 2, &shares), NHID_ERR_INVALID);
    assert_int_equal(nhid_shamir_split(secret, 0, 3, 2, &shares), NHID_ERR_INVALID);
    assert_ptr_equal(shares, (uint8_t **)0x1);

    /* n = 1: the x = 1 share of a degree-0 polynomial is 0x01 || secret. */
    assert_int_equal(nhid_shamir_split(secret, 16, 1, 1, &shares), NHID_OK);
    assert_int_equal(shares[0][0], 1);
    assert_memory_equal(shares[0] + 1, secret, 16);
    assert_int_equal(nhid_shamir_combine((const uint8_t *const *)shares, 1, 16, got), NHID_OK);
    assert_memory_equal(got, secret, 16);
    nhid_shamir_free_shares(shares, 1, 17);

    /* t = 1 with n = 3: any single share is the secret. */
    assert_int_equal(nhid_shamir_split(secret, 16, 3, 1, &shares), NHID_OK);
    for (unsigned i = 0; i < 3; i++) {
        const uint8_t *one[1] = {shares[i]};
        assert_int_equal(nhid_shamir_combine(one, 1, 16, got), NHID_OK);
        assert_memory_equal(got, secret, 16);
    }
    nhid_shamir_free_shares(shares, 3, 17);

    /* t = n = 255, the most shares. */
    assert_int_equal(nhid_shamir_split(secret, 16, 255, 255, &shares), NHID_OK);
    assert_int_equal(nhid_shamir_combine((const uint8_t *const *)shares, 255, 16, got), NHID_OK);
    assert_memory_equal(got, secret, 16);
    nhid_shamir_free_shares(shares, 255, 17);
}

/*
 * libgfshare's field: shares from a t = 2 and a t = 3 split interpolate to
 * the secret under the polynomial 0x11d and NOT under AES's 0x11b; and
 * hand-computed shares of a fixed polynomial over 0x11d combine correctly
 * (a deterministic vector independent of the library's randomness).
 */
static void test_shamir_field_polynomial(void **state)
{
    (void)state;
    uint8_t secret[32], got[32], **shares = NULL;

    assert_int_equal(nhid_random_bytes(secret, sizeof(secret)), NHID_OK);
    for (unsigned t = 2; t <= 3; t++) {
        const uint8_t *pick[3];
        assert_int_equal(nhid_shamir_split(secret, sizeof(secret), 5, t, &shares), NHID_OK);
        pick[0] = shares[1];
        pick[1] = shares[3];
        pick[2] = shares[4];
        oracle_combine(pick, t, sizeof(secret), 0x11d, got);
        assert_memory_equal(got, secret, sizeof(secret));
        oracle_combine(pick, t, sizeof(secret), 0x11b, got);
        assert_memory_not_equal(got, secret, sizeof(secret));
        nhid_shamir_free_shares(shares, 5, sizeof(secret) + 1);
    }

    /* f(x) = 0x42 + 0x17 x + 0xa5 x^2 over GF(2^8)/0x11d, evaluated at x = 3, 7, 200. */
    {
        uint8_t s[3][2];
        const uint8_t xs[3] = {3, 7, 200};
        const uint8_t *pick[3] = {s[0], s[1], s[2]};
        uint8_t out = 0;
        for (int i = 0; i < 3; i++) {
            uint8_t x = xs[i];
            s[i][0] = x;
            s[i][1] =
                (uint8_t)(0x42 ^ gf_mul(0x17, x, 0x11d) ^ gf_mul(0xa5, gf_mul(x, x, 0x11d), 0x11d));
        }
        assert_int_equal(nhid_shamir_combine(pick, 3, 1, &out), NHID_OK);
        assert_int_equal(out, 0x42);
    }
}

/* ---- signer ------------------------------------------------------------------- */

static void verify_sig(EVP_PKEY *pub, enum nhid_key_type t, const uint8_t *msg, size_t len,
                       const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    const EVP_MD *md = t == NHID_KEY_ED25519   ? NULL
                       : t == NHID_KEY_EC_P384 ? EVP_sha384()
                                               : EVP_sha256();
    assert_non_null(m);
    assert_int_equal(EVP_DigestVerifyInit(m, NULL, md, NULL, pub), 1);
    assert_int_equal(EVP_DigestVerify(m, sig, siglen, msg, len), 1);
    EVP_MD_CTX_free(m);
}

static void test_signer_types(void **state)
{
    (void)state;
    static const struct {
        enum nhid_key_type t;
        int sig_nid;
    } types[] = {
        {NHID_KEY_EC_P256, NID_ecdsa_with_SHA256},
        {NHID_KEY_EC_P384, NID_ecdsa_with_SHA384},
        {NHID_KEY_ED25519, NID_ED25519},
        {NHID_KEY_RSA_2048, NID_sha256WithRSAEncryption},
        {NHID_KEY_RSA_3072, NID_sha256WithRSAEncryption},
        {NHID_KEY_RSA_4096, NID_sha256WithRSAEncryption},
    };
    const uint8_t msg[] = "sign me";

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct nhid_signer *s = NULL, *s2 = NULL;
        uint8_t *sig = NULL;
        size_t siglen = 0;
        char *pem = NULL;
        X509 *x = NULL;
        X509_REQ *req = NULL;
        X509_CRL *crl = NULL;
        enum nhid_key_type t = types[i].t;

        assert_int_equal(nhid_signer_generate(t, &s), NHID_OK);
        assert_int_equal(nhid_signer_type(s), t);
        assert_int_equal(nhid_signer_sign(s, msg, sizeof(msg), &sig, &siglen), NHID_OK);
        verify_sig(nhid_signer_public_key(s), t, msg, sizeof(msg), sig, siglen);
        /* A modified message does not verify. */
        {
            EVP_MD_CTX *m = EVP_MD_CTX_new();
            const EVP_MD *md = t == NHID_KEY_ED25519   ? NULL
                               : t == NHID_KEY_EC_P384 ? EVP_sha384()
                                                       : EVP_sha256();
            assert_int_equal(EVP_DigestVerifyInit(m, NULL, md, NULL, nhid_signer_public_key(s)), 1);
            assert_int_not_equal(EVP_DigestVerify(m, sig, siglen, (const uint8_t *)"sign mE", 8),
                                 1);
            EVP_MD_CTX_free(m);
        }
        free(sig);

        /* PEM round trip: the re-imported key signs for the same public key. */
        assert_int_equal(nhid_signer_export_pem(s, &pem), NHID_OK);
        assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
        assert_int_equal(nhid_signer_from_pem(pem, strlen(pem), &s2), NHID_OK);
        assert_int_equal(nhid_signer_type(s2), t);
        assert_int_equal(EVP_PKEY_eq(nhid_signer_public_key(s), nhid_signer_public_key(s2)), 1);
        assert_int_equal(nhid_signer_sign(s2, msg, sizeof(msg), &sig, &siglen), NHID_OK);
        verify_sig(nhid_signer_public_key(s), t, msg, sizeof(msg), sig, siglen);
        free(sig);
        nhid_free_secret_str(pem);

        /* The public key handed out carries no private half. */
        {
            BIO *bio = BIO_new(BIO_s_mem());
            assert_int_equal(
                PEM_write_bio_PrivateKey(bio, nhid_signer_public_key(s), NULL, NULL, 0, NULL, NULL),
                0);
            BIO_free(bio);
        }

        /* X.509 objects: the right signature algorithm, and they verify. */
        x = X509_new();
        assert_non_null(x);
        assert_int_equal(X509_set_version(x, 2), 1);
        assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *)"test", -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(x));
        assert_int_equal(X509_set_pubkey(x, nhid_signer_public_key(s)), 1);
        assert_int_equal(nhid_signer_sign_x509(s, x), NHID_OK);
        assert_int_equal(X509_get_signature_nid(x), types[i].sig_nid);
        assert_int_equal(X509_verify(x, nhid_signer_public_key(s)), 1);
        X509_free(x);

        req = X509_REQ_new();
        assert_int_equal(X509_REQ_set_pubkey(req, nhid_signer_public_key(s)), 1);
        assert_int_equal(nhid_signer_sign_req(s, req), NHID_OK);
        assert_int_equal(X509_REQ_verify(req, nhid_signer_public_key(s)), 1);
        X509_REQ_free(req);

        crl = X509_CRL_new();
        assert_int_equal(X509_CRL_set_version(crl, 1), 1);
        assert_int_equal(nhid_signer_sign_crl(s, crl), NHID_OK);
        assert_int_equal(X509_CRL_verify(crl, nhid_signer_public_key(s)), 1);
        X509_CRL_free(crl);

        nhid_signer_free(s2);
        nhid_signer_free(s);
    }
    nhid_signer_free(NULL);
}

static void test_signer_pem_errors(void **state)
{
    (void)state;
    struct nhid_signer *s = NULL, *out = (struct nhid_signer *)0x1;
    const char *junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    BIO *bio;
    BUF_MEM *mem = NULL;

    assert_int_equal(nhid_signer_from_pem(junk, strlen(junk), &out), NHID_ERR_INVALID);
    assert_int_equal(nhid_signer_from_pem("hello", 5, &out), NHID_ERR_INVALID);
    assert_ptr_equal(out, (struct nhid_signer *)0x1);

    /* An encrypted PEM is refused without prompting on a terminal. */
    assert_int_equal(nhid_signer_generate(NHID_KEY_EC_P256, &s), NHID_OK);
    bio = BIO_new(BIO_s_mem());
    {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, k, EVP_aes_256_cbc(), NULL, 0, NULL,
                                                       (void *)"passphrase"),
                         1);
        EVP_PKEY_free(k);
    }
    BIO_get_mem_ptr(bio, &mem);
    assert_int_equal(nhid_signer_from_pem(mem->data, mem->length, &out), NHID_ERR_INVALID);
    BIO_free(bio);

    /* A traditional ("BEGIN EC PRIVATE KEY") PEM loads. */
    bio = BIO_new(BIO_s_mem());
    {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, k, NULL, NULL, 0, NULL, NULL),
                         1);
        EVP_PKEY_free(k);
    }
    BIO_get_mem_ptr(bio, &mem);
    assert_non_null(strstr(mem->data, "BEGIN EC PRIVATE KEY"));
    assert_int_equal(nhid_signer_from_pem(mem->data, mem->length, &out), NHID_OK);
    assert_int_equal(nhid_signer_type(out), NHID_KEY_EC_P384);
    nhid_signer_free(out);
    BIO_free(bio);

    /* An unsupported curve is refused. */
    bio = BIO_new(BIO_s_mem());
    {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
        assert_non_null(k);
        assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
        EVP_PKEY_free(k);
    }
    BIO_get_mem_ptr(bio, &mem);
    out = (struct nhid_signer *)0x1;
    assert_int_equal(nhid_signer_from_pem(mem->data, mem->length, &out), NHID_ERR_UNSUPPORTED);
    BIO_free(bio);
    nhid_signer_free(s);
}

static void test_key_type_parse(void **state)
{
    (void)state;
    enum nhid_key_type t;

    assert_int_equal(nhid_key_type_parse("ec", 0, &t), NHID_OK);
    assert_int_equal(t, NHID_KEY_EC_P256);
    assert_int_equal(nhid_key_type_parse("ec", 384, &t), NHID_OK);
    assert_int_equal(t, NHID_KEY_EC_P384);
    assert_int_equal(nhid_key_type_parse("p256", 0, &t), NHID_OK);
    assert_int_equal(t, NHID_KEY_EC_P256);
    assert_int_equal(nhid_key_type_parse("ec-p384", 0, &t), NHID_OK);
    assert_int_equal(t, NHID_KEY_EC_P384);
    assert_int_equal(nhid_key_type_parse("Ed25519", 0, &t), NHID_OK);
    assert_int_equal(t, NHID_KEY_ED25519);
    assert_int_equal(nhid_key_type_parse("rsa", 0, &t), NHID_OK);
    assert_int_equal(t, NHID_KEY_RSA_2048);
    assert_int_equal(nhid_key_type_parse("rsa", 4096, &t), NHID_OK);
    assert_int_equal(t, NHID_KEY_RSA_4096);
    assert_int_equal(nhid_key_type_parse("rsa-3072", 0, &t), NHID_OK);
    assert_int_equal(t, NHID_KEY_RSA_3072);
    assert_string_equal(nhid_key_type_name(NHID_KEY_RSA_3072), "rsa-3072");
    assert_string_equal(nhid_key_type_name(NHID_KEY_EC_P256), "ec-p256");
    /* Contradictions and unknowns. */
    assert_int_equal(nhid_key_type_parse("ec", 521, &t), NHID_ERR_INVALID);
    assert_int_equal(nhid_key_type_parse("p256", 384, &t), NHID_ERR_INVALID);
    assert_int_equal(nhid_key_type_parse("rsa", 1024, &t), NHID_ERR_UNSUPPORTED);
    assert_int_equal(nhid_key_type_parse("dsa", 0, &t), NHID_ERR_UNSUPPORTED);
    assert_int_equal(nhid_key_type_parse(NULL, 0, &t), NHID_ERR_INVALID);
}

/* The per-thread random pools: no repeats, and a fork never shares output with its parent. */
static void test_random_pools(void **state)
{
    (void)state;
    enum { N = 600 };
    static uint8_t draws[N][16];
    for (int i = 0; i < N; i++)
        assert_int_equal(i % 2 ? nhid_random_public(draws[i], 16) : nhid_random_bytes(draws[i], 16),
                         NHID_OK);
    for (int i = 0; i < N; i++)
        for (int k = i + 1; k < N; k++)
            assert_memory_not_equal(draws[i], draws[k], 16);
    /* Partly used pools, then a fork: the child's next draws must not be the parent's. */
    for (int pub = 0; pub < 2; pub++) {
        int fd[2];
        assert_int_equal(pipe(fd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            uint8_t c[16];
            int rc = pub ? nhid_random_public(c, sizeof(c)) : nhid_random_bytes(c, sizeof(c));
            _exit(rc == NHID_OK && write(fd[1], c, sizeof(c)) == (ssize_t)sizeof(c) ? 0 : 1);
        }
        uint8_t mine[16], child[16];
        assert_int_equal(pub ? nhid_random_public(mine, 16) : nhid_random_bytes(mine, 16), NHID_OK);
        assert_int_equal(read(fd[0], child, sizeof(child)), (ssize_t)sizeof(child));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(status, 0);
        assert_memory_not_equal(mine, child, 16);
        close(fd[0]);
        close(fd[1]);
    }
    /* Draws larger than the pool's limit still work. */
    uint8_t big[4096];
    assert_int_equal(nhid_random_bytes(big, sizeof(big)), NHID_OK);
}

/* Prepared per-thread HMAC contexts give the same hashes as a fresh HMAC, across evictions. */
static void test_secret_hash_contexts(void **state)
{
    (void)state;
    uint8_t keys[7][32];
    for (int k = 0; k < 7; k++)
        memset(keys[k], 0x11 * (k + 1), 32);
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 7; k++) {
            char secret[32], got[65], want_hex[65];
            uint8_t want[32];
            snprintf(secret, sizeof(secret), "nhs.secret-%d-%d", k, round);
            nhid_secret_hash_hex(keys[k], secret, got);
            nhid_hmac_sha256(keys[k], 32, secret, strlen(secret), want);
            nhid_hex_encode(want, sizeof(want), want_hex);
            assert_string_equal(got, want_hex);
            /* The same key again right away (a reused context). */
            nhid_secret_hash_hex(keys[k], "x", got);
            nhid_hmac_sha256(keys[k], 32, "x", 1, want);
            nhid_hex_encode(want, sizeof(want), want_hex);
            assert_string_equal(got, want_hex);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_rfc4231_tc2),
        cmocka_unit_test(test_hkdf_rfc5869_tc1),
        cmocka_unit_test(test_aead_round_trip),
        cmocka_unit_test(test_aead_tamper),
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_base64_alphabets_and_errors),
        cmocka_unit_test(test_uuid_and_token),
        cmocka_unit_test(test_random_pools),
        cmocka_unit_test(test_secret_hash_contexts),
        cmocka_unit_test(test_shamir_all_subsets),
        cmocka_unit_test(test_shamir_params),
        cmocka_unit_test(test_shamir_field_polynomial),
        cmocka_unit_test(test_key_type_parse),
        cmocka_unit_test(test_signer_types),
        cmocka_unit_test(test_signer_pem_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
