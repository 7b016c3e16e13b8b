/* barrier_test — sealing, unsealing, entry encryption, tampering, rotation. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "barrier/barrier.h"
#include "crypto/crypto.h"

struct fixture {
    char dir[64];
    char path[128];
    struct nhid_store *st;
    struct nhid_barrier *b;
    uint8_t **shares; /* 5 shares, threshold 3 */
};

static int open_all(struct fixture *f)
{
    struct nhid_store_config cfg = {.backend = "sqlite", .path = f->path, .durable = true};
    if (nhid_store_open(&cfg, &f->st) != NHID_OK)
        return -1;
    return nhid_barrier_new(f->st, &f->b) == NHID_OK ? 0 : -1;
}

static void close_all(struct fixture *f)
{
    nhid_barrier_free(f->b);
    nhid_store_close(f->st);
    f->b = NULL;
    f->st = NULL;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[128];

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/nhid-barrier-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/nhid.db", f->dir);
    if (open_all(f) != 0)
        return -1;
    if (nhid_barrier_init(f->b, 5, 3, &f->shares, err, sizeof(err)) != NHID_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d;
    struct dirent *e;
    char p[512];

    close_all(f);
    nhid_shamir_free_shares(f->shares, 5, NHID_SHARE_LEN);
    d = opendir(f->dir);
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void unseal3(struct fixture *f, int a, int b, int c)
{
    struct nhid_seal_status s;
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[a], NHID_SHARE_LEN, &s), NHID_OK);
    assert_true(s.sealed);
    assert_int_equal(s.progress, 1);
    assert_int_equal(strlen(s.nonce), 36);
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[b], NHID_SHARE_LEN, &s), NHID_OK);
    assert_true(s.sealed);
    assert_int_equal(s.progress, 2);
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[c], NHID_SHARE_LEN, &s), NHID_OK);
    assert_false(s.sealed);
    assert_int_equal(s.progress, 0);
    assert_string_equal(s.nonce, "");
    assert_true(s.term >= 1);
}

/* ---- data helpers ---------------------------------------------------------------------- */

struct bput {
    struct nhid_barrier *b;
    const char *key;
    const char *val;
};

static int bput_job(struct nhid_txn *txn, void *arg)
{
    struct bput *p = arg;
    return nhid_barrier_put(p->b, txn, p->key, (const uint8_t *)p->val, strlen(p->val));
}

static int bput(struct fixture *f, const char *key, const char *val)
{
    struct bput p = {f->b, key, val};
    return nhid_store_write(f->st, bput_job, &p);
}

/* Barrier get in a read txn; on success *out is a NUL-terminated malloc'd copy. */
static int bget(struct fixture *f, const char *key, char **out)
{
    struct nhid_txn *txn = NULL;
    uint8_t *v = NULL;
    size_t n = 0;
    int rc;

    assert_int_equal(nhid_store_read_begin(f->st, &txn), NHID_OK);
    rc = nhid_barrier_get(f->b, txn, key, &v, &n);
    nhid_store_read_end(txn);
    if (rc == NHID_OK) {
        *out = malloc(n + 1);
        memcpy(*out, v, n);
        (*out)[n] = '\0';
        nhid_free_secret(v, n);
    }
    return rc;
}

struct raw {
    const char *key;
    uint8_t *val;
    size_t len;
};

static int raw_put_job(struct nhid_txn *txn, void *arg)
{
    struct raw *r = arg;
    return nhid_txn_put(txn, r->key, r->val, r->len);
}

static void raw_get(struct fixture *f, const char *key, uint8_t **val, size_t *len)
{
    struct nhid_txn *txn = NULL;
    assert_int_equal(nhid_store_read_begin(f->st, &txn), NHID_OK);
    assert_int_equal(nhid_txn_get(txn, key, val, len), NHID_OK);
    nhid_store_read_end(txn);
}

static void raw_put(struct fixture *f, const char *key, uint8_t *val, size_t len)
{
    struct raw r = {key, val, len};
    assert_int_equal(nhid_store_write(f->st, raw_put_job, &r), NHID_OK);
}

