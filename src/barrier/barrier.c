/*
 * barrier — encryption of everything nhid stores, and sealing
 * (docs/dev/storage.md has the key hierarchy and formats).
 *
 * Locking: `admin` (a mutex) serialises every change of key state —
 * init, unseal, seal, rotate — and guards the unseal progress; `lock` (an
 * rwlock) guards the in-memory keys against those changes and is the only
 * lock the data path takes (shared). Order: admin, then lock.
 */
#include "barrier/barrier.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "crypto/crypto.h"

#define MOD "barrier"

#define KEY_SEAL_CONFIG "core/seal-config"
#define KEY_KEYRING "core/keyring"
/* Keys under this prefix are the barrier's own raw entries; the re-encryption sweep skips them. */
#define RAW_PREFIX "core/"

/* Keyring plaintext: "NHKR" | version | active(4) | count(4) | count x term record. */
#define KR_MAGIC "NHKR"
#define KR_VERSION 1
#define KR_HEADER_LEN 13
#define KR_RECORD_LEN (4 + 8 + NHID_AES256_KEY_LEN)
/* A named maximum on terms: one rotation a day for 179 years. */
#define KR_TERMS_MAX 65535u
/* Stored entry: term(4) || nonce(12) || ciphertext || tag(16). */
#define ENTRY_TERM_LEN 4
#define ENTRY_OVERHEAD (ENTRY_TERM_LEN + NHID_AEAD_OVERHEAD)
/* Entries one nhid_barrier_reencrypt_some() call examines at most. */
#define REENCRYPT_SCAN_BUDGET 4096u

struct term_key {
    uint32_t term;
    int64_t install_time;
    uint8_t key[NHID_AES256_KEY_LEN];
};

/* Lives in OpenSSL's secure heap when one is configured; always wiped on free. */
struct keyring {
    uint32_t active;
    uint32_t n; /* terms[i].term == i + 1 */
    struct term_key terms[];
};

struct nhid_barrier {
    struct nhid_store *st;

    pthread_mutex_t admin;
    pthread_rwlock_t lock;

    /* guarded by lock (written with admin held too) */
    bool sealed;
    uint8_t *root; /* NHID_ROOT_KEY_LEN bytes while unsealed */
    struct keyring *kr;

    /* guarded by admin */
    bool cfg_known; /* initialised and config cached */
    unsigned shares, threshold;
    uint8_t *progress; /* NHID_SHARES_MAX x NHID_SHARE_LEN */
    unsigned nprogress;
    char nonce[37];
};

/* ---- small helpers ---------------------------------------------------------- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static size_t keyring_size(uint32_t n)
{
    return sizeof(struct keyring) + (size_t)n * sizeof(struct term_key);
}

static void keyring_free(struct keyring *kr)
{
    if (kr)
        OPENSSL_secure_clear_free(kr, keyring_size(kr->n));
}

static struct keyring *keyring_alloc(uint32_t n)
{
    struct keyring *kr = OPENSSL_secure_zalloc(keyring_size(n));
    if (kr)
        kr->n = n;
    return kr;
}

/* The barrier's own raw keys must never be written through the data path. */
static bool is_reserved(const char *key)
{
    return strcmp(key, KEY_KEYRING) == 0 || strcmp(key, KEY_SEAL_CONFIG) == 0;
}

static int key_len(const char *key, size_t *len)
{
    size_t n;

    if (key == NULL)
        return NHID_ERR_INVALID;
    n = strnlen(key, NHID_STORE_KEY_MAX + 1);
    if (n == 0)
        return NHID_ERR_INVALID;
    if (n > NHID_STORE_KEY_MAX)
        return NHID_ERR_TOO_LARGE;
    *len = n;
    return NHID_OK;
}

/* Write a message for the caller into errbuf (if any); truncation is fine. */
NHID_PRINTF(3, 4) static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* ---- keyring (de)serialisation ---------------------------------------------- */

/* Serialise kr into a malloc'd buffer (caller wipes and frees). */
static int keyring_encode(const struct keyring *kr, uint8_t **out, size_t *outlen)
{
    size_t len = KR_HEADER_LEN + (size_t)kr->n * KR_RECORD_LEN;
    uint8_t *buf = malloc(len), *p;

    if (buf == NULL)
        return NHID_ERR_NOMEM;
    memcpy(buf, KR_MAGIC, 4);
    buf[4] = KR_VERSION;
    put_be32(buf + 5, kr->active);
    put_be32(buf + 9, kr->n);
    p = buf + KR_HEADER_LEN;
    for (uint32_t i = 0; i < kr->n; i++) {
        put_be32(p, kr->terms[i].term);
        put_be64(p + 4, (uint64_t)kr->terms[i].install_time);
        memcpy(p + 12, kr->terms[i].key, NHID_AES256_KEY_LEN);
        p += KR_RECORD_LEN;
    }
    *out = buf;
    *outlen = len;
    return NHID_OK;
}

