/*
 * kv — KV version 2 secrets engine, wire-compatible with Vault's
 * (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2).
 *
 * One secret = one metadata document (settings plus an index of its
 * versions, at most max_versions entries) and one document per version,
 * so a write is O(1) stored entries whatever the history length, a 1 MiB
 * value is written once, and trimming deletes exactly the oldest version.
 * Reads run inline on the request's read snapshot; every change runs in
 * the group-commit write transaction (NHID_ROUTE_WRITE) and is durable
 * before the reply.
 *
 * Secret values never reach a log: errors name fields and sizes, not values.
 */
#include "kv/kv_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barrier/barrier.h"
#include "core/json_text.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define CUSTOM_META_KEYS_MAX 64 /* Vault's limits on custom_metadata */
#define CUSTOM_META_KEY_MAX 128
#define CUSTOM_META_VALUE_MAX 512
#define LIST_MAX 10000        /* keys in one LIST answer (use ?after= to page) */
#define VERSIONS_ARG_MAX 1000 /* versions in one delete/undelete/destroy call */
#define SUBKEYS_DEPTH_MAX 64

const char *const kv_mounts[] = {"secret"};
const size_t kv_n_mounts = NHID_ARRAY_LEN(kv_mounts);

/* ---- small helpers ------------------------------------------------------ */

static int64_t jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

bool nhid_kv_path_valid(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n > KV_PATH_MAX || path[0] == '/' || path[n - 1] == '/')
        return false;
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return false;
        p += len;
        if (*p == '/')
            p++;
    }
    return true;
}

bool kv_req_mount(const struct nhid_request *req, char out[KV_MOUNT_MAX])
{
    const char *slash = strchr(req->path, '/');
    size_t len = slash ? (size_t)(slash - req->path) : strlen(req->path);
    if (len == 0 || len >= KV_MOUNT_MAX)
        return false;
    memcpy(out, req->path, len);
    out[len] = '\0';
    return true;
}

/*
 * The mount and secret path of a request; a 400 naming the problem if the
 * path is not a valid secret path (the HTTP layer already refused "..",
 * empty segments and control characters; this also refuses a folder).
 */
static int req_target(struct nhid_request *req, struct nhid_response *resp,
                      char mount[KV_MOUNT_MAX], const char **path)
{
    const char *p = nhid_req_param(req, "path");
    if (!kv_req_mount(req, mount))
        return nhid_resp_error(resp, 400, "invalid mount in path");
    if (p == NULL || *p == '\0')
        return nhid_resp_error(resp, 400, "missing secret path after %s/", mount);
    if (p[strlen(p) - 1] == '/')
        return nhid_resp_error(
            resp, 400, "path \"%.200s\" ends with \"/\": that names a folder, not a secret", p);
    if (!nhid_kv_path_valid(p))
        return nhid_resp_error(resp, 400,
                               "invalid secret path (at most %d bytes, no empty, \".\" or \"..\" "
                               "segments, no control characters)",
                               KV_PATH_MAX);
    *path = p;
    return NHID_OK;
}

static int key_meta(char *out, const char *mount, const char *path)
{
    return nhid_fmt(out, KV_KEY_MAX, "kv/%s/meta/%s", mount, path);
}

static int key_ver(char *out, const char *mount, const char *path, uint64_t v)
{
    return nhid_fmt(out, KV_KEY_MAX, "kv/%s/ver/%s/%020" PRIu64, mount, path, v);
}

static void fmt_ns(int64_t ns, char out[NHID_RFC3339_LEN])
{
    if (ns <= 0)
        out[0] = '\0';
    else
        nhid_time_format_ns(ns, out);
}

static json_t *duration_json(int64_t secs)
{
    char buf[64];
    nhid_duration_format(secs, buf, sizeof(buf));
    return json_string(buf);
}

/* 404 with an empty error list, as Vault answers for a missing secret. */
static int not_found(struct nhid_response *resp)
{
    json_decref(resp->errors);
    resp->errors = json_array();
    resp->status = 404;
    return NHID_ERR_NOT_FOUND;
}

/* Parse ?version=N (0 or absent: current). */
static int query_version(struct nhid_request *req, struct nhid_response *resp, uint64_t *out)
{
    char *v = nhid_req_query(req, "version");
    *out = 0;
    if (v == NULL)
        return NHID_OK;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    bool bad = *v == '\0' || *end != '\0' || v[0] == '-';
    free(v);
    if (bad)
        return nhid_resp_error(resp, 400, "query parameter \"version\": expected an integer");
    *out = n;
    return NHID_OK;
}

/* ---- config ------------------------------------------------------------- */

int kv_config_load(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                   struct kv_config *out)
{
    char key[KV_KEY_MAX];
    json_t *c = NULL;
    int rc = nhid_fmt(key, sizeof(key), "kv/%s/config", mount);
    if (rc < 0)
        return rc;
    struct kv_config cfg = {0, false, 0};
    rc = nhid_core_load_json(core, txn, key, &c);
    if (rc == NHID_ERR_NOT_FOUND)
        rc = NHID_OK;
    if (rc < 0)
        return rc;
    if (c) {
        cfg.max_versions = jint(c, "max_versions");
        cfg.cas_required = json_is_true(json_object_get(c, "cas_required"));
        cfg.delete_version_after = jint(c, "delete_version_after");
        json_decref(c);
    }
    *out = cfg;
    return NHID_OK;
}