static uint32_t raw_term(struct fixture *f, const char *key)
{
    uint8_t *v = NULL;
    size_t n = 0;
    uint32_t t;
    raw_get(f, key, &v, &n);
    assert_true(n >= 4);
    t = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
    free(v);
    return t;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_init_and_status(void **state)
{
    struct fixture *f = *state;
    struct nhid_seal_status s;
    uint8_t **again = NULL;
    char err[160];

    assert_int_equal(nhid_barrier_status(f->b, &s), NHID_OK);
    assert_true(s.initialized);
    assert_true(s.sealed);
    assert_int_equal(s.shares, 5);
    assert_int_equal(s.threshold, 3);
    assert_int_equal(s.progress, 0);
    assert_int_equal(s.term, 0);
    assert_true(nhid_barrier_sealed(f->b));
    for (int i = 0; i < 5; i++)
        assert_int_equal(f->shares[i][0], i + 1);

    assert_int_equal(nhid_barrier_init(f->b, 5, 3, &again, err, sizeof(err)), NHID_ERR_EXISTS);
    assert_non_null(strstr(err, "already initialized"));
    assert_null(again);
    /* A second barrier object on the same store sees the persisted state. */
    {
        struct nhid_barrier *b2 = NULL;
        assert_int_equal(nhid_barrier_new(f->st, &b2), NHID_OK);
        assert_int_equal(nhid_barrier_status(b2, &s), NHID_OK);
        assert_true(s.initialized);
        assert_int_equal(s.threshold, 3);
        nhid_barrier_free(b2);
    }
}

static void test_init_params(void **state)
{
    struct fixture *f = *state;
    uint8_t **sh = NULL;
    char err[160];
    (void)f;
    struct nhid_store_config cfg;
    struct nhid_store *st = NULL;
    struct nhid_barrier *b = NULL;
    char path[160];
    struct nhid_seal_status s;

    snprintf(path, sizeof(path), "%s/other.db", f->dir);
    cfg = (struct nhid_store_config){.backend = NULL, .path = path, .durable = false};
    assert_int_equal(nhid_store_open(&cfg, &st), NHID_OK);
    assert_int_equal(nhid_barrier_new(st, &b), NHID_OK);
    assert_int_equal(nhid_barrier_status(b, &s), NHID_OK);
    assert_false(s.initialized);
    assert_true(s.sealed);
    /* Unseal before init. */
    assert_int_equal(nhid_barrier_unseal(b, f->shares[0], NHID_SHARE_LEN, &s), NHID_ERR_INVALID);

    assert_int_equal(nhid_barrier_init(b, 0, 0, &sh, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "shares 0"));
    assert_int_equal(nhid_barrier_init(b, 256, 3, &sh, err, sizeof(err)), NHID_ERR_INVALID);
    assert_int_equal(nhid_barrier_init(b, 3, 4, &sh, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "threshold 4"));
    assert_int_equal(nhid_barrier_init(b, 3, 1, &sh, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "threshold 1"));
    assert_null(sh);
    assert_int_equal(nhid_barrier_status(b, &s), NHID_OK);
    assert_false(s.initialized);

    /* One share, threshold one: the share is 0x01 || root key. */
    assert_int_equal(nhid_barrier_init(b, 1, 1, &sh, err, sizeof(err)), NHID_OK);
    assert_int_equal(sh[0][0], 1);
    assert_int_equal(nhid_barrier_unseal(b, sh[0], NHID_SHARE_LEN, &s), NHID_OK);
    assert_false(s.sealed);
    assert_int_equal(s.term, 1);
    /* Unsealing again is a no-op that reports the status. */
    assert_int_equal(nhid_barrier_unseal(b, sh[0], NHID_SHARE_LEN, &s), NHID_OK);
    assert_false(s.sealed);
    nhid_barrier_seal(b);
    assert_true(nhid_barrier_sealed(b));
    /* A share of another barrier's root key is denied (the keyring tag fails). */
    assert_int_equal(nhid_barrier_unseal(b, f->shares[0], NHID_SHARE_LEN, &s), NHID_ERR_DENIED);
    assert_int_equal(nhid_barrier_status(b, &s), NHID_OK);
    assert_int_equal(s.progress, 0);
    assert_true(s.sealed);
    /* Root key directly (dev mode). */
    assert_int_equal(nhid_barrier_unseal_with_root_key(b, sh[0] + 1), NHID_OK);
    assert_false(nhid_barrier_sealed(b));
    assert_int_equal(nhid_barrier_unseal_with_root_key(b, f->shares[0] + 1), NHID_ERR_DENIED);
    nhid_barrier_seal(b);
    assert_int_equal(nhid_barrier_unseal_with_root_key(b, f->shares[0] + 1), NHID_ERR_DENIED);
    assert_true(nhid_barrier_sealed(b));

    nhid_shamir_free_shares(sh, 1, NHID_SHARE_LEN);
    nhid_barrier_free(b);
    nhid_store_close(st);
    nhid_barrier_free(NULL);
}

static void test_unseal_subsets(void **state)
{
    struct fixture *f = *state;
    struct nhid_seal_status s;

    /* Reset forgets submitted shares. */
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[0], NHID_SHARE_LEN, &s), NHID_OK);
    assert_int_equal(s.progress, 1);
    nhid_barrier_unseal_reset(f->b);
    assert_int_equal(nhid_barrier_status(f->b, &s), NHID_OK);
    assert_int_equal(s.progress, 0);
    assert_string_equal(s.nonce, "");
    static const int subsets[][3] = {{0, 1, 2}, {4, 2, 0}, {1, 3, 4}, {3, 0, 4}, {2, 3, 1}};

    for (size_t i = 0; i < sizeof(subsets) / sizeof(subsets[0]); i++) {
        unseal3(f, subsets[i][0], subsets[i][1], subsets[i][2]);
        assert_false(nhid_barrier_sealed(f->b));
        nhid_barrier_seal(f->b);
        assert_true(nhid_barrier_sealed(f->b));
    }
}