static int keyring_decode(const uint8_t *buf, size_t len, struct keyring **out)
{
    uint32_t active, n;
    struct keyring *kr;
    const uint8_t *p;

    /* The blob authenticated under the root key, so a bad shape is a bug or a foreign file. */
    if (len < KR_HEADER_LEN || memcmp(buf, KR_MAGIC, 4) != 0 || buf[4] != KR_VERSION)
        goto bad;
    active = get_be32(buf + 5);
    n = get_be32(buf + 9);
    if (n == 0 || n > KR_TERMS_MAX || active == 0 || active > n ||
        len != KR_HEADER_LEN + (size_t)n * KR_RECORD_LEN)
        goto bad;
    kr = keyring_alloc(n);
    if (kr == NULL)
        return NHID_ERR_NOMEM;
    kr->active = active;
    p = buf + KR_HEADER_LEN;
    for (uint32_t i = 0; i < n; i++) {
        kr->terms[i].term = get_be32(p);
        kr->terms[i].install_time = (int64_t)get_be64(p + 4);
        memcpy(kr->terms[i].key, p + 12, NHID_AES256_KEY_LEN);
        if (kr->terms[i].term != i + 1) {
            keyring_free(kr);
            goto bad;
        }
        p += KR_RECORD_LEN;
    }
    *out = kr;
    return NHID_OK;
bad:
    nhid_error(MOD, "keyring has an unknown format");
    return NHID_ERR_INTERNAL;
}

/* Encode kr and seal it under root with AAD "core/keyring". */
static int keyring_seal(const struct keyring *kr, const uint8_t *root, uint8_t **out,
                        size_t *outlen)
{
    int rc = NHID_OK;
    uint8_t *pt = NULL;
    size_t ptlen = 0;

    NHID_TRY(keyring_encode(kr, &pt, &ptlen));
    NHID_TRY(nhid_aead_seal(root, (const uint8_t *)KEY_KEYRING, strlen(KEY_KEYRING), pt, ptlen,
                            out, outlen));
out:
    nhid_free_secret(pt, ptlen);
    return rc;
}

/* ---- storage jobs ------------------------------------------------------------ */

struct init_job {
    const char *config;
    const uint8_t *keyring;
    size_t keyring_len;
};

static int init_job_fn(struct nhid_txn *txn, void *arg)
{
    struct init_job *j = arg;
    uint8_t *v = NULL;
    size_t n = 0;
    int rc;

    /* Checked inside the write so two concurrent inits cannot both win. */
    rc = nhid_txn_get(txn, KEY_SEAL_CONFIG, &v, &n);
    free(v);
    if (rc == NHID_OK)
        return NHID_ERR_EXISTS;
    if (rc != NHID_ERR_NOT_FOUND)
        return rc;
    rc = nhid_txn_put(txn, KEY_SEAL_CONFIG, (const uint8_t *)j->config, strlen(j->config));
    if (rc < 0)
        return rc;
    return nhid_txn_put(txn, KEY_KEYRING, j->keyring, j->keyring_len);
}

struct put_job {
    const char *key;
    const uint8_t *val;
    size_t len;
};

static int put_job_fn(struct nhid_txn *txn, void *arg)
{
    struct put_job *j = arg;
    return nhid_txn_put(txn, j->key, j->val, j->len);
}

/* Read a raw key in its own read txn (*val malloc'd). */
static int read_raw(struct nhid_store *st, const char *key, uint8_t **val, size_t *len)
{
    int rc = NHID_OK;
    struct nhid_txn *txn = NULL;

    NHID_TRY(nhid_store_read_begin(st, &txn));
    rc = nhid_txn_get(txn, key, val, len);
out:
    nhid_store_read_end(txn);
    return rc;
}