static int h_config_read(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    struct kv_config cfg;
    if (!kv_req_mount(req, mount))
        return nhid_resp_error(resp, 400, "invalid mount");
    int rc = kv_config_load(req->core, req->txn, mount, &cfg);
    if (rc < 0)
        return rc;
    resp->data = json_pack("{s:b, s:o, s:I}", "cas_required", cfg.cas_required,
                           "delete_version_after", duration_json(cfg.delete_version_after),
                           "max_versions", (json_int_t)cfg.max_versions);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

static int h_config_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"max_versions", "cas_required", "delete_version_after",
                                         NULL};
    char mount[KV_MOUNT_MAX], key[KV_KEY_MAX];
    struct kv_config cfg;
    int rc = NHID_OK;
    json_t *c = NULL;
    if (!kv_req_mount(req, mount))
        return nhid_resp_error(resp, 400, "invalid mount");
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(kv_config_load(req->core, req->txn, mount, &cfg));
    NHID_TRY(nhid_body_int(req, resp, "max_versions", cfg.max_versions, 0, KV_MAX_VERSIONS_LIMIT,
                           &cfg.max_versions));
    NHID_TRY(nhid_body_bool(req, resp, "cas_required", cfg.cas_required, &cfg.cas_required));
    NHID_TRY(nhid_body_duration(req, resp, "delete_version_after", cfg.delete_version_after,
                                &cfg.delete_version_after));
    c = json_pack("{s:I, s:b, s:I}", "max_versions", (json_int_t)cfg.max_versions, "cas_required",
                  cfg.cas_required, "delete_version_after", (json_int_t)cfg.delete_version_after);
    NHID_CHECK_ALLOC(c);
    NHID_TRY(nhid_fmt(key, sizeof(key), "kv/%s/config", mount));
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, c));
out:
    json_decref(c);
    return rc;
}

/* ---- metadata documents ------------------------------------------------- */

/*
 * Stored metadata (compact names; the API spells them out):
 *   {"ct": created ns, "ut": updated ns, "cur": current version,
 *    "old": oldest version (0 until trimmed, as Vault), "mv": max_versions,
 *    "cas": cas_required, "dva": delete_version_after seconds,
 *    "cm": custom_metadata object or null,
 *    "v": {"<n>": {"ct": ns, "dt": deletion ns or 0, "x": destroyed}}}
 */
int kv_meta_load(struct nhid_core *core, struct nhid_txn *txn, const char *mount, const char *path,
                 json_t **out)
{
    char key[KV_KEY_MAX];
    int rc = key_meta(key, mount, path);
    if (rc < 0)
        return NHID_ERR_NOT_FOUND;
    return nhid_core_load_json(core, txn, key, out);
}

int kv_meta_save(struct nhid_core *core, struct nhid_txn *txn, const char *mount, const char *path,
                 json_t *meta)
{
    char key[KV_KEY_MAX];
    int rc = key_meta(key, mount, path);
    if (rc < 0)
        return rc;
    return nhid_core_save_json(core, txn, key, meta);
}

static json_t *meta_new(int64_t now_ns)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:n, s:{}}", "ct", (json_int_t)now_ns,
                     "ut", (json_int_t)now_ns, "cur", (json_int_t)0, "old", (json_int_t)0, "mv",
                     (json_int_t)0, "cas", 0, "dva", (json_int_t)0, "cm", "v");
}

json_t *kv_meta_version(json_t *meta, uint64_t version)
{
    char k[24];
    snprintf(k, sizeof(k), "%" PRIu64, version);
    return json_object_get(json_object_get(meta, "v"), k);
}

bool kv_version_gone(json_t *v, int64_t now_ns)
{
    if (json_is_true(json_object_get(v, "x")))
        return true;
    int64_t dt = jint(v, "dt");
    return dt > 0 && dt <= now_ns;
}

/* Vault's per-version metadata {created_time, custom_metadata, deletion_time, destroyed, version}.
 */
static json_t *version_out(json_t *meta, json_t *v, uint64_t version)
{
    char ct[NHID_RFC3339_LEN], dt[NHID_RFC3339_LEN];
    fmt_ns(jint(v, "ct"), ct);
    fmt_ns(jint(v, "dt"), dt);
    json_t *cm = json_object_get(meta, "cm");
    return json_pack("{s:s, s:O, s:s, s:b, s:I}", "created_time", ct, "custom_metadata",
                     cm ? cm : json_null(), "deletion_time", dt, "destroyed",
                     json_is_true(json_object_get(v, "x")), "version", (json_int_t)version);
}

