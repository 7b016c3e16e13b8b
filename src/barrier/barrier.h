/*
 * barrier — encryption of everything nhid stores, and sealing.
 *
 * Key hierarchy (as Vault's): unseal key shares --Shamir--> root key
 * --AES-256-GCM--> keyring (versioned data keys, "terms") --AES-256-GCM-->
 * each stored entry. Stored entry layout: term (4 bytes, big-endian) ||
 * nonce || ciphertext || tag, with AAD = the entry's storage key, so an
 * entry moved to another key fails to decrypt (NHID_ERR_TAMPERED).
 *
 * Raw store keys used by the barrier itself (never encrypted with the
 * keyring): "core/seal-config" (JSON: shares, threshold) and
 * "core/keyring" (keyring sealed by the root key).
 *
 * Sealed: the keyring is not in memory; every data operation returns
 * NHID_ERR_SEALED. Unsealing requires `threshold` distinct shares.
 *
 * Thread-safety: all functions may be called from any thread.
 */
#ifndef NHID_BARRIER_H
#define NHID_BARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "store/store.h"

#define NHID_ROOT_KEY_LEN 32
#define NHID_SHARE_LEN (NHID_ROOT_KEY_LEN + 1)
#define NHID_SHARES_MAX 255

struct nhid_barrier;

struct nhid_seal_status {
    bool initialized;
    bool sealed;
    unsigned shares;    /* n */
    unsigned threshold; /* t */
    unsigned progress;  /* shares submitted toward the current unseal */
    char nonce[37];     /* identifies the current unseal attempt ("" if none) */
    uint32_t term;      /* active keyring term (0 when sealed) */
};

NHID_MUST_CHECK int nhid_barrier_new(struct nhid_store *st, struct nhid_barrier **out);
/* Wipes all key material. Safe with NULL. */
void nhid_barrier_free(struct nhid_barrier *b);

NHID_MUST_CHECK int nhid_barrier_status(struct nhid_barrier *b, struct nhid_seal_status *out);

/*
 * Initialise: generate the root key and keyring term 1, persist them
 * (durably) and split the root key into n shares of threshold t.
 * *shares: n malloc'd buffers of NHID_SHARE_LEN bytes (free with
 * nhid_shamir_free_shares(shares, n, NHID_SHARE_LEN)). Leaves the barrier
 * sealed. NHID_ERR_EXISTS if already initialised; NHID_ERR_INVALID (with
 * message in errbuf) for bad n/t.
 */
NHID_MUST_CHECK int nhid_barrier_init(struct nhid_barrier *b, unsigned n, unsigned t,
                                      uint8_t ***shares, char *errbuf, size_t errlen);

/*
 * Submit one unseal share. When `threshold` distinct shares are in, the
 * root key is combined, the keyring decrypted and the barrier unsealed;
 * a wrong combination resets progress and returns NHID_ERR_DENIED.
 * Duplicate share → NHID_ERR_INVALID (progress unchanged).
 */
NHID_MUST_CHECK int nhid_barrier_unseal(struct nhid_barrier *b, const uint8_t *share, size_t len,
                                        struct nhid_seal_status *status);
/* Forget shares submitted so far. */
void nhid_barrier_unseal_reset(struct nhid_barrier *b);
/* Unseal directly with the root key (dev mode, key-file automation). */
NHID_MUST_CHECK int nhid_barrier_unseal_with_root_key(struct nhid_barrier *b,
                                                      const uint8_t key[NHID_ROOT_KEY_LEN]);
/* Seal: wipe keyring and root key from memory. */
void nhid_barrier_seal(struct nhid_barrier *b);
bool nhid_barrier_sealed(struct nhid_barrier *b);

/*
 * Add a new keyring term (durably) and make it the one new writes use.
 * Older terms stay in the keyring so existing entries remain readable;
 * they are re-encrypted lazily (nhid_barrier_get in a writable txn, and
 * nhid_barrier_reencrypt_some). *new_term gets the new term number.
 */
NHID_MUST_CHECK int nhid_barrier_rotate(struct nhid_barrier *b, uint32_t *new_term,
                                        int64_t *install_time);

/*
 * Re-encrypt up to `max` entries written under older terms, starting
 * after key *cursor (updated; set to "" when done). Run from a periodic
 * job inside a writable txn.
 */
NHID_MUST_CHECK int nhid_barrier_reencrypt_some(struct nhid_barrier *b, struct nhid_txn *txn,
                                                size_t max, char *cursor, size_t cursorlen,
                                                size_t *done);

/* ---- encrypted data operations ------------------------------------------ */

/*
 * Read and decrypt key. *val malloc'd; free with nhid_free_secret().
 * NHID_ERR_NOT_FOUND, NHID_ERR_SEALED, NHID_ERR_TAMPERED.
 * In a writable txn an entry under an old term is re-encrypted in place.
 */
NHID_MUST_CHECK int nhid_barrier_get(struct nhid_barrier *b, struct nhid_txn *txn, const char *key,
                                     uint8_t **val, size_t *len);
/* Encrypt with the active term and write. */
NHID_MUST_CHECK int nhid_barrier_put(struct nhid_barrier *b, struct nhid_txn *txn, const char *key,
                                     const uint8_t *val, size_t len);

/*
 * Encrypt/decrypt a value for key without touching storage (the barrier's
 * codec, for callers that batch or cache).
 */
NHID_MUST_CHECK int nhid_barrier_encrypt(struct nhid_barrier *b, const char *key,
                                         const uint8_t *pt, size_t ptlen, uint8_t **out,
                                         size_t *outlen);
NHID_MUST_CHECK int nhid_barrier_decrypt(struct nhid_barrier *b, const char *key,
                                         const uint8_t *in, size_t inlen, uint8_t **pt,
                                         size_t *ptlen, uint32_t *term);

/*
 * A 32-byte subkey derived from the keyring for a named purpose
 * (HKDF-SHA256, info = purpose), e.g. the token-hash HMAC key. Stable
 * across rotation (derived from term 1's key). NHID_ERR_SEALED if sealed.
 */
NHID_MUST_CHECK int nhid_barrier_derive_key(struct nhid_barrier *b, const char *purpose,
                                            uint8_t out[32]);

#endif /* NHID_BARRIER_H */