static void test_unseal_wrong_and_duplicate(void **state)
{
    struct fixture *f = *state;
    struct nhid_seal_status s;
    uint8_t bad[NHID_SHARE_LEN];
    char nonce[37];

    /* Duplicate share: refused, progress unchanged. */
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[0], NHID_SHARE_LEN, &s), NHID_OK);
    strcpy(nonce, s.nonce);
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[0], NHID_SHARE_LEN, &s),
                     NHID_ERR_INVALID);
    /* A different share claiming the same x: refused too. */
    memcpy(bad, f->shares[0], NHID_SHARE_LEN);
    bad[5] ^= 1;
    assert_int_equal(nhid_barrier_unseal(f->b, bad, NHID_SHARE_LEN, &s), NHID_ERR_INVALID);
    assert_int_equal(nhid_barrier_status(f->b, &s), NHID_OK);
    assert_int_equal(s.progress, 1);
    assert_string_equal(s.nonce, nonce);
    /* Malformed shares. */
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[1], NHID_SHARE_LEN - 1, &s),
                     NHID_ERR_INVALID);
    memset(bad, 0, sizeof(bad));
    assert_int_equal(nhid_barrier_unseal(f->b, bad, NHID_SHARE_LEN, &s), NHID_ERR_INVALID);

    /* A corrupted share: the combination fails the keyring tag → DENIED, progress reset. */
    memcpy(bad, f->shares[2], NHID_SHARE_LEN);
    bad[10] ^= 0x40;
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[1], NHID_SHARE_LEN, &s), NHID_OK);
    assert_int_equal(s.progress, 2);
    assert_int_equal(nhid_barrier_unseal(f->b, bad, NHID_SHARE_LEN, &s), NHID_ERR_DENIED);
    assert_int_equal(nhid_barrier_status(f->b, &s), NHID_OK);
    assert_true(s.sealed);
    assert_int_equal(s.progress, 0);
    assert_string_equal(s.nonce, "");

    /* The next attempt has a new nonce and works with good shares. */
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[3], NHID_SHARE_LEN, &s), NHID_OK);
    assert_string_not_equal(s.nonce, nonce);
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[4], NHID_SHARE_LEN, &s), NHID_OK);
    assert_int_equal(nhid_barrier_unseal(f->b, f->shares[0], NHID_SHARE_LEN, &s), NHID_OK);
    assert_false(s.sealed);
    assert_int_equal(s.term, 1);
}