/* Vault's metadata endpoint answer. */
static json_t *meta_out(json_t *meta)
{
    char ct[NHID_RFC3339_LEN], ut[NHID_RFC3339_LEN];
    fmt_ns(jint(meta, "ct"), ct);
    fmt_ns(jint(meta, "ut"), ut);
    json_t *versions = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(meta, "v"), k, v)
    {
        char vct[NHID_RFC3339_LEN], vdt[NHID_RFC3339_LEN];
        fmt_ns(jint(v, "ct"), vct);
        fmt_ns(jint(v, "dt"), vdt);
        json_object_set_new(versions, k,
                            json_pack("{s:s, s:s, s:b}", "created_time", vct, "deletion_time", vdt,
                                      "destroyed", json_is_true(json_object_get(v, "x"))));
    }
    json_t *cm = json_object_get(meta, "cm");
    return json_pack("{s:b, s:s, s:I, s:O, s:o, s:I, s:I, s:s, s:o}", "cas_required",
                     json_is_true(json_object_get(meta, "cas")), "created_time", ct,
                     "current_version", (json_int_t)jint(meta, "cur"), "custom_metadata",
                     cm ? cm : json_null(), "delete_version_after",
                     duration_json(jint(meta, "dva")), "max_versions", (json_int_t)jint(meta, "mv"),
                     "oldest_version", (json_int_t)jint(meta, "old"), "updated_time", ut,
                     "versions", versions);
}

/* Effective max versions: the secret's, else the mount's, else 10. */
static int64_t effective_max(json_t *meta, const struct kv_config *cfg)
{
    int64_t mv = jint(meta, "mv");
    if (mv <= 0)
        mv = cfg->max_versions;
    if (mv <= 0)
        mv = KV_DEFAULT_MAX_VERSIONS;
    return mv;
}

/* Smallest version number in the index (0 if none). */
static uint64_t min_version(json_t *meta)
{
    uint64_t min = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(meta, "v"), k, v)
    {
        uint64_t n = strtoull(k, NULL, 10);
        if (min == 0 || n < min)
            min = n;
    }
    return min;
}

/* Drop the oldest versions (index and data) beyond max. */
static int trim_versions(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                         const char *path, json_t *meta, int64_t max)
{
    (void)core;
    json_t *vs = json_object_get(meta, "v");
    char key[KV_KEY_MAX];
    bool trimmed = false;
    while ((int64_t)json_object_size(vs) > max) {
        uint64_t oldest = min_version(meta);
        int rc = key_ver(key, mount, path, oldest);
        if (rc == NHID_OK)
            rc = nhid_txn_delete(txn, key);
        if (rc < 0)
            return rc;
        char k[24];
        snprintf(k, sizeof(k), "%" PRIu64, oldest);
        json_object_del(vs, k);
        trimmed = true;
    }
    if (trimmed)
        json_object_set_new(meta, "old", json_integer((json_int_t)min_version(meta)));
    return NHID_OK;
}

int kv_data_load(struct nhid_core *core, struct nhid_txn *txn, const char *mount, const char *path,
                 uint64_t version, json_t **out)
{
    char key[KV_KEY_MAX];
    if (key_ver(key, mount, path, version) < 0)
        return NHID_ERR_NOT_FOUND;
    return nhid_core_load_json(core, txn, key, out);
}

int kv_write_version(struct nhid_core *core, struct nhid_txn *txn, struct kv_write *w)
{
    int rc = NHID_OK;
    json_t *meta = NULL;
    struct nhid_text data = {0}; /* the secret data as stored: wiped after */
    char key[KV_KEY_MAX];
    struct kv_config cfg;
    int64_t now = nhid_now_ns();

    NHID_TRY(kv_config_load(core, txn, w->mount, &cfg));
    rc = kv_meta_load(core, txn, w->mount, w->path, &meta);
    if (rc == NHID_ERR_NOT_FOUND) {
        meta = meta_new(now);
        NHID_CHECK_ALLOC(meta);
        rc = NHID_OK;
    }
    NHID_TRY(rc);
    int64_t cur = jint(meta, "cur");
    bool cas_required = cfg.cas_required || json_is_true(json_object_get(meta, "cas"));
    if (w->cas < 0 && cas_required && !w->system) {
        snprintf(w->err, sizeof(w->err), "check-and-set parameter required for this call");
        NHID_FAIL(NHID_ERR_INVALID);
    }
    if (w->cas >= 0 && w->cas != cur) {
        /* Vault's exact wording (clients match on it). */
        snprintf(w->err, sizeof(w->err),
                 "check-and-set parameter did not match the current version");
        NHID_FAIL(NHID_ERR_CONFLICT);
    }
    if (w->data == NULL)
        NHID_FAIL(NHID_ERR_INVALID);
    nhid_text_json(&data, w->data);
    if (data.failed)
        NHID_FAIL(NHID_ERR_NOMEM);
    if (data.len > core->limits.max_value_size) {
        snprintf(w->err, sizeof(w->err),
                 "secret data is %zu bytes; the limit is %zu (limits.max_value_size)", data.len,
                 core->limits.max_value_size);
        NHID_FAIL(NHID_ERR_TOO_LARGE);
    }
    uint64_t version = (uint64_t)cur + 1;
    NHID_TRY(key_ver(key, w->mount, w->path, version));
    NHID_TRY(nhid_barrier_put(core->barrier, txn, key, (const uint8_t *)data.buf, data.len));

    int64_t dva = jint(meta, "dva") > 0 ? jint(meta, "dva") : cfg.delete_version_after;
    char k[24];
    snprintf(k, sizeof(k), "%" PRIu64, version);
    json_t *v = json_pack("{s:I, s:I, s:b}", "ct", (json_int_t)now, "dt",
                          (json_int_t)(dva > 0 ? now + dva * 1000000000LL : 0), "x", 0);
    NHID_CHECK_ALLOC(v);
    json_object_set_new(json_object_get(meta, "v"), k, v);
    json_object_set_new(meta, "cur", json_integer((json_int_t)version));
    json_object_set_new(meta, "ut", json_integer(now));
    if (w->max_versions > 0)
        json_object_set_new(meta, "mv", json_integer(w->max_versions));
    NHID_TRY(trim_versions(core, txn, w->mount, w->path, meta, effective_max(meta, &cfg)));
    NHID_TRY(kv_meta_save(core, txn, w->mount, w->path, meta));
    w->version = version;
    w->meta = meta;
    meta = NULL;
out:
    nhid_text_free_secret(&data);
    json_decref(meta);
    return rc;
}