/* Load "core/seal-config" into the cache if not known yet (admin held). */
static int load_config(struct nhid_barrier *b)
{
    int rc = NHID_OK;
    uint8_t *raw = NULL;
    size_t len = 0;
    json_t *root = NULL;
    json_error_t jerr;
    json_int_t n = 0, t = 0;

    if (b->cfg_known)
        return NHID_OK;
    rc = read_raw(b->st, KEY_SEAL_CONFIG, &raw, &len);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK; /* not initialised */
    NHID_TRY(rc);
    root = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || json_unpack(root, "{s:I, s:I}", "shares", &n, "threshold", &t) != 0 ||
        n < 1 || n > NHID_SHARES_MAX || t < 1 || t > n) {
        nhid_error(MOD, "stored %s is malformed", KEY_SEAL_CONFIG);
        NHID_FAIL(NHID_ERR_INTERNAL);
    }
    b->shares = (unsigned)n;
    b->threshold = (unsigned)t;
    b->cfg_known = true;
out:
    json_decref(root);
    free(raw);
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------------- */

int nhid_barrier_new(struct nhid_store *st, struct nhid_barrier **out)
{
    struct nhid_barrier *b;

    if (st == NULL || out == NULL)
        return NHID_ERR_INVALID;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NHID_ERR_NOMEM;
    b->progress = OPENSSL_secure_zalloc((size_t)NHID_SHARES_MAX * NHID_SHARE_LEN);
    if (b->progress == NULL) {
        free(b);
        return NHID_ERR_NOMEM;
    }
    if (pthread_mutex_init(&b->admin, NULL) != 0) {
        OPENSSL_secure_free(b->progress);
        free(b);
        return NHID_ERR_NOMEM;
    }
    if (pthread_rwlock_init(&b->lock, NULL) != 0) {
        pthread_mutex_destroy(&b->admin);
        OPENSSL_secure_free(b->progress);
        free(b);
        return NHID_ERR_NOMEM;
    }
    b->st = st;
    b->sealed = true;
    *out = b;
    return NHID_OK;
}

static void progress_reset(struct nhid_barrier *b)
{
    OPENSSL_cleanse(b->progress, (size_t)NHID_SHARES_MAX * NHID_SHARE_LEN);
    b->nprogress = 0;
    b->nonce[0] = '\0';
}

/* Forget all keys (admin held). */
static void seal_locked(struct nhid_barrier *b)
{
    pthread_rwlock_wrlock(&b->lock);
    keyring_free(b->kr);
    b->kr = NULL;
    if (b->root)
        OPENSSL_secure_clear_free(b->root, NHID_ROOT_KEY_LEN);
    b->root = NULL;
    b->sealed = true;
    pthread_rwlock_unlock(&b->lock);
}

void nhid_barrier_free(struct nhid_barrier *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->admin);
    seal_locked(b);
    progress_reset(b);
    pthread_mutex_unlock(&b->admin);
    OPENSSL_secure_clear_free(b->progress, (size_t)NHID_SHARES_MAX * NHID_SHARE_LEN);
    pthread_rwlock_destroy(&b->lock);
    pthread_mutex_destroy(&b->admin);
    free(b);
}

/* Fill a status (admin held). */
static void status_locked(struct nhid_barrier *b, struct nhid_seal_status *out)
{
    memset(out, 0, sizeof(*out));
    out->initialized = b->cfg_known;
    out->shares = b->shares;
    out->threshold = b->threshold;
    out->progress = b->nprogress;
    memcpy(out->nonce, b->nonce, sizeof(out->nonce));
    pthread_rwlock_rdlock(&b->lock);
    out->sealed = b->sealed;
    out->term = (!b->sealed && b->kr) ? b->kr->active : 0;
    pthread_rwlock_unlock(&b->lock);
}

int nhid_barrier_status(struct nhid_barrier *b, struct nhid_seal_status *out)
{
    int rc = NHID_OK;

    if (b == NULL || out == NULL)
        return NHID_ERR_INVALID;
    pthread_mutex_lock(&b->admin);
    NHID_TRY(load_config(b));
    status_locked(b, out);
out:
    pthread_mutex_unlock(&b->admin);
    return rc;
}

