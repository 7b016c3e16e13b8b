/* identity_internal.h — shared by the identity module's .c files only. */
#ifndef NHID_IDENTITY_INTERNAL_H
#define NHID_IDENTITY_INTERNAL_H

#include <stdio.h>
#include <string.h>

#include "identity/identity.h"
#include "store/store.h"

#define IDM_MOD "identity"
#define IDM_NETS_MAX 8 /* distinct source networks remembered per credential/identity */

/* ---- a small string-keyed hash map (not thread-safe; callers lock) ------ */

struct hent {
    char *key;
    void *val;
    struct hent *next;
};

struct hmap {
    struct hent **b;
    size_t nb, n;
};

void *hmap_get(const struct hmap *m, const char *key);
/* Insert key (copied) → val; returns NHID_ERR_NOMEM. Replaces nothing: caller checks get first. */
int hmap_put(struct hmap *m, const char *key, void *val);
/* Remove key; returns its value (caller frees) or NULL. */
void *hmap_del(struct hmap *m, const char *key);
/* Free all entries; free_val (may be NULL) frees each value. */
void hmap_clear(struct hmap *m, void (*free_val)(void *));

/* ---- the identity gate (suspended/decommissioned entity ids) ------------ */

void idm_gate_set(const char *entity_id, const char *name, const char *state);
void idm_gate_clear_all(void);
int idm_gate_check(struct nhid_core *core, const char *entity_id, char *msg, size_t msglen);

/* ---- in-memory usage counters, flushed by the identity-flush job -------- */

struct idm_seen {
    int64_t last_seen;
    uint64_t ok, failed;
    char method[24];
    char source[64];
};

struct idm_use {
    int64_t last_used;
    uint64_t uses;
    char source[64];
    char nets[IDM_NETS_MAX][64];
    unsigned n_nets;
};

/* Move the pending counters out (caller owns the maps; hmap_clear(free)). */
void idm_take_seen(struct hmap *out);
void idm_take_uses(struct hmap *out);

/* Flush every pending counter to storage. */
int idm_flush(struct nhid_core *core);

/* ---- keys ------------------------------------------------------------- */

/* snprintf into out; NHID_ERR_TOO_LARGE when it does not fit. */
int idm_key(char *out, size_t len, const char *fmt, ...) NHID_PRINTF(3, 4);

/* true if key exists (no decryption, no copy). */
bool idm_exists(struct nhid_txn *txn, const char *key);
int idm_put_empty(struct nhid_txn *txn, const char *key);

const char *idm_jstr(const json_t *o, const char *k);
int64_t idm_jint(const json_t *o, const char *k);

#endif