static void test_sealed_errors(void **state)
{
    struct fixture *f = *state;
    char *v = NULL;
    uint8_t *ct = NULL, out[32];
    size_t ctlen = 0;
    uint32_t term = 0;
    int64_t t = 0;
    char cursor[NHID_STORE_KEY_MAX + 1] = "";

    assert_int_equal(bput(f, "secret/a", "x"), NHID_ERR_SEALED);
    assert_int_equal(bget(f, "secret/a", &v), NHID_ERR_SEALED); /* even when absent */
    assert_int_equal(nhid_barrier_encrypt(f->b, "k", (const uint8_t *)"x", 1, &ct, &ctlen),
                     NHID_ERR_SEALED);
    assert_int_equal(nhid_barrier_derive_key(f->b, "token-hmac", out), NHID_ERR_SEALED);
    assert_int_equal(nhid_barrier_rotate(f->b, &term, &t), NHID_ERR_SEALED);
    {
        struct nhid_txn *txn = NULL;
        uint8_t *pt = NULL;
        size_t ptlen = 0;
        uint8_t fake[64] = {0, 0, 0, 1};
        assert_int_equal(nhid_barrier_decrypt(f->b, "k", fake, sizeof(fake), &pt, &ptlen, &term),
                         NHID_ERR_SEALED);
        assert_int_equal(nhid_store_read_begin(f->st, &txn), NHID_OK);
        assert_int_equal(nhid_barrier_reencrypt_some(f->b, txn, 10, cursor, sizeof(cursor), NULL),
                         NHID_ERR_INTERNAL); /* read txn */
        nhid_store_read_end(txn);
    }
    /* Seal after use makes data unavailable again. */
    unseal3(f, 0, 1, 2);
    assert_int_equal(bput(f, "secret/a", "x"), NHID_OK);
    nhid_barrier_seal(f->b);
    assert_int_equal(bget(f, "secret/a", &v), NHID_ERR_SEALED);
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    char *v = NULL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;

    unseal3(f, 0, 1, 2);
    assert_int_equal(bput(f, "secret/db-password", "hunter2"), NHID_OK);
    assert_int_equal(bget(f, "secret/db-password", &v), NHID_OK);
    assert_string_equal(v, "hunter2");
    free(v);
    assert_int_equal(bput(f, "secret/empty", ""), NHID_OK);
    assert_int_equal(bget(f, "secret/empty", &v), NHID_OK);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(bget(f, "secret/none", &v), NHID_ERR_NOT_FOUND);

    /* Stored layout: term(4) || nonce(12) || ct || tag(16). */
    raw_get(f, "secret/db-password", &raw, &rawlen);
    assert_int_equal(rawlen, 4 + 12 + 7 + 16);
    assert_memory_equal(raw, "\0\0\0\1", 4);
    assert_null(memmem(raw, rawlen, "hunter2", 7));
    free(raw);

    /* The codec directly. */
    {
        uint8_t *ct = NULL, *pt = NULL;
        size_t ctlen = 0, ptlen = 0;
        uint32_t term = 0;
        assert_int_equal(nhid_barrier_encrypt(f->b, "k1", (const uint8_t *)"abc", 3, &ct, &ctlen),
                         NHID_OK);
        assert_int_equal(nhid_barrier_decrypt(f->b, "k1", ct, ctlen, &pt, &ptlen, &term), NHID_OK);
        assert_int_equal(ptlen, 3);
        assert_memory_equal(pt, "abc", 3);
        assert_int_equal(term, 1);
        free(pt);
        assert_int_equal(nhid_barrier_decrypt(f->b, "k2", ct, ctlen, &pt, &ptlen, &term),
                         NHID_ERR_TAMPERED);
        free(ct);
    }

    /* The barrier's own raw entries cannot be overwritten through it. */
    assert_int_equal(bput(f, "core/keyring", "x"), NHID_ERR_INVALID);
    assert_int_equal(bput(f, "core/seal-config", "x"), NHID_ERR_INVALID);
}