int nhid_barrier_init(struct nhid_barrier *b, unsigned n, unsigned t, uint8_t ***shares,
                      char *errbuf, size_t errlen)
{
    int rc = NHID_OK;
    uint8_t *root = NULL, *sealed_kr = NULL;
    size_t sealed_len = 0;
    struct keyring *kr = NULL;
    char config[64];
    struct init_job job;
    bool locked = false;

    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (b == NULL || shares == NULL)
        return NHID_ERR_INVALID;
    if (n < 1 || n > NHID_SHARES_MAX) {
        set_err(errbuf, errlen, "shares %u: must be between 1 and %u", n,
                           NHID_SHARES_MAX);
        return NHID_ERR_INVALID;
    }
    if (t < 1 || t > n) {
        set_err(errbuf, errlen, "threshold %u: must be between 1 and shares (%u)", t,
                           n);
        return NHID_ERR_INVALID;
    }
    /* As Vault: with several shares a threshold of 1 makes each share the whole root key. */
    if (t == 1 && n > 1) {
        set_err(errbuf, errlen,
                           "threshold 1 with %u shares: every share would be the whole root "
                           "key (use threshold >= 2, or 1 share)",
                           n);
        return NHID_ERR_INVALID;
    }

    pthread_mutex_lock(&b->admin);
    locked = true;
    NHID_TRY(load_config(b));
    if (b->cfg_known) {
        set_err(errbuf, errlen, "already initialized");
        NHID_FAIL(NHID_ERR_EXISTS);
    }
    root = OPENSSL_secure_malloc(NHID_ROOT_KEY_LEN);
    NHID_CHECK_ALLOC(root);
    kr = keyring_alloc(1);
    NHID_CHECK_ALLOC(kr);
    kr->active = 1;
    kr->terms[0].term = 1;
    kr->terms[0].install_time = nhid_now();
    NHID_TRY(nhid_random_bytes(root, NHID_ROOT_KEY_LEN));
    NHID_TRY(nhid_random_bytes(kr->terms[0].key, NHID_AES256_KEY_LEN));
    NHID_TRY(keyring_seal(kr, root, &sealed_kr, &sealed_len));
    NHID_TRY(nhid_fmt(config, sizeof(config), "{\"shares\":%u,\"threshold\":%u}", n, t));

    job.config = config;
    job.keyring = sealed_kr;
    job.keyring_len = sealed_len;
    rc = nhid_store_write(b->st, init_job_fn, &job);
    if (rc == NHID_ERR_EXISTS)
        set_err(errbuf, errlen, "already initialized");
    NHID_TRY(rc);
    /* Shares are made only after the keyring is durable: no shares for a lost root. */
    NHID_TRY(nhid_shamir_split(root, NHID_ROOT_KEY_LEN, n, t, shares));
    b->shares = n;
    b->threshold = t;
    b->cfg_known = true;
    nhid_info(MOD, "initialized with %u shares, threshold %u", n, t);
out:
    if (locked)
        pthread_mutex_unlock(&b->admin);
    if (root)
        OPENSSL_secure_clear_free(root, NHID_ROOT_KEY_LEN);
    keyring_free(kr);
    free(sealed_kr);
    return rc;
}

/*
 * Try root as the root key: decrypt the stored keyring and, on success,
 * install both and unseal (admin held). A wrong root key fails the
 * keyring's GCM tag: NHID_ERR_DENIED.
 */
static int unseal_with(struct nhid_barrier *b, const uint8_t *root)
{
    int rc = NHID_OK;
    uint8_t *blob = NULL, *pt = NULL, *rootcopy = NULL;
    size_t bloblen = 0, ptlen = 0;
    struct keyring *kr = NULL;

    rc = read_raw(b->st, KEY_KEYRING, &blob, &bloblen);
    if (rc == NHID_ERR_NOT_FOUND) {
        nhid_error(MOD, "cannot unseal: not initialized");
        NHID_FAIL(NHID_ERR_INVALID);
    }
    NHID_TRY(rc);
    rc = nhid_aead_open(root, (const uint8_t *)KEY_KEYRING, strlen(KEY_KEYRING), blob, bloblen,
                        &pt, &ptlen);
    if (rc == NHID_ERR_TAMPERED) {
        nhid_warn(MOD, "unseal failed: the key shares do not reconstruct the root key");
        NHID_FAIL(NHID_ERR_DENIED);
    }
    NHID_TRY(rc);
    NHID_TRY(keyring_decode(pt, ptlen, &kr));
    rootcopy = OPENSSL_secure_malloc(NHID_ROOT_KEY_LEN);
    NHID_CHECK_ALLOC(rootcopy);
    memcpy(rootcopy, root, NHID_ROOT_KEY_LEN);

    pthread_rwlock_wrlock(&b->lock);
    keyring_free(b->kr);
    if (b->root)
        OPENSSL_secure_clear_free(b->root, NHID_ROOT_KEY_LEN);
    b->kr = kr;
    b->root = rootcopy;
    b->sealed = false;
    pthread_rwlock_unlock(&b->lock);
    kr = NULL;
    rootcopy = NULL;
    nhid_info(MOD, "unsealed");
out:
    keyring_free(kr);
    if (rootcopy)
        OPENSSL_secure_clear_free(rootcopy, NHID_ROOT_KEY_LEN);
    nhid_free_secret(pt, ptlen);
    free(blob);
    return rc;
}