int kv_destroy_version(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                       const char *path, json_t *meta, uint64_t version)
{
    (void)core;
    json_t *v = kv_meta_version(meta, version);
    char key[KV_KEY_MAX];
    if (v == NULL)
        return NHID_ERR_NOT_FOUND;
    int rc = key_ver(key, mount, path, version);
    if (rc == NHID_OK)
        rc = nhid_txn_delete(txn, key);
    if (rc == NHID_OK)
        json_object_set_new(v, "x", json_true());
    return rc;
}

/* ---- data/ -------------------------------------------------------------- */

static int h_data_read(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    const char *path;
    uint64_t version;
    json_t *meta = NULL, *data = NULL;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    if ((rc = query_version(req, resp, &version)) < 0)
        return rc;
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    if (rc == NHID_ERR_NOT_FOUND)
        return not_found(resp);
    if (rc < 0)
        return rc;
    if (version == 0)
        version = (uint64_t)jint(meta, "cur");
    json_t *v = kv_meta_version(meta, version);
    if (v == NULL) {
        json_decref(meta);
        return not_found(resp);
    }
    json_t *vm = version_out(meta, v, version);
    if (kv_version_gone(v, nhid_now_ns())) {
        /* Vault: 404 whose data carries the version metadata and data: null. */
        json_decref(meta);
        resp->status = 404;
        resp->data = json_pack("{s:n, s:o}", "data", "metadata", vm);
        return NHID_OK;
    }
    rc = kv_data_load(req->core, req->txn, mount, path, version, &data);
    json_decref(meta);
    if (rc == NHID_ERR_NOT_FOUND) {
        json_decref(vm);
        return not_found(resp);
    }
    if (rc < 0) {
        json_decref(vm);
        return rc;
    }
    resp->data = json_pack("{s:o, s:o}", "data", data, "metadata", vm);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

/* options.cas from the body (-1 when absent). */
static int body_cas(struct nhid_request *req, struct nhid_response *resp, int64_t *cas)
{
    json_t *opts = json_object_get(req->body, "options");
    *cas = -1;
    if (opts == NULL || json_is_null(opts))
        return NHID_OK;
    if (!json_is_object(opts))
        return nhid_resp_error(resp, 400, "field \"options\": expected an object");
    json_t *c = json_object_get(opts, "cas");
    if (c == NULL || json_is_null(c))
        return NHID_OK;
    if (json_is_integer(c) && json_integer_value(c) >= 0) {
        *cas = json_integer_value(c);
        return NHID_OK;
    }
    if (json_is_string(c)) {
        char *end;
        const char *s = json_string_value(c);
        long long n = strtoll(s, &end, 10);
        if (*s && *end == '\0' && n >= 0) {
            *cas = n;
            return NHID_OK;
        }
    }
    return nhid_resp_error(resp, 400, "field \"options.cas\": expected a non-negative integer");
}

static int write_fail(struct nhid_response *resp, int rc, const char *err)
{
    switch (rc) {
    case NHID_ERR_CONFLICT:
    case NHID_ERR_INVALID:
        return nhid_resp_error(resp, 400, "%s", err[0] ? err : nhid_strerror(rc));
    case NHID_ERR_TOO_LARGE:
        return nhid_resp_error(resp, 413, "%s", err[0] ? err : nhid_strerror(rc));
    default:
        return nhid_resp_fail(resp, rc, err[0] ? err : NULL);
    }
}

static int respond_written(struct nhid_response *resp, struct kv_write *w)
{
    json_t *v = kv_meta_version(w->meta, w->version);
    resp->data = version_out(w->meta, v, w->version);
    json_decref(w->meta);
    w->meta = NULL;
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

static int h_data_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"data", "options", "version", NULL};
    char mount[KV_MOUNT_MAX];
    const char *path;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    if ((rc = nhid_body_only(req, resp, fields)) < 0)
        return rc;
    json_t *data = json_object_get(req->body, "data");
    if (data == NULL || json_is_null(data))
        return nhid_resp_error(resp, 400, "no data provided");
    if (!json_is_object(data))
        return nhid_resp_error(resp, 400, "field \"data\": expected a JSON object");
    struct kv_write w = {.mount = mount, .path = path, .data = data};
    if ((rc = body_cas(req, resp, &w.cas)) < 0)
        return rc;
    rc = kv_write_version(req->core, req->txn, &w);
    if (rc < 0)
        return write_fail(resp, rc, w.err);
    return respond_written(resp, &w);
}

