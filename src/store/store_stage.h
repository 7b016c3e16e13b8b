/*
 * store_stage.h — the staged (optimistic) txn layer, shared between
 * sqlite.c (which dispatches a staged nhid_txn's operations here) and
 * stage.c. Not for use outside src/store/: engines see only store.h.
 */
#ifndef NHID_STORE_STAGE_H
#define NHID_STORE_STAGE_H

#include "store/store.h"

struct nhid_stage;

/* base: a read txn (its snapshot bounds what may be skipped) or the writer's txn. */
struct nhid_stage *stage_new(struct nhid_txn *base);
void stage_free(struct nhid_stage *s);
bool stage_usable(const struct nhid_stage *s);
size_t stage_write_count(const struct nhid_stage *s);

int stage_get_with(struct nhid_stage *s, const char *key, nhid_value_fn fn, void *arg);
int stage_put(struct nhid_stage *s, const char *key, const uint8_t *val, size_t len);
int stage_delete(struct nhid_stage *s, const char *key);
int stage_delete_prefix(struct nhid_stage *s);
int stage_scan(struct nhid_stage *s, const char *start, const char *end, size_t limit,
               bool keys_only, nhid_scan_fn cb, void *arg);
int stage_scan_prefix(struct nhid_stage *s, const char *prefix, const char *after, size_t limit,
                      bool keys_only, nhid_scan_fn cb, void *arg);
int stage_count_prefix(struct nhid_stage *s, const char *prefix, uint64_t *count);

/*
 * Skipping re-reads (sqlite.c). The writer remembers, per hash slot of a
 * key, the last batch that wrote any key of that slot, and the last batch
 * that deleted a range. A read txn's snapshot holds at least every batch
 * up to the batches_done it read before its BEGIN
 * (store_txn_snapshot_batches). So if neither the key's slot nor a range
 * delete was written by a later batch (including the running one, whose
 * number is higher), the key holds what the snapshot read and the writer
 * need not read it again. A collision or a rolled-back write only costs
 * a re-read.
 */
/* FNV-1a (64-bit) over n bytes, from h (STORE_FNV_INIT to start): change detection and slots. */
#define STORE_FNV_INIT 14695981039346656037ull
uint64_t store_fnv(uint64_t h, const void *p, size_t n);

uint64_t store_txn_snapshot_batches(const struct nhid_txn *base);
/* The staged txn's snapshot stamp (nhid_txn_stamp); false when its base is the writer's txn. */
bool stage_stamp(const struct nhid_stage *s, uint64_t *stamp);
bool stage_wrote(struct nhid_stage *s, const char *key);
/* nhid_txn_note_read on a staged txn; NHID_ERR_UNSUPPORTED if it has written key itself. */
int stage_note_get(struct nhid_stage *s, const char *key, const uint8_t *val, size_t len);
bool store_unwritten_since(struct nhid_txn *w, const char *key, uint64_t snap_batches);

/* Validate the read set against w and apply the writes (see store.h). */
int stage_apply(struct nhid_stage *s, struct nhid_txn *w);

#endif /* NHID_STORE_STAGE_H */