static bool is_sealed(struct nhid_barrier *b)
{
    bool s;

    pthread_rwlock_rdlock(&b->lock);
    s = b->sealed;
    pthread_rwlock_unlock(&b->lock);
    return s;
}

bool nhid_barrier_sealed(struct nhid_barrier *b)
{
    return b == NULL || is_sealed(b);
}

int nhid_barrier_unseal(struct nhid_barrier *b, const uint8_t *share, size_t len,
                        struct nhid_seal_status *status)
{
    int rc = NHID_OK;
    uint8_t root[NHID_ROOT_KEY_LEN];
    const uint8_t *list[NHID_SHARES_MAX];

    if (b == NULL || share == NULL)
        return NHID_ERR_INVALID;
    pthread_mutex_lock(&b->admin);
    NHID_TRY(load_config(b));
    if (!b->cfg_known) {
        nhid_error(MOD, "cannot unseal: not initialized");
        NHID_FAIL(NHID_ERR_INVALID);
    }
    if (!is_sealed(b))
        goto done; /* already unsealed: report the status, as Vault does */
    if (len != NHID_SHARE_LEN || share[0] == 0) {
        nhid_warn(MOD, "unseal share rejected: expected %d bytes with a non-zero index",
                  NHID_SHARE_LEN);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    for (unsigned i = 0; i < b->nprogress; i++) {
        const uint8_t *p = b->progress + (size_t)i * NHID_SHARE_LEN;
        if (p[0] == share[0]) {
            /* The same share twice, or two different shares claiming one x. */
            if (CRYPTO_memcmp(p, share, NHID_SHARE_LEN) == 0)
                nhid_warn(MOD, "unseal share already submitted");
            else
                nhid_warn(MOD, "unseal share has the index of an earlier share");
            NHID_FAIL(NHID_ERR_INVALID);
        }
    }
    if (b->nprogress == 0)
        NHID_TRY(nhid_uuid(b->nonce));
    memcpy(b->progress + (size_t)b->nprogress * NHID_SHARE_LEN, share, NHID_SHARE_LEN);
    b->nprogress++;
    if (b->nprogress < b->threshold)
        goto done;

    for (unsigned i = 0; i < b->nprogress; i++)
        list[i] = b->progress + (size_t)i * NHID_SHARE_LEN;
    rc = nhid_shamir_combine(list, b->nprogress, NHID_ROOT_KEY_LEN, root);
    /* Success or not, this attempt is over. */
    progress_reset(b);
    NHID_TRY(rc);
    NHID_TRY(unseal_with(b, root));
done:
    if (status)
        status_locked(b, status);
out:
    pthread_mutex_unlock(&b->admin);
    OPENSSL_cleanse(root, sizeof(root));
    return rc;
}

void nhid_barrier_unseal_reset(struct nhid_barrier *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->admin);
    progress_reset(b);
    pthread_mutex_unlock(&b->admin);
}

int nhid_barrier_unseal_with_root_key(struct nhid_barrier *b, const uint8_t key[NHID_ROOT_KEY_LEN])
{
    int rc = NHID_OK;

    if (b == NULL || key == NULL)
        return NHID_ERR_INVALID;
    pthread_mutex_lock(&b->admin);
    NHID_TRY(load_config(b));
    if (!b->cfg_known) {
        nhid_error(MOD, "cannot unseal: not initialized");
        NHID_FAIL(NHID_ERR_INVALID);
    }
    if (!is_sealed(b)) {
        /* Already unsealed: succeed only for the right key. */
        bool same;
        pthread_rwlock_rdlock(&b->lock);
        same = b->root && CRYPTO_memcmp(b->root, key, NHID_ROOT_KEY_LEN) == 0;
        pthread_rwlock_unlock(&b->lock);
        if (!same)
            NHID_FAIL(NHID_ERR_DENIED);
        goto out;
    }
    NHID_TRY(unseal_with(b, key));
    progress_reset(b);
out:
    pthread_mutex_unlock(&b->admin);
    return rc;
}

void nhid_barrier_seal(struct nhid_barrier *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->admin);
    seal_locked(b);
    progress_reset(b);
    pthread_mutex_unlock(&b->admin);
    nhid_info(MOD, "sealed");
}