json_t *nhid_kv_merge_patch(json_t *target, const json_t *patch)
{
    /* RFC 7386 §2: a non-object patch replaces the target. */
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
        if (target == NULL)
            return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        if (json_is_null(v)) {
            json_object_del(target, k);
            continue;
        }
        json_t *cur = json_object_get(target, k);
        json_t *merged = nhid_kv_merge_patch(cur ? json_incref(cur) : NULL, v);
        if (merged == NULL) {
            json_decref(target);
            return NULL;
        }
        json_object_set_new(target, k, merged);
    }
    return target;
}

/* PATCH data/<path>: RFC 7386 merge of body.data into the current version. */
static int h_data_patch(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"data", "options", NULL};
    char mount[KV_MOUNT_MAX];
    const char *path;
    json_t *meta = NULL, *cur = NULL;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    if ((rc = nhid_body_only(req, resp, fields)) < 0)
        return rc;
    json_t *patch = json_object_get(req->body, "data");
    if (patch == NULL || !json_is_object(patch))
        return nhid_resp_error(resp, 400, "no data provided (field \"data\": a JSON object)");
    struct kv_write w = {.mount = mount, .path = path};
    if ((rc = body_cas(req, resp, &w.cas)) < 0)
        return rc;
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    if (rc == NHID_ERR_NOT_FOUND)
        return not_found(resp);
    if (rc < 0)
        return rc;
    uint64_t version = (uint64_t)jint(meta, "cur");
    json_t *v = kv_meta_version(meta, version);
    if (v == NULL || kv_version_gone(v, nhid_now_ns())) {
        json_decref(meta);
        return not_found(resp);
    }
    json_decref(meta);
    rc = kv_data_load(req->core, req->txn, mount, path, version, &cur);
    if (rc == NHID_ERR_NOT_FOUND)
        return not_found(resp);
    if (rc < 0)
        return rc;
    cur = nhid_kv_merge_patch(cur, patch);
    if (cur == NULL)
        return NHID_ERR_NOMEM;
    w.data = cur;
    rc = kv_write_version(req->core, req->txn, &w);
    json_decref(cur);
    if (rc < 0)
        return write_fail(resp, rc, w.err);
    return respond_written(resp, &w);
}

/* DELETE data/<path>: soft-delete the current version. */
static int h_data_delete(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    const char *path;
    json_t *meta = NULL;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK; /* Vault: deleting nothing succeeds */
    if (rc < 0)
        return rc;
    int64_t now = nhid_now_ns();
    json_t *v = kv_meta_version(meta, (uint64_t)jint(meta, "cur"));
    if (v && !kv_version_gone(v, now)) {
        json_object_set_new(v, "dt", json_integer(now));
        rc = kv_meta_save(req->core, req->txn, mount, path, meta);
    }
    json_decref(meta);
    return rc;
}

/* ---- delete/ undelete/ destroy/ ----------------------------------------- */

enum vop { VOP_DELETE, VOP_UNDELETE, VOP_DESTROY };

static int versions_op(struct nhid_request *req, struct nhid_response *resp, enum vop op)
{
    static const char *const fields[] = {"versions", NULL};
    char mount[KV_MOUNT_MAX];
    const char *path;
    json_t *meta = NULL;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    if ((rc = nhid_body_only(req, resp, fields)) < 0)
        return rc;
    json_t *vers = json_object_get(req->body, "versions");
    if (vers && json_is_integer(vers)) {
        /* accept a single number too */
    } else if (!json_is_array(vers) || json_array_size(vers) == 0) {
        return nhid_resp_error(resp, 400, "no version number provided");
    }
    if (json_is_array(vers) && json_array_size(vers) > VERSIONS_ARG_MAX)
        return nhid_resp_error(resp, 400, "field \"versions\": more than %d versions",
                               VERSIONS_ARG_MAX);
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK; /* Vault: nothing to do */
    if (rc < 0)
        return rc;
    int64_t now = nhid_now_ns();
    size_t n = json_is_array(vers) ? json_array_size(vers) : 1;
    for (size_t i = 0; i < n && rc == NHID_OK; i++) {
        json_t *e = json_is_array(vers) ? json_array_get(vers, i) : vers;
        int64_t num = -1;
        if (json_is_integer(e))
            num = json_integer_value(e);
        else if (json_is_string(e))
            num = strtoll(json_string_value(e), NULL, 10);
        if (num <= 0) {
            rc = nhid_resp_error(resp, 400,
                                 "field \"versions\": element %zu is not a positive "
                                 "integer",
                                 i);
            break;
        }
        json_t *v = kv_meta_version(meta, (uint64_t)num);
        if (v == NULL)
            continue; /* Vault ignores unknown versions */
        switch (op) {
        case VOP_DELETE:
            if (!kv_version_gone(v, now))
                json_object_set_new(v, "dt", json_integer(now));
            break;
        case VOP_UNDELETE:
            if (!json_is_true(json_object_get(v, "x")))
                json_object_set_new(v, "dt", json_integer(0));
            break;
        case VOP_DESTROY:
            rc = kv_destroy_version(req->core, req->txn, mount, path, meta, (uint64_t)num);
            break;
        }
    }
    if (rc == NHID_OK)
        rc = kv_meta_save(req->core, req->txn, mount, path, meta);
    json_decref(meta);
    return rc;
}

