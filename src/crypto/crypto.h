/*
 * crypto — every cryptographic primitive nhid uses, on OpenSSL 3:
 * randomness, hashes, HMAC, AES-256-GCM, encodings, Shamir secret
 * sharing (libgfshare) and the signer interface that keeps private keys
 * behind a narrow API (STYLE.md: keys can later move to another process
 * or an HSM without touching callers).
 */
#ifndef NHID_CRYPTO_H
#define NHID_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define NHID_SHA256_LEN 32
#define NHID_AES256_KEY_LEN 32
#define NHID_GCM_NONCE_LEN 12
#define NHID_GCM_TAG_LEN 16

/*
 * Cryptographically secure random bytes for secrets (RAND_priv_bytes).
 * Draws of up to 64 bytes come from a per-thread pool (crypto.c).
 */
NHID_MUST_CHECK int nhid_random_bytes(void *buf, size_t len);
/* As nhid_random_bytes, for public values (nonces, ids): OpenSSL's public DRBG. */
NHID_MUST_CHECK int nhid_random_public(void *buf, size_t len);

/*
 * A new 256-bit random secret as text: prefix followed by the base64url
 * (no padding) encoding of 32 random bytes, e.g. "nhs.q2x...". out must
 * hold NHID_TOKEN_MAX bytes. Used for tokens, secret IDs, join tokens.
 */
#define NHID_TOKEN_MAX 64
NHID_MUST_CHECK int nhid_random_token(const char *prefix, char out[NHID_TOKEN_MAX]);

/* A random RFC 4122 version-4 UUID string (37 bytes with NUL). */
NHID_MUST_CHECK int nhid_uuid(char out[37]);

void nhid_sha256(const void *data, size_t len, uint8_t out[NHID_SHA256_LEN]);
/*
 * How machine secrets (tokens, secret IDs, join tokens) are stored: the
 * HMAC-SHA256 of the secret under a 32-byte key, as 64 lower-case hex
 * characters. High-entropy secrets need no slow KDF (DESIGN.md).
 */
void nhid_secret_hash_hex(const uint8_t key[32], const char *secret, char out[65]);
void nhid_hmac_sha256(const uint8_t *key, size_t keylen, const void *data, size_t len,
                      uint8_t out[NHID_SHA256_LEN]);

/*
 * AES-256-GCM with a random 96-bit nonce (NIST SP 800-38D).
 * Output layout: nonce(12) || ciphertext(len) || tag(16);
 * *out is malloc'd, *outlen = len + 28. aad binds context (e.g. the
 * storage key) so ciphertexts cannot be moved between contexts.
 */
NHID_MUST_CHECK int nhid_aead_seal(const uint8_t key[NHID_AES256_KEY_LEN], const uint8_t *aad,
                                   size_t aadlen, const uint8_t *pt, size_t ptlen, uint8_t **out,
                                   size_t *outlen);
/* Inverse of nhid_aead_seal; NHID_ERR_TAMPERED if the tag does not verify. */
NHID_MUST_CHECK int nhid_aead_open(const uint8_t key[NHID_AES256_KEY_LEN], const uint8_t *aad,
                                   size_t aadlen, const uint8_t *in, size_t inlen, uint8_t **pt,
                                   size_t *ptlen);

/* Bytes nhid_aead_seal adds to a plaintext: nonce(12) + tag(16). */
#define NHID_AEAD_OVERHEAD (NHID_GCM_NONCE_LEN + NHID_GCM_TAG_LEN)
/* Largest plaintext the AEAD functions accept (OpenSSL takes int lengths). */
#define NHID_AEAD_MAX ((size_t)0x7fffffff - NHID_AEAD_OVERHEAD)

/*
 * nhid_aead_seal into a caller buffer of ptlen + NHID_AEAD_OVERHEAD bytes
 * (no allocation; the data path of the barrier uses it). out may not
 * overlap pt.
 */
NHID_MUST_CHECK int nhid_aead_seal_to(const uint8_t key[NHID_AES256_KEY_LEN], const uint8_t *aad,
                                      size_t aadlen, const uint8_t *pt, size_t ptlen, uint8_t *out);
/*
 * nhid_aead_open into a caller buffer of inlen - NHID_AEAD_OVERHEAD bytes.
 * On NHID_ERR_TAMPERED the buffer is wiped (never release unauthenticated
 * plaintext).
 */
NHID_MUST_CHECK int nhid_aead_open_to(const uint8_t key[NHID_AES256_KEY_LEN], const uint8_t *aad,
                                      size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *pt);