int nhid_barrier_rotate(struct nhid_barrier *b, uint32_t *new_term, int64_t *install_time)
{
    int rc = NHID_OK;
    struct keyring *kr = NULL, *old;
    uint8_t *blob = NULL;
    size_t bloblen = 0;
    struct put_job job;
    uint32_t n;

    if (b == NULL)
        return NHID_ERR_INVALID;
    pthread_mutex_lock(&b->admin);
    /* admin serialises all keyring changes, so b->kr is stable here without lock. */
    if (is_sealed(b))
        NHID_FAIL(NHID_ERR_SEALED);
    old = b->kr;
    if (old->n >= KR_TERMS_MAX) {
        nhid_error(MOD, "keyring has %u terms, the maximum", old->n);
        NHID_FAIL(NHID_ERR_TOO_LARGE);
    }
    n = old->n + 1;
    kr = keyring_alloc(n);
    NHID_CHECK_ALLOC(kr);
    memcpy(kr->terms, old->terms, (size_t)old->n * sizeof(struct term_key));
    kr->terms[n - 1].term = n;
    kr->terms[n - 1].install_time = nhid_now();
    NHID_TRY(nhid_random_bytes(kr->terms[n - 1].key, NHID_AES256_KEY_LEN));
    kr->active = n;
    NHID_TRY(keyring_seal(kr, b->root, &blob, &bloblen));
    job.key = KEY_KEYRING;
    job.val = blob;
    job.len = bloblen;
    /* Durable before use: no entry may be written under a term that could be lost. */
    NHID_TRY(nhid_store_write(b->st, put_job_fn, &job));

    pthread_rwlock_wrlock(&b->lock);
    b->kr = kr;
    pthread_rwlock_unlock(&b->lock);
    keyring_free(old);
    if (new_term)
        *new_term = n;
    if (install_time)
        *install_time = kr->terms[n - 1].install_time;
    kr = NULL;
    nhid_info(MOD, "keyring rotated to term %u", n);
out:
    pthread_mutex_unlock(&b->admin);
    keyring_free(kr);
    free(blob);
    return rc;
}

/* ---- the data path ---------------------------------------------------------- */

/* Encrypt into out (ptlen + ENTRY_OVERHEAD bytes) under the active term. */
static int encrypt_to(struct nhid_barrier *b, const char *key, size_t klen, const uint8_t *pt,
                      size_t ptlen, uint8_t *out)
{
    int rc;
    const struct term_key *tk;

    pthread_rwlock_rdlock(&b->lock);
    if (b->sealed) {
        pthread_rwlock_unlock(&b->lock);
        return NHID_ERR_SEALED;
    }
    tk = &b->kr->terms[b->kr->active - 1];
    put_be32(out, tk->term);
    rc = nhid_aead_seal_to(tk->key, (const uint8_t *)key, klen, pt, ptlen, out + ENTRY_TERM_LEN);
    pthread_rwlock_unlock(&b->lock);
    return rc;
}

/*
 * Decrypt an entry into pt (inlen - ENTRY_OVERHEAD bytes). *term gets the
 * entry's term, *active the keyring's active term.
 */
static int decrypt_to(struct nhid_barrier *b, const char *key, size_t klen, const uint8_t *in,
                      size_t inlen, uint8_t *pt, uint32_t *term, uint32_t *active)
{
    int rc;
    uint32_t t;

    if (inlen < ENTRY_OVERHEAD)
        return NHID_ERR_TAMPERED;
    t = get_be32(in);
    pthread_rwlock_rdlock(&b->lock);
    if (b->sealed) {
        pthread_rwlock_unlock(&b->lock);
        return NHID_ERR_SEALED;
    }
    if (t == 0 || t > b->kr->n) {
        pthread_rwlock_unlock(&b->lock);
        return NHID_ERR_TAMPERED; /* no such term: not one of our entries */
    }
    rc = nhid_aead_open_to(b->kr->terms[t - 1].key, (const uint8_t *)key, klen,
                           in + ENTRY_TERM_LEN, inlen - ENTRY_TERM_LEN, pt);
    *active = b->kr->active;
    pthread_rwlock_unlock(&b->lock);
    *term = t;
    return rc;
}

int nhid_barrier_encrypt(struct nhid_barrier *b, const char *key, const uint8_t *pt, size_t ptlen,
                         uint8_t **out, size_t *outlen)
{
    int rc = NHID_OK;
    size_t klen;
    uint8_t *buf = NULL;

    if (b == NULL || out == NULL || outlen == NULL || (pt == NULL && ptlen > 0))
        return NHID_ERR_INVALID;
    NHID_TRY(key_len(key, &klen));
    if (ptlen > NHID_STORE_VALUE_MAX - ENTRY_OVERHEAD)
        NHID_FAIL(NHID_ERR_TOO_LARGE);
    buf = malloc(ptlen + ENTRY_OVERHEAD);
    NHID_CHECK_ALLOC(buf);
    NHID_TRY(encrypt_to(b, key, klen, pt, ptlen, buf));
    *out = buf;
    *outlen = ptlen + ENTRY_OVERHEAD;
    buf = NULL;
out:
    free(buf);
    return rc;
}