static int h_delete(struct nhid_request *req, struct nhid_response *resp)
{
    return versions_op(req, resp, VOP_DELETE);
}

static int h_undelete(struct nhid_request *req, struct nhid_response *resp)
{
    return versions_op(req, resp, VOP_UNDELETE);
}

static int h_destroy(struct nhid_request *req, struct nhid_response *resp)
{
    return versions_op(req, resp, VOP_DESTROY);
}

/* ---- metadata/ ---------------------------------------------------------- */

static int h_meta_read(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    const char *path;
    json_t *meta = NULL;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    if (rc == NHID_ERR_NOT_FOUND)
        return not_found(resp);
    if (rc < 0)
        return rc;
    resp->data = meta_out(meta);
    json_decref(meta);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

static int check_custom_metadata(struct nhid_response *resp, json_t *cm, bool patch)
{
    if (!json_is_object(cm))
        return nhid_resp_error(resp, 400,
                               "field \"custom_metadata\": expected an object of "
                               "strings");
    if (json_object_size(cm) > CUSTOM_META_KEYS_MAX)
        return nhid_resp_error(resp, 400, "field \"custom_metadata\": more than %d keys",
                               CUSTOM_META_KEYS_MAX);
    const char *k;
    json_t *v;
    json_object_foreach(cm, k, v)
    {
        if (strlen(k) == 0 || strlen(k) > CUSTOM_META_KEY_MAX)
            return nhid_resp_error(resp, 400,
                                   "field \"custom_metadata\": keys must be 1 to %d bytes",
                                   CUSTOM_META_KEY_MAX);
        if (patch && json_is_null(v))
            continue;
        if (!json_is_string(v))
            return nhid_resp_error(resp, 400,
                                   "field \"custom_metadata\": value of key %zu is not a string",
                                   (size_t)0);
        if (strlen(json_string_value(v)) > CUSTOM_META_VALUE_MAX)
            return nhid_resp_error(resp, 400,
                                   "field \"custom_metadata\": values must be at most %d bytes",
                                   CUSTOM_META_VALUE_MAX);
    }
    return NHID_OK;
}

/* POST/PUT (patch=false) and PATCH (patch=true) metadata/<path>: only given fields change. */
static int meta_update(struct nhid_request *req, struct nhid_response *resp, bool patch)
{
    static const char *const fields[] = {"max_versions", "cas_required", "delete_version_after",
                                         "custom_metadata", NULL};
    char mount[KV_MOUNT_MAX];
    const char *path;
    json_t *meta = NULL;
    struct kv_config cfg;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(kv_config_load(req->core, req->txn, mount, &cfg));
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    if (rc == NHID_ERR_NOT_FOUND) {
        if (patch)
            return not_found(resp);
        meta = meta_new(nhid_now_ns());
        NHID_CHECK_ALLOC(meta);
        rc = NHID_OK;
    }
    NHID_TRY(rc);
    int64_t mv, dva;
    bool cas;
    NHID_TRY(
        nhid_body_int(req, resp, "max_versions", jint(meta, "mv"), 0, KV_MAX_VERSIONS_LIMIT, &mv));
    NHID_TRY(nhid_body_bool(req, resp, "cas_required", json_is_true(json_object_get(meta, "cas")),
                            &cas));
    NHID_TRY(nhid_body_duration(req, resp, "delete_version_after", jint(meta, "dva"), &dva));
    json_t *cm = json_object_get(req->body, "custom_metadata");
    if (cm && !json_is_null(cm)) {
        NHID_TRY(check_custom_metadata(resp, cm, patch));
        json_t *base = json_object_get(meta, "cm");
        json_t *next = patch ? nhid_kv_merge_patch(
                                   json_is_object(base) ? json_deep_copy(base) : json_object(), cm)
                             : json_deep_copy(cm);
        NHID_CHECK_ALLOC(next);
        if (json_object_size(next) > CUSTOM_META_KEYS_MAX) {
            json_decref(next);
            NHID_FAIL(nhid_resp_error(resp, 400, "field \"custom_metadata\": more than %d keys",
                                      CUSTOM_META_KEYS_MAX));
        }
        json_object_set_new(meta, "cm", next);
    } else if (cm && json_is_null(cm) && !patch) {
        json_object_set_new(meta, "cm", json_null());
    }
    json_object_set_new(meta, "mv", json_integer(mv));
    json_object_set_new(meta, "cas", json_boolean(cas));
    json_object_set_new(meta, "dva", json_integer(dva));
    json_object_set_new(meta, "ut", json_integer(nhid_now_ns()));
    NHID_TRY(trim_versions(req->core, req->txn, mount, path, meta, effective_max(meta, &cfg)));
    NHID_TRY(kv_meta_save(req->core, req->txn, mount, path, meta));
out:
    json_decref(meta);
    return rc;
}

static int h_meta_write(struct nhid_request *req, struct nhid_response *resp)
{
    return meta_update(req, resp, false);
}

static int h_meta_patch(struct nhid_request *req, struct nhid_response *resp)
{
    return meta_update(req, resp, true);
}

/* DELETE metadata/<path>: every version, the metadata and any rotation policy. */
static int h_meta_delete(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX], key[KV_KEY_MAX];
    const char *path;
    json_t *meta = NULL;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    if (rc == NHID_ERR_NOT_FOUND)
        return kv_rotation_forget(req->core, req->txn, mount, path);
    NHID_TRY(rc);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(meta, "v"), k, v)
    {
        NHID_TRY(key_ver(key, mount, path, strtoull(k, NULL, 10)));
        NHID_TRY(nhid_txn_delete(req->txn, key));
    }
    NHID_TRY(key_meta(key, mount, path));
    NHID_TRY(nhid_txn_delete(req->txn, key));
    NHID_TRY(kv_rotation_forget(req->core, req->txn, mount, path));