static void test_tamper_detection(void **state)
{
    struct fixture *f = *state;
    char *v = NULL;
    uint8_t *raw = NULL, *rawb = NULL;
    size_t rawlen = 0, rawblen = 0;

    unseal3(f, 0, 1, 2);
    assert_int_equal(bput(f, "secret/a", "value of A"), NHID_OK);
    assert_int_equal(bput(f, "secret/b", "value of B"), NHID_OK);
    raw_get(f, "secret/a", &raw, &rawlen);

    /* A flipped bit anywhere: term, nonce, ciphertext, tag. */
    {
        size_t offs[] = {3, 4, 16, 20, rawlen - 1};
        for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
            raw[offs[i]] ^= 0x01;
            raw_put(f, "secret/a", raw, rawlen);
            assert_int_equal(bget(f, "secret/a", &v), NHID_ERR_TAMPERED);
            raw[offs[i]] ^= 0x01;
        }
    }
    /* Truncated. */
    raw_put(f, "secret/a", raw, 10);
    assert_int_equal(bget(f, "secret/a", &v), NHID_ERR_TAMPERED);
    /* Restored: readable again. */
    raw_put(f, "secret/a", raw, rawlen);
    assert_int_equal(bget(f, "secret/a", &v), NHID_OK);
    assert_string_equal(v, "value of A");
    free(v);

    /* Swapped entries: A's ciphertext stored under B fails (AAD = storage key). */
    raw_get(f, "secret/b", &rawb, &rawblen);
    raw_put(f, "secret/b", raw, rawlen);
    assert_int_equal(bget(f, "secret/b", &v), NHID_ERR_TAMPERED);
    raw_put(f, "secret/a", rawb, rawblen);
    assert_int_equal(bget(f, "secret/a", &v), NHID_ERR_TAMPERED);
    free(raw);
    free(rawb);
}

struct reenc {
    struct nhid_barrier *b;
    char cursor[NHID_STORE_KEY_MAX + 1];
    size_t max;
    size_t done;
};

static int reenc_job(struct nhid_txn *txn, void *arg)
{
    struct reenc *r = arg;
    return nhid_barrier_reencrypt_some(r->b, txn, r->max, r->cursor, sizeof(r->cursor), &r->done);
}

struct bget_w {
    struct nhid_barrier *b;
    const char *key;
};

static int bget_writable_job(struct nhid_txn *txn, void *arg)
{
    struct bget_w *g = arg;
    uint8_t *v = NULL;
    size_t n = 0;
    int rc = nhid_barrier_get(g->b, txn, g->key, &v, &n);
    nhid_free_secret(v, n);
    return rc;
}

static void test_rotate_and_reencrypt(void **state)
{
    struct fixture *f = *state;
    char *v = NULL, key[32];
    uint32_t term = 0;
    int64_t t = 0;
    struct nhid_seal_status s;
    uint8_t d1[32], d2[32], d3[32];
    struct reenc r;
    size_t total = 0;
    int calls = 0;

    unseal3(f, 0, 1, 2);
    assert_int_equal(nhid_barrier_derive_key(f->b, "token-hmac", d1), NHID_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "data/%02d", i);
        assert_int_equal(bput(f, key, key), NHID_OK);
    }
    assert_int_equal(nhid_barrier_rotate(f->b, &term, &t), NHID_OK);
    assert_int_equal(term, 2);
    assert_true(t > 0);
    assert_int_equal(nhid_barrier_status(f->b, &s), NHID_OK);
    assert_int_equal(s.term, 2);

    /* New writes use term 2; old entries stay readable (term 1). */
    assert_int_equal(bput(f, "data/new", "new"), NHID_OK);
    assert_int_equal(raw_term(f, "data/new"), 2);
    assert_int_equal(raw_term(f, "data/00"), 1);
    assert_int_equal(bget(f, "data/00", &v), NHID_OK);
    assert_string_equal(v, "data/00");
    free(v);
    assert_int_equal(raw_term(f, "data/00"), 1); /* a read txn does not rewrite */

    /* Derived keys are stable across rotation and differ by purpose. */
    assert_int_equal(nhid_barrier_derive_key(f->b, "token-hmac", d2), NHID_OK);
    assert_memory_equal(d1, d2, 32);
    assert_int_equal(nhid_barrier_derive_key(f->b, "audit-hmac", d3), NHID_OK);
    assert_memory_not_equal(d1, d3, 32);

    /* A get in a writable txn re-encrypts lazily. */
    {
        struct bget_w g = {f->b, "data/00"};
        assert_int_equal(nhid_store_write(f->st, bget_writable_job, &g), NHID_OK);
        assert_int_equal(raw_term(f, "data/00"), 2);
    }

    /* The sweep, 3 at a time, rewrites the other 9 and ends with an empty cursor. */
    memset(&r, 0, sizeof(r));
    r.b = f->b;
    r.max = 3;
    do {
        assert_int_equal(nhid_store_write(f->st, reenc_job, &r), NHID_OK);
        total += r.done;
        calls++;
        assert_true(calls < 20);
    } while (r.cursor[0] != '\0');
    assert_int_equal(total, 9);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "data/%02d", i);
        assert_int_equal(raw_term(f, key), 2);
        assert_int_equal(bget(f, key, &v), NHID_OK);
        assert_string_equal(v, key);
        free(v);
    }
    /* The barrier's own entries are untouched by the sweep. */
    assert_int_equal(nhid_store_write(f->st, reenc_job, &r), NHID_OK);
    assert_int_equal(r.done, 0);

    /* Rotation is durable: after a restart the keyring has term 2 and data reads. */
    close_all(f);
    assert_int_equal(open_all(f), 0);
    unseal3(f, 4, 3, 2);
    assert_int_equal(nhid_barrier_status(f->b, &s), NHID_OK);
    assert_int_equal(s.term, 2);
    assert_int_equal(bget(f, "data/new", &v), NHID_OK);
    assert_string_equal(v, "new");
    free(v);
    assert_int_equal(nhid_barrier_derive_key(f->b, "token-hmac", d2), NHID_OK);
    assert_memory_equal(d1, d2, 32);
}