int nhid_barrier_decrypt(struct nhid_barrier *b, const char *key, const uint8_t *in, size_t inlen,
                         uint8_t **pt, size_t *ptlen, uint32_t *term)
{
    int rc = NHID_OK;
    size_t klen, len;
    uint8_t *buf = NULL;
    uint32_t t = 0, active = 0;

    if (b == NULL || in == NULL || pt == NULL || ptlen == NULL)
        return NHID_ERR_INVALID;
    NHID_TRY(key_len(key, &klen));
    if (inlen < ENTRY_OVERHEAD)
        NHID_FAIL(NHID_ERR_TAMPERED);
    len = inlen - ENTRY_OVERHEAD;
    buf = malloc(len ? len : 1);
    NHID_CHECK_ALLOC(buf);
    NHID_TRY(decrypt_to(b, key, klen, in, inlen, buf, &t, &active));
    *pt = buf;
    *ptlen = len;
    if (term)
        *term = t;
    buf = NULL;
out:
    free(buf); /* wiped by nhid_aead_open_to on failure */
    return rc;
}

struct get_ctx {
    struct nhid_barrier *b;
    const char *key;
    size_t klen;
    uint8_t *pt;
    size_t ptlen;
    uint32_t term, active;
};

/* Decrypt straight from SQLite's buffer into the caller's output. */
static int get_decrypt(const uint8_t *val, size_t len, void *arg)
{
    struct get_ctx *g = arg;
    int rc;

    if (len < ENTRY_OVERHEAD)
        return NHID_ERR_TAMPERED;
    g->ptlen = len - ENTRY_OVERHEAD;
    g->pt = malloc(g->ptlen ? g->ptlen : 1);
    if (g->pt == NULL)
        return NHID_ERR_NOMEM;
    rc = decrypt_to(g->b, g->key, g->klen, val, len, g->pt, &g->term, &g->active);
    if (rc < 0) {
        free(g->pt);
        g->pt = NULL;
    }
    return rc;
}

int nhid_barrier_get(struct nhid_barrier *b, struct nhid_txn *txn, const char *key, uint8_t **val,
                     size_t *len)
{
    int rc = NHID_OK;
    struct get_ctx g;

    if (b == NULL || txn == NULL || val == NULL || len == NULL)
        return NHID_ERR_INVALID;
    memset(&g, 0, sizeof(g));
    g.b = b;
    g.key = key;
    NHID_TRY(key_len(key, &g.klen));
    /* Sealed hides even whether a key exists. */
    if (is_sealed(b))
        NHID_FAIL(NHID_ERR_SEALED);
    NHID_TRY(nhid_txn_get_with(txn, key, get_decrypt, &g));
    if (g.term < g.active && nhid_txn_writable(txn) && !is_reserved(key)) {
        /* Lazy re-encryption under the active term (same txn, same value). */
        int r = nhid_barrier_put(b, txn, key, g.pt, g.ptlen);
        if (r < 0)
            nhid_warn(MOD, "re-encrypting an entry from term %u failed: %s", g.term,
                      nhid_strerror(r));
    }
    *val = g.pt;
    *len = g.ptlen;
    g.pt = NULL;
out:
    nhid_free_secret(g.pt, g.ptlen);
    return rc;
}

int nhid_barrier_put(struct nhid_barrier *b, struct nhid_txn *txn, const char *key,
                     const uint8_t *val, size_t len)
{
    int rc = NHID_OK;
    uint8_t *ct = NULL;
    size_t ctlen = 0;

    if (b == NULL || txn == NULL)
        return NHID_ERR_INVALID;
    if (!nhid_txn_writable(txn))
        return NHID_ERR_INTERNAL;
    if (key && is_reserved(key)) {
        nhid_error(MOD, "refusing to overwrite the barrier's own entry %s", key);
        return NHID_ERR_INVALID;
    }
    NHID_TRY(nhid_barrier_encrypt(b, key, val, len, &ct, &ctlen));
    NHID_TRY(nhid_txn_put(txn, key, ct, ctlen));
out:
    free(ct);
    return rc;
}

/* ---- lazy re-encryption sweep ------------------------------------------------ */

