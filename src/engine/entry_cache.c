/*
 * entry_cache — decoded barrier entries kept per thread, shared read-only.
 *
 * Every token-authenticated request loads its token's entry: an SQLite
 * read, an AES-GCM decryption and a JSON parse, on the event loop that
 * serves it. Each thread keeps the entries it decoded last, keyed by
 * storage key, with the exact bytes stored and the snapshot stamp they
 * were read at (store.h, "caches of stored values"). If no write batch
 * has written the key since that stamp, the entry is what the caller's
 * transaction would read and nothing is read at all (a staged txn still
 * records the read for the writer's validation). Otherwise the row is
 * read from the caller's own transaction and compared with the stored
 * bytes, so a changed, deleted or re-encrypted entry is seen at once;
 * equal stored bytes under one barrier mean an equal value (AES-256-GCM,
 * authenticated, with the key name as associated data), so only the
 * decryption and the parse are skipped. Either way a hit is exactly what
 * nhid_core_load_json would have returned. Sealed, nothing is returned
 * (the barrier refuses first). The writer's own txn has no stamp: it
 * always reads.
 *
 * The cache holds references, not copies: callers get a value they must
 * not modify. Memory is bounded by ENTRY_CACHE_SLOTS entries per thread of
 * at most ENTRY_CACHE_VALUE_MAX stored bytes; it is freed when the thread
 * exits.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "barrier/barrier.h"
#include "engine/engine.h"
#include "store/store.h"

#define ENTRY_CACHE_SLOTS 256
#define ENTRY_CACHE_VALUE_MAX 4096 /* larger entries are decoded every time */

struct cache_slot {
    const struct nhid_barrier *barrier;
    char *key;
    uint8_t *stored; /* the ciphertext as stored */
    size_t stored_len;
    json_t *value;
    bool stamped;   /* stamp is the snapshot stamp the stored bytes were read at, */
    uint64_t stamp; /* in the store numbered `store` (nhid_store_instance) */
    uint64_t store;
};

struct entry_cache {
    struct cache_slot slots[ENTRY_CACHE_SLOTS];
};

static pthread_key_t g_cache_key;
static pthread_once_t g_cache_once = PTHREAD_ONCE_INIT;
static bool g_cache_ready;

static void slot_clear(struct cache_slot *s)
{
    free(s->key);
    free(s->stored);
    json_decref(s->value);
    memset(s, 0, sizeof(*s));
}

static void cache_free(void *p)
{
    struct entry_cache *c = p;
    for (size_t i = 0; c && i < ENTRY_CACHE_SLOTS; i++)
        slot_clear(&c->slots[i]);
    free(c);
}

static void cache_key_create(void)
{
    g_cache_ready = pthread_key_create(&g_cache_key, cache_free) == 0;
}

static struct entry_cache *thread_cache(void)
{
    pthread_once(&g_cache_once, cache_key_create);
    if (!g_cache_ready)
        return NULL;
    struct entry_cache *c = pthread_getspecific(g_cache_key);
    if (c == NULL) {
        c = calloc(1, sizeof(*c));
        if (c != NULL && pthread_setspecific(g_cache_key, c) != 0) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

/* FNV-1a over the key: picks the one slot a key may occupy. */
static size_t slot_index(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % ENTRY_CACHE_SLOTS;
}

struct probe {
    const struct cache_slot *slot;
    const struct nhid_barrier *barrier;
    bool hit;
    uint8_t *stored; /* on a miss: a copy of the stored bytes */
    size_t stored_len;
};

static int probe_stored(const uint8_t *val, size_t len, void *arg)
{
    struct probe *pr = arg;
    const struct cache_slot *s = pr->slot;
    if (s->value != NULL && s->barrier == pr->barrier && s->stored_len == len &&
        memcmp(s->stored, val, len) == 0) {
        pr->hit = true;
        return NHID_OK;
    }
    pr->stored = malloc(len ? len : 1);
    if (pr->stored == NULL)
        return NHID_ERR_NOMEM;
    memcpy(pr->stored, val, len);
    pr->stored_len = len;
    return NHID_OK;
}

int nhid_core_load_json_shared(struct nhid_core *core, struct nhid_txn *txn, const char *key,
                               json_t **out)
{
    struct entry_cache *c = thread_cache();
    if (c == NULL)
        return nhid_core_load_json(core, txn, key, out);
    if (nhid_barrier_sealed(core->barrier))
        return NHID_ERR_SEALED;
    /* A staged txn's own write is not in the store yet: never cache it. */
    if (nhid_txn_wrote(txn, key))
        return nhid_core_load_json(core, txn, key, out);
    struct cache_slot *s = &c->slots[slot_index(key)];
    if (s->key != NULL && strcmp(s->key, key) != 0)
        s = NULL; /* another key holds the slot: probe against nothing */
    uint64_t stamp = 0, store = nhid_store_instance(nhid_txn_store(txn));
    bool stamped = nhid_txn_stamp(txn, &stamp);
    /* The store's number, not the pointers: a later store or barrier may reuse an address. */
    if (s && s->value && s->barrier == core->barrier && stamped && s->stamped &&
        s->store == store && s->stamp <= stamp &&
        nhid_store_unwritten_since(nhid_txn_store(txn), key, s->stamp)) {
        int nr = nhid_txn_note_read(txn, key, s->stored, s->stored_len);
        if (nr == NHID_OK) {
            /*
             * Every batch up to this txn's stamp is visible here and none
             * wrote the key: the entry is as valid at this stamp. Moving the
             * stamp forward keeps later checks to the writes since now.
             */
            s->stamp = stamp;
            *out = json_incref(s->value);
            return NHID_OK;
        }
        if (nr != NHID_ERR_UNSUPPORTED)
            return nr;
        /* the staged txn wrote the key itself: read it below */
    }
    struct cache_slot none = {0};
    struct probe pr = {.slot = s ? s : &none, .barrier = core->barrier};
    int rc = nhid_txn_get_with(txn, key, probe_stored, &pr);
    if (rc < 0)
        return rc;
    if (pr.hit) {
        /* The same bytes in this snapshot: valid as of its stamp. */
        s->stamped = stamped;
        s->stamp = stamp;
        s->store = store;
        *out = json_incref(s->value);
        return NHID_OK;
    }
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    uint32_t term = 0;
    json_t *value = NULL;
    rc = nhid_barrier_decrypt(core->barrier, key, pr.stored, pr.stored_len, &pt, &ptlen, &term);
    if (rc == NHID_OK) {
        json_error_t jerr;
        value = json_loadb((const char *)pt, ptlen, JSON_ALLOW_NUL, &jerr);
        nhid_free_secret(pt, ptlen);
        if (value == NULL) {
            nhid_error("engine", "stored entry %s is not valid JSON", key);
            rc = NHID_ERR_INTERNAL;
        }
    }
    if (rc < 0 || pr.stored_len > ENTRY_CACHE_VALUE_MAX) {
        free(pr.stored);
        if (rc == NHID_OK)
            *out = value;
        return rc;
    }
    s = &c->slots[slot_index(key)];
    char *k = strdup(key);
    if (k == NULL) {
        free(pr.stored);
        *out = value;
        return NHID_OK;
    }
    slot_clear(s);
    *s = (struct cache_slot){.barrier = core->barrier,
                             .key = k,
                             .stored = pr.stored,
                             .stored_len = pr.stored_len,
                             .value = json_incref(value),
                             .stamped = stamped,
                             .stamp = stamp,
                             .store = store};
    *out = value;
    return NHID_OK;
}