/*
 * HKDF-SHA256 (RFC 5869) extract-and-expand of key into outlen bytes
 * (outlen <= 255 * 32). salt may be NULL/0.
 */
NHID_MUST_CHECK int nhid_hkdf_sha256(const uint8_t *key, size_t keylen, const uint8_t *salt,
                                     size_t saltlen, const uint8_t *info, size_t infolen,
                                     uint8_t *out, size_t outlen);

/* Standard base64 (RFC 4648 §4) with padding; *out malloc'd, NUL-terminated. */
NHID_MUST_CHECK int nhid_base64_encode(const uint8_t *in, size_t len, char **out);
/* Accepts standard or URL alphabet, with or without padding. */
NHID_MUST_CHECK int nhid_base64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen);
/* base64url without padding (RFC 4648 §5). */
NHID_MUST_CHECK int nhid_base64url_encode(const uint8_t *in, size_t len, char **out);

/*
 * Shamir secret sharing over GF(256) (libgfshare). Splits secret into n
 * shares of threshold t (1 <= t <= n <= 255). Each share is secretlen+1
 * bytes: the share's x coordinate followed by its y bytes. With n == 1
 * the single share is the x=1 share of a degree-0 polynomial, i.e. the
 * secret prefixed by the x byte. *shares is an array of n malloc'd
 * buffers; free with nhid_shamir_free_shares().
 */
NHID_MUST_CHECK int nhid_shamir_split(const uint8_t *secret, size_t secretlen, unsigned n,
                                      unsigned t, uint8_t ***shares);
void nhid_shamir_free_shares(uint8_t **shares, unsigned n, size_t sharelen);
/*
 * Combine k shares (each secretlen+1 bytes, distinct x) into the secret
 * (out must hold secretlen bytes). Fewer than the threshold gives a wrong
 * secret, which the caller detects by authenticated decryption.
 * NHID_ERR_INVALID on duplicate or zero x coordinates.
 */
NHID_MUST_CHECK int nhid_shamir_combine(const uint8_t *const *shares, unsigned k, size_t secretlen,
                                        uint8_t *out);

/* ---- signer interface --------------------------------------------------- */

enum nhid_key_type {
    NHID_KEY_EC_P256,
    NHID_KEY_EC_P384,
    NHID_KEY_ED25519,
    NHID_KEY_RSA_2048,
    NHID_KEY_RSA_3072,
    NHID_KEY_RSA_4096,
};

/* Parse "ec"/"p256"/"ec-p256", "p384", "ed25519", "rsa"/"rsa-2048", ... */
NHID_MUST_CHECK int nhid_key_type_parse(const char *name, int bits, enum nhid_key_type *out);
const char *nhid_key_type_name(enum nhid_key_type t);

/* An opaque private key. Callers sign through it and never see the key. */
struct nhid_signer;

NHID_MUST_CHECK int nhid_signer_generate(enum nhid_key_type type, struct nhid_signer **out);
/* Load from PEM (PKCS#8 or traditional). */
NHID_MUST_CHECK int nhid_signer_from_pem(const char *pem, size_t len, struct nhid_signer **out);
/*
 * Export the private key as PKCS#8 PEM, for storing inside the barrier
 * only. *pem malloc'd; free with nhid_free_secret_str().
 */
NHID_MUST_CHECK int nhid_signer_export_pem(const struct nhid_signer *s, char **pem);
enum nhid_key_type nhid_signer_type(const struct nhid_signer *s);
/* The public key (borrowed EVP_PKEY *, valid while the signer lives). */
void *nhid_signer_public_key(const struct nhid_signer *s);
/*
 * Sign msg with the key's natural algorithm: ECDSA with SHA-256 (P-256) or
 * SHA-384 (P-384), Ed25519 (pure), RSA PKCS#1 v1.5 with SHA-256. *sig is
 * malloc'd (DER for ECDSA).
 */
NHID_MUST_CHECK int nhid_signer_sign(const struct nhid_signer *s, const uint8_t *msg, size_t len,
                                     uint8_t **sig, size_t *siglen);
/* Sign an OpenSSL X509 / X509_CRL / X509_REQ object (passed as void *). */
NHID_MUST_CHECK int nhid_signer_sign_x509(const struct nhid_signer *s, void *x509);
NHID_MUST_CHECK int nhid_signer_sign_crl(const struct nhid_signer *s, void *x509_crl);
NHID_MUST_CHECK int nhid_signer_sign_req(const struct nhid_signer *s, void *x509_req);
void nhid_signer_free(struct nhid_signer *s);

#endif /* NHID_CRYPTO_H */