static int file_contains(const char *path, const void *needle, size_t nlen)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    size_t cap = 1 << 20, len = 0, n;
    int found;

    if (fp == NULL)
        return 0;
    buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(fp);
    found = memmem(buf, len, needle, nlen) != NULL;
    free(buf);
    return found;
}

static void test_no_plaintext_on_disk(void **state)
{
    struct fixture *f = *state;
    static const char planted[] = "PLANTED-SECRET-9f8e7d6c5b4a-DO-NOT-LEAK";
    uint8_t root[NHID_ROOT_KEY_LEN];
    const uint8_t *pick[3];
    char p[200];
    static const char *const suffixes[] = {"", "-wal", "-shm"};

    unseal3(f, 0, 1, 2);
    assert_int_equal(bput(f, "secret/planted", planted), NHID_OK);
    /* Before close (the value sits in the WAL) and after (checkpointed into the db). */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < 3; i++) {
            snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
            assert_false(file_contains(p, planted, strlen(planted)));
            assert_false(file_contains(p, "PLANTED-SECRET", 14));
        }
        if (round == 0)
            close_all(f);
    }
    /* Nor the root key. */
    pick[0] = f->shares[0];
    pick[1] = f->shares[1];
    pick[2] = f->shares[2];
    assert_int_equal(nhid_shamir_combine(pick, 3, NHID_ROOT_KEY_LEN, root), NHID_OK);
    assert_false(file_contains(f->path, root, sizeof(root)));
    assert_true(file_contains(f->path, "core/keyring", 12)); /* sanity: the file is readable */
    assert_int_equal(open_all(f), 0);
}

struct hammer {
    struct fixture *f;
    int id;
    int errors;
};

static void *hammer_main(void *p)
{
    struct hammer *h = p;
    char key[32], val[32], *v = NULL;

    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "h/%d/%d", h->id, i);
        snprintf(val, sizeof(val), "v%d.%d", h->id, i);
        if (bput(h->f, key, val) != NHID_OK) {
            h->errors++;
            continue;
        }
        if (bget(h->f, key, &v) != NHID_OK || strcmp(v, val) != 0)
            h->errors++;
        free(v);
        v = NULL;
    }
    return NULL;
}

/* Data operations from several threads while the keyring rotates. */
static void test_concurrent_rotate(void **state)
{
    struct fixture *f = *state;
    pthread_t th[4];
    struct hammer h[4];
    uint32_t term = 0;

    unseal3(f, 0, 1, 2);
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){f, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(nhid_barrier_rotate(f->b, &term, NULL), NHID_OK);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(h[i].errors, 0);
    }
    assert_int_equal(term, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unseal_subsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unseal_wrong_and_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_detection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_and_reencrypt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plaintext_on_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_rotate, setup, teardown),
    };
    nhid_log_set_level(NHID_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
