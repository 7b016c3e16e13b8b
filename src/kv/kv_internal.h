/* kv_internal.h — shared by kv.c (KV v2 endpoints) and kv_rotate.c (rotation). */
#ifndef NHID_KV_INTERNAL_H
#define NHID_KV_INTERNAL_H

#include <inttypes.h>
#include <stdint.h>

#include "kv/kv.h"

#define KV_MOD "kv"
#define KV_PATH_MAX 768              /* bytes in a secret path (keys stay < 1 KiB) */
#define KV_MOUNT_MAX 64
#define KV_KEY_MAX 1024
#define KV_DEFAULT_MAX_VERSIONS 10   /* Vault's default when max_versions is 0 */
#define KV_MAX_VERSIONS_LIMIT 10000  /* bound on versions kept per secret */

/* The mounts served (each is a path prefix; routes are generated per mount). */
extern const char *const kv_mounts[];
extern const size_t kv_n_mounts;

/* Mount settings (kv/<mount>/config). */
struct kv_config {
    int64_t max_versions;
    bool cas_required;
    int64_t delete_version_after; /* seconds, 0 = never */
};

/* Inputs and outputs of writing one new version. */
struct kv_write {
    const char *mount;
    const char *path;
    const json_t *data;      /* the secret object (borrowed) */
    int64_t cas;             /* -1: none given */
    int64_t max_versions;    /* >0: set the secret's max_versions (rotation) */
    bool system;             /* the scheduler writes: cas_required does not apply */
    /* out */
    uint64_t version;
    json_t *meta;            /* the metadata after the write (owned by caller) */
    char err[160];
};

NHID_MUST_CHECK int kv_config_load(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                                   struct kv_config *out);
NHID_MUST_CHECK int kv_meta_load(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                                 const char *path, json_t **out);
NHID_MUST_CHECK int kv_meta_save(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                                 const char *path, json_t *meta);
/*
 * Write a new version (checks cas, size, trims to max_versions).
 * NHID_ERR_CONFLICT (cas mismatch), NHID_ERR_INVALID (cas required),
 * NHID_ERR_TOO_LARGE, with a message in w->err.
 */
NHID_MUST_CHECK int kv_write_version(struct nhid_core *core, struct nhid_txn *txn,
                                     struct kv_write *w);
/* Mark a version destroyed and delete its data. NHID_ERR_NOT_FOUND if unknown. */
NHID_MUST_CHECK int kv_destroy_version(struct nhid_core *core, struct nhid_txn *txn,
                                       const char *mount, const char *path, json_t *meta,
                                       uint64_t version);
/* Load one version's data. NHID_ERR_NOT_FOUND if absent. */
NHID_MUST_CHECK int kv_data_load(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                                 const char *path, uint64_t version, json_t **out);
/* The version object in meta ("v" map), or NULL. */
json_t *kv_meta_version(json_t *meta, uint64_t version);
/* Is the version soft-deleted (deletion time reached) or destroyed at now_ns? */
bool kv_version_gone(json_t *v, int64_t now_ns);

/* Mount (first segment of req->path) into out; false if too long. */
bool kv_req_mount(const struct nhid_request *req, char out[KV_MOUNT_MAX]);

/* Rotation (kv_rotate.c). */
int kv_h_rotation_read(struct nhid_request *req, struct nhid_response *resp);
int kv_h_rotation_write(struct nhid_request *req, struct nhid_response *resp);
int kv_h_rotation_delete(struct nhid_request *req, struct nhid_response *resp);
int kv_h_rotate(struct nhid_request *req, struct nhid_response *resp);
int kv_h_rotation_public(struct nhid_request *req, struct nhid_response *resp);
int kv_rotation_job(struct nhid_core *core);
/* Remove a secret's rotation policy and its index entries (metadata delete). */
NHID_MUST_CHECK int kv_rotation_forget(struct nhid_core *core, struct nhid_txn *txn,
                                       const char *mount, const char *path);

#endif /* NHID_KV_INTERNAL_H */