out:
    json_decref(meta);
    return rc;
}

/* LIST metadata/<prefix>/: immediate children; folders end with "/". */
struct list_ctx {
    json_t *keys;
    size_t plen;
    size_t limit;
    bool stopped_at_folder;
    char next[KV_KEY_MAX + 2];
};

static int list_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct list_ctx *c = arg;
    const char *rest = key + c->plen;
    const char *slash = strchr(rest, '/');
    if (slash == NULL) {
        json_array_append_new(c->keys, json_string(rest));
        return json_array_size(c->keys) >= c->limit;
    }
    /* A folder: report it once, then skip past every key under it. */
    size_t flen = (size_t)(slash - rest);
    json_array_append_new(c->keys, json_stringn(rest, flen + 1));
    /* '0' is the byte after '/': the first key beyond "<folder>/..." */
    if (nhid_fmt(c->next, sizeof(c->next), "%.*s%.*s0", (int)c->plen, key, (int)flen, rest) < 0)
        return 1; /* cannot happen: the key itself fitted */
    c->stopped_at_folder = true;
    return 1;
}

static int h_meta_list(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX], prefix[KV_KEY_MAX], end[KV_KEY_MAX];
    int rc = NHID_OK;
    char *after = NULL, *limit_s = NULL;
    struct list_ctx c = {0};
    if (!kv_req_mount(req, mount))
        return nhid_resp_error(resp, 400, "invalid mount");
    const char *p = nhid_req_param(req, "path");
    if (p == NULL)
        p = "";
    size_t plen = strlen(p);
    if (plen > KV_PATH_MAX)
        return nhid_resp_error(resp, 400, "path longer than %d bytes", KV_PATH_MAX);
    NHID_TRY(nhid_fmt(prefix, sizeof(prefix), "kv/%s/meta/%s%s", mount, p,
                      (plen && p[plen - 1] != '/') ? "/" : ""));
    /* Every prefix ends with '/': the end of its range is the same with '0'. */
    memcpy(end, prefix, strlen(prefix) + 1);
    end[strlen(end) - 1] = '0';
    after = nhid_req_query(req, "after");
    limit_s = nhid_req_query(req, "limit");
    c.limit = limit_s ? strtoul(limit_s, NULL, 10) : 0;
    if (c.limit == 0 || c.limit > LIST_MAX)
        c.limit = LIST_MAX;
    c.keys = json_array();
    NHID_CHECK_ALLOC(c.keys);
    c.plen = strlen(prefix);
    char start[KV_KEY_MAX + 2];
    if (after && *after) {
        size_t alen = strlen(after);
        if (alen > KV_PATH_MAX)
            NHID_FAIL(nhid_resp_error(resp, 400, "query parameter \"after\": too long"));
        if (after[alen - 1] == '/')
            NHID_TRY(nhid_fmt(start, sizeof(start), "%s%.*s0", prefix, (int)(alen - 1), after));
        else
            NHID_TRY(nhid_fmt(start, sizeof(start), "%s%s\x01", prefix, after));
    } else {
        NHID_TRY(nhid_fmt(start, sizeof(start), "%s", prefix));
    }
    for (;;) {
        c.stopped_at_folder = false;
        size_t before = json_array_size(c.keys);
        NHID_TRY(nhid_txn_scan(req->txn, start, end, c.limit - before, true, list_cb, &c));
        if (json_array_size(c.keys) >= c.limit || !c.stopped_at_folder)
            break;
        NHID_TRY(nhid_fmt(start, sizeof(start), "%s", c.next));
    }
    if (json_array_size(c.keys) == 0) {
        rc = not_found(resp);
        goto out;
    }
    resp->data = json_pack("{s:O}", "keys", c.keys);
    NHID_CHECK_ALLOC(resp->data);