struct sweep {
    uint32_t active;
    size_t max;
    size_t examined;
    bool stopped;
    char **keys;
    size_t nkeys;
    char last[NHID_STORE_KEY_MAX + 1];
    int err;
};

static int sweep_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct sweep *s = arg;
    size_t klen = strlen(key);

    s->examined++;
    memcpy(s->last, key, klen + 1);
    if (nhid_has_prefix(key, RAW_PREFIX) || len < ENTRY_OVERHEAD)
        return 0;
    {
        uint32_t t = get_be32(val);
        if (t == 0 || t >= s->active)
            return 0;
    }
    s->keys[s->nkeys] = nhid_strdup(key);
    if (s->keys[s->nkeys] == NULL) {
        s->err = NHID_ERR_NOMEM;
        s->stopped = true;
        return 1;
    }
    s->nkeys++;
    if (s->nkeys == s->max) {
        s->stopped = true;
        return 1;
    }
    return 0;
}

int nhid_barrier_reencrypt_some(struct nhid_barrier *b, struct nhid_txn *txn, size_t max,
                                char *cursor, size_t cursorlen, size_t *done)
{
    int rc = NHID_OK;
    struct sweep *s = NULL;
    size_t count = 0, budget;

    if (b == NULL || txn == NULL || cursor == NULL || cursorlen == 0)
        return NHID_ERR_INVALID;
    if (!nhid_txn_writable(txn))
        return NHID_ERR_INTERNAL;
    if (strnlen(cursor, cursorlen) == cursorlen)
        return NHID_ERR_INVALID; /* not NUL-terminated */
    if (max == 0) {
        if (done)
            *done = 0;
        return NHID_OK;
    }
    if (max > REENCRYPT_SCAN_BUDGET)
        max = REENCRYPT_SCAN_BUDGET;
    s = calloc(1, sizeof(*s));
    NHID_CHECK_ALLOC(s);
    s->keys = calloc(max, sizeof(*s->keys));
    NHID_CHECK_ALLOC(s->keys);
    s->max = max;
    pthread_rwlock_rdlock(&b->lock);
    s->active = b->sealed ? 0 : b->kr->active;
    pthread_rwlock_unlock(&b->lock);
    if (s->active == 0)
        NHID_FAIL(NHID_ERR_SEALED);

    /* Collect first, rewrite after: no writes under a running scan statement. */
    budget = REENCRYPT_SCAN_BUDGET;
    NHID_TRY(nhid_txn_scan_prefix(txn, "", cursor[0] ? cursor : NULL, budget, false, sweep_cb,
                                  s));
    NHID_TRY(s->err);
    for (size_t i = 0; i < s->nkeys; i++) {
        uint8_t *pt = NULL;
        size_t ptlen = 0;
        int r = nhid_barrier_get(b, txn, s->keys[i], &pt, &ptlen);
        nhid_free_secret(pt, ptlen);
        if (r == NHID_ERR_SEALED)
            NHID_FAIL(r);
        if (r < 0) {
            /* One damaged entry must not stall the sweep forever: report and move on. */
            nhid_warn(MOD, "re-encryption skipped an entry: %s", nhid_strerror(r));
            continue;
        }
        count++;
    }
    if (!s->stopped && s->examined < budget) {
        cursor[0] = '\0'; /* reached the end */
    } else {
        size_t l = strlen(s->last);
        if (l + 1 > cursorlen)
            NHID_FAIL(NHID_ERR_TOO_LARGE);
        memcpy(cursor, s->last, l + 1);
    }
    if (done)
        *done = count;
out:
    if (s) {
        for (size_t i = 0; s->keys && i < s->nkeys; i++)
            free(s->keys[i]);
        free(s->keys);
        free(s);
    }
    return rc;
}

int nhid_barrier_derive_key(struct nhid_barrier *b, const char *purpose, uint8_t out[32])
{
    int rc;

    if (b == NULL || purpose == NULL || out == NULL || purpose[0] == '\0')
        return NHID_ERR_INVALID;
    pthread_rwlock_rdlock(&b->lock);
    if (b->sealed) {
        pthread_rwlock_unlock(&b->lock);
        return NHID_ERR_SEALED;
    }
    /* RFC 5869: term 1's key as IKM, no salt, info = purpose. Stable across rotations. */
    rc = nhid_hkdf_sha256(b->kr->terms[0].key, NHID_AES256_KEY_LEN, NULL, 0,
                          (const uint8_t *)purpose, strlen(purpose), out, 32);
    pthread_rwlock_unlock(&b->lock);
    return rc;
}