out:
    json_decref(c.keys);
    free(after);
    free(limit_s);
    return rc;
}

/* ---- subkeys/ ----------------------------------------------------------- */

/* Replace every non-object leaf by null, objects deeper than depth by null (0 = unlimited). */
static json_t *subkeys_of(const json_t *obj, int64_t depth, int64_t level)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    if (out == NULL)
        return NULL;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (json_is_object(v) && json_object_size(v) > 0 && (depth == 0 || level < depth) &&
            level < SUBKEYS_DEPTH_MAX)
            json_object_set_new(out, k, subkeys_of(v, depth, level + 1));
        else
            json_object_set_new(out, k, json_null());
    }
    return out;
}

static int h_subkeys(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    const char *path;
    uint64_t version;
    json_t *meta = NULL, *data = NULL;
    int rc = req_target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    if ((rc = query_version(req, resp, &version)) < 0)
        return rc;
    int64_t depth = 0;
    char *d = nhid_req_query(req, "depth");
    if (d) {
        char *endp;
        depth = strtoll(d, &endp, 10);
        bool bad = *d == '\0' || *endp != '\0' || depth < 0;
        free(d);
        if (bad)
            return nhid_resp_error(resp, 400,
                                   "query parameter \"depth\": expected an integer "
                                   ">= 0");
    }
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    if (rc == NHID_ERR_NOT_FOUND)
        return not_found(resp);
    if (rc < 0)
        return rc;
    if (version == 0)
        version = (uint64_t)jint(meta, "cur");
    json_t *v = kv_meta_version(meta, version);
    if (v == NULL || kv_version_gone(v, nhid_now_ns())) {
        json_decref(meta);
        return not_found(resp);
    }
    json_t *vm = version_out(meta, v, version);
    json_decref(meta);
    rc = kv_data_load(req->core, req->txn, mount, path, version, &data);
    if (rc < 0) {
        json_decref(vm);
        return rc == NHID_ERR_NOT_FOUND ? not_found(resp) : rc;
    }
    resp->data = json_pack("{s:o, s:o}", "subkeys", subkeys_of(data, depth, 1), "metadata", vm);
    json_decref(data);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

/* ---- engine ------------------------------------------------------------- */

#define W NHID_ROUTE_WRITE
#define O NHID_ROUTE_OPTIMISTIC /* a new version: CPU work off the writer thread */
/* One block of routes per mount (kv_mounts); the handlers read the mount from the path. */
#define KV_ROUTES(m)                                                                               \
    {m "/config", NHID_M_GET, 0, h_config_read, "read"},                                           \
        {m "/config", NHID_M_WRITE, W, h_config_write, "update"},                                  \
        {m "/data/*path", NHID_M_GET, 0, h_data_read, "read"},                                     \
        {m "/data/*path", NHID_M_WRITE, W | O, h_data_write, "update"},                            \
        {m "/data/*path", NHID_M_PATCH, W, h_data_patch, "update"},                                \
        {m "/data/*path", NHID_M_DELETE, W, h_data_delete, "delete"},                              \
        {m "/delete/*path", NHID_M_WRITE, W, h_delete, "update"},                                  \
        {m "/undelete/*path", NHID_M_WRITE, W, h_undelete, "update"},                              \
        {m "/destroy/*path", NHID_M_WRITE, W, h_destroy, "update"},                                \
        {m "/metadata", NHID_M_LIST, 0, h_meta_list, "list"},                                      \
        {m "/metadata/*path", NHID_M_LIST, 0, h_meta_list, "list"},                                \
        {m "/metadata/*path", NHID_M_GET, 0, h_meta_read, "read"},                                 \
        {m "/metadata/*path", NHID_M_WRITE, W, h_meta_write, "update"},                            \
        {m "/metadata/*path", NHID_M_PATCH, W, h_meta_patch, "update"},                            \
        {m "/metadata/*path", NHID_M_DELETE, W, h_meta_delete, "delete"},                          \
        {m "/subkeys/*path", NHID_M_GET, 0, h_subkeys, "read"},                                    \
        {m "/rotation/*path", NHID_M_GET, 0, kv_h_rotation_read, "read"},                          \
        {m "/rotation/*path", NHID_M_WRITE, W, kv_h_rotation_write, "update"},                     \
        {m "/rotation/*path", NHID_M_DELETE, W, kv_h_rotation_delete, "delete"},                   \
        {m "/rotate/*path", NHID_M_WRITE, W, kv_h_rotate, "rotate"},                               \
    {                                                                                              \
        m "/rotation-public/*path", NHID_M_GET, 0, kv_h_rotation_public, "read"                    \
    }

static const struct nhid_route kv_routes[] = {
    KV_ROUTES("secret"),
};

static const struct nhid_job kv_jobs[] = {
    {"kv-rotation", 1, kv_rotation_job},
};

const struct nhid_engine nhid_kv_engine = {
    .name = "kv",
    .routes = kv_routes,
    .n_routes = NHID_ARRAY_LEN(kv_routes),
    .jobs = kv_jobs,
    .n_jobs = NHID_ARRAY_LEN(kv_jobs),
};
