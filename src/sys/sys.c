/* sys — system endpoints with Vault's JSON shapes. */
#include "sys/sys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/token/token.h"
#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define MOD "sys"
#define AUDIT_KEY_PREFIX "sys/audit/"
#define CLUSTER_NAME "nhid"

/* ---- health and seal status --------------------------------------------- */

static int query_code(struct nhid_request *req, const char *name, int def)
{
    char *v = nhid_req_query(req, name);
    int code = def;
    if (v) {
        int c = atoi(v);
        if (c >= 100 && c <= 599)
            code = c;
    }
    free(v);
    return code;
}

static int h_health(struct nhid_request *req, struct nhid_response *resp)
{
    struct nhid_seal_status st;
    int rc = nhid_barrier_status(req->core->barrier, &st);
    if (rc < 0)
        return rc;
    struct nhid_audit *a = req->core->audit;
    bool audit_ok = a == NULL || nhid_audit_device_count(a) == 0 || nhid_audit_healthy(a);
    resp->raw = json_pack("{s:b, s:b, s:b, s:b, s:s, s:s, s:I, s:s, s:s, s:s, s:{s:b, s:I, s:i}}",
                          "initialized", st.initialized, "sealed", st.sealed, "standby", false,
                          "performance_standby", false, "replication_performance_mode",
                          "disabled", "replication_dr_mode", "disabled", "server_time_utc",
                          (json_int_t)nhid_now(), "version", NHID_VERSION, "cluster_name",
                          CLUSTER_NAME, "cluster_id", "", "audit", "healthy", audit_ok,
                          "failures", (json_int_t)(a ? nhid_audit_failure_count(a) : 0),
                          "devices", (int)(a ? nhid_audit_device_count(a) : 0));
    /* Vault's status codes, overridable by query parameters. */
    if (!st.initialized)
        resp->status = query_code(req, "uninitcode", 501);
    else if (st.sealed)
        resp->status = query_code(req, "sealedcode", 503);
    else if (!audit_ok)
        resp->status = query_code(req, "auditfailcode", 503);
    else
        resp->status = query_code(req, "activecode", 200);
    return NHID_OK; /* for HEAD the pipeline sends the headers only */
}

static json_t *seal_status_json(struct nhid_core *core)
{
    struct nhid_seal_status st;
    if (nhid_barrier_status(core->barrier, &st) < 0)
        return NULL;
    return json_pack("{s:s, s:b, s:b, s:i, s:i, s:i, s:s, s:s, s:s, s:b, s:s, s:s, s:b, s:s}",
                     "type", "shamir", "initialized", st.initialized, "sealed", st.sealed, "t",
                     (int)st.threshold, "n", (int)st.shares, "progress", (int)st.progress,
                     "nonce", st.nonce, "version", NHID_VERSION, "build_date", "", "migration",
                     false, "cluster_name", CLUSTER_NAME, "cluster_id", "", "recovery_seal",
                     false, "storage_type", core->storage_type ? core->storage_type : "sqlite");
}

static int h_seal_status(struct nhid_request *req, struct nhid_response *resp)
{
    resp->raw = seal_status_json(req->core);
    return resp->raw ? NHID_OK : NHID_ERR_INTERNAL;
}

/* ---- init ----------------------------------------------------------------- */

static int h_init_get(struct nhid_request *req, struct nhid_response *resp)
{
    struct nhid_seal_status st;
    int rc = nhid_barrier_status(req->core->barrier, &st);
    if (rc < 0)
        return rc;
    resp->raw = json_pack("{s:b}", "initialized", st.initialized);
    return NHID_OK;
}

struct root_ctx {
    char *token;
};

static int create_root_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct root_ctx *c = arg;
    return nhid_token_create_root(core, txn, c->token);
}

int nhid_sys_initialize(struct nhid_core *core, unsigned n, unsigned t, uint8_t ***shares_out,
                        char root_token[64], char *errbuf, size_t errlen)
{
    int rc = NHID_OK;
    uint8_t **shares = NULL;
    uint8_t rootkey[NHID_ROOT_KEY_LEN];
    NHID_TRY(nhid_barrier_init(core->barrier, n, t, &shares, errbuf, errlen));
    /*
     * Unseal briefly with the combined key to create the root token. Only
     * the token engine is started: audit devices and other engines start
     * at the real unseal, so nothing can withhold the init response (the
     * only copy of the key shares).
     */
    NHID_TRY(nhid_shamir_combine((const uint8_t *const *)shares, t, NHID_ROOT_KEY_LEN, rootkey));
    NHID_TRY(nhid_barrier_unseal_with_root_key(core->barrier, rootkey));
    if (nhid_token_engine.on_unseal)
        rc = nhid_token_engine.on_unseal(core);
    if (rc == NHID_OK) {
        struct root_ctx c = {root_token};
        rc = nhid_core_write(core, create_root_txn, &c);
    }
    if (nhid_token_engine.on_seal)
        nhid_token_engine.on_seal(core);
    nhid_barrier_seal(core->barrier);
    NHID_TRY(rc);
    *shares_out = shares;
    shares = NULL;
out:
    nhid_wipe(rootkey, sizeof(rootkey));
    if (shares)
        nhid_shamir_free_shares(shares, n, NHID_SHARE_LEN);
    return rc;
}

static int h_init_put(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    int64_t n = 0, t = 0;
    uint8_t **shares = NULL;
    char root[64] = "";
    static const char *const fields[] = {"secret_shares", "secret_threshold", "pgp_keys",
                                         "root_token_pgp_key", "stored_shares", NULL};
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_int(req, resp, "secret_shares", 5, 1, NHID_SHARES_MAX, &n));
    NHID_TRY(nhid_body_int(req, resp, "secret_threshold", 3, 1, NHID_SHARES_MAX, &t));
    if (t > n)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"secret_threshold\": %lld is more than secret_shares "
                                  "(%lld); the threshold must be between 1 and the share count",
                                  (long long)t, (long long)n));
    if (n > 1 && t < 2)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"secret_threshold\": must be at least 2 when "
                                  "secret_shares > 1"));
    char err[256] = "";
    rc = nhid_sys_initialize(req->core, (unsigned)n, (unsigned)t, &shares, root, err,
                             sizeof(err));
    if (rc == NHID_ERR_EXISTS)
        NHID_FAIL(nhid_resp_error(resp, 400, "nhid is already initialized"));
    if (rc < 0)
        NHID_FAIL(nhid_resp_error(resp, rc == NHID_ERR_INVALID ? 400 : 500, "init failed: %s",
                                  err[0] ? err : nhid_strerror(rc)));
    json_t *hex = json_array(), *b64 = json_array();
    for (unsigned i = 0; i < (unsigned)n; i++) {
        char h[2 * NHID_SHARE_LEN + 1];
        nhid_hex_encode(shares[i], NHID_SHARE_LEN, h);
        json_array_append_new(hex, json_string(h));
        nhid_wipe(h, sizeof(h));
        char *b = NULL;
        if (nhid_base64_encode(shares[i], NHID_SHARE_LEN, &b) == NHID_OK) {
            json_array_append_new(b64, json_string(b));
            nhid_free_secret_str(b);
        }
    }
    resp->raw = json_pack("{s:o, s:o, s:s}", "keys", hex, "keys_base64", b64, "root_token", root);
    nhid_info(MOD, "initialized with %lld key shares, threshold %lld", (long long)n, (long long)t);
out:
    nhid_wipe(root, sizeof(root));
    if (shares)
        nhid_shamir_free_shares(shares, (unsigned)n, NHID_SHARE_LEN);
    return rc;
}

/* ---- unseal / seal ------------------------------------------------------ */

static int decode_share(const char *key, uint8_t out[NHID_SHARE_LEN])
{
    if (strlen(key) == 2 * NHID_SHARE_LEN && nhid_hex_decode(key, out, NHID_SHARE_LEN) == NHID_OK)
        return NHID_OK;
    uint8_t *raw = NULL;
    size_t len = 0;
    if (nhid_base64_decode(key, strlen(key), &raw, &len) == NHID_OK) {
        int rc = len == NHID_SHARE_LEN ? NHID_OK : NHID_ERR_INVALID;
        if (rc == NHID_OK)
            memcpy(out, raw, NHID_SHARE_LEN);
        nhid_free_secret(raw, len);
        return rc;
    }
    return NHID_ERR_INVALID;
}

static int h_unseal(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *key = NULL;
    bool reset = false;
    uint8_t share[NHID_SHARE_LEN];
    static const char *const fields[] = {"key", "reset", "migrate", NULL};
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_string(req, resp, "key", NULL, &key));
    NHID_TRY(nhid_body_bool(req, resp, "reset", false, &reset));
    struct nhid_seal_status st;
    NHID_TRY(nhid_barrier_status(req->core->barrier, &st));
    if (!st.initialized)
        NHID_FAIL(nhid_resp_error(resp, 400, "nhid is not initialized: run `nhid operator init`"));
    if (reset) {
        nhid_barrier_unseal_reset(req->core->barrier);
    } else if (st.sealed) {
        if (key == NULL || *key == '\0')
            NHID_FAIL(nhid_resp_error(resp, 400, "missing field \"key\" (an unseal key share, "
                                                 "hex or base64)"));
        if (decode_share(key, share) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"key\": not an unseal key share (expected %d "
                                      "bytes as hex or base64)",
                                      NHID_SHARE_LEN));
        rc = nhid_barrier_unseal(req->core->barrier, share, sizeof(share), &st);
        if (rc == NHID_ERR_DENIED)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "unseal failed: the key shares do not combine into the "
                                      "root key; progress was reset, submit the shares again"));
        if (rc == NHID_ERR_INVALID)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"key\": share rejected: it was already submitted "
                                      "in this unseal attempt, or it is not a share of this "
                                      "server's key"));
        NHID_TRY(rc);
        if (!st.sealed) {
            nhid_info(MOD, "unsealed");
            if (req->core->after_unseal && (rc = req->core->after_unseal(req->core)) < 0) {
                nhid_error(MOD, "post-unseal set-up failed: %s; sealing again",
                           nhid_strerror(rc));
                nhid_barrier_seal(req->core->barrier);
                NHID_FAIL(nhid_resp_error(resp, 500, "unseal set-up failed: %s",
                                          nhid_strerror(rc)));
            }
        }
    }
    resp->raw = seal_status_json(req->core);
out:
    nhid_wipe(share, sizeof(share));
    return rc;
}

static int h_seal(struct nhid_request *req, struct nhid_response *resp)
{
    (void)resp;
    if (req->core->before_seal)
        req->core->before_seal(req->core);
    nhid_barrier_seal(req->core->barrier);
    nhid_info(MOD, "sealed by request %s", req->request_id);
    return NHID_OK;
}

static int h_rotate(struct nhid_request *req, struct nhid_response *resp)
{
    uint32_t term = 0;
    int64_t when = 0;
    int rc = nhid_barrier_rotate(req->core->barrier, &term, &when);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, "key rotation failed");
    nhid_info(MOD, "barrier key rotated to term %u", term);
    return NHID_OK;
}

static int h_key_status(struct nhid_request *req, struct nhid_response *resp)
{
    struct nhid_seal_status st;
    int rc = nhid_barrier_status(req->core->barrier, &st);
    if (rc < 0)
        return rc;
    char ts[NHID_RFC3339_LEN] = "";
    nhid_time_format(nhid_now(), ts);
    resp->data = json_pack("{s:i, s:s, s:s}", "term", (int)st.term, "install_time", ts,
                           "encryptions", "");
    json_object_del(resp->data, "encryptions");
    return NHID_OK;
}

/* ---- audit devices ------------------------------------------------------ */

static bool valid_device_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= NHID_AUDIT_NAME_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

static int enable_device(struct nhid_core *core, const char *name, const char *path,
                         const char *desc, const char *hmac_hex, char *err, size_t errlen)
{
    uint8_t key[32];
    if (nhid_hex_decode(hmac_hex, key, sizeof(key)) < 0)
        return NHID_ERR_INTERNAL;
    int rc = nhid_audit_enable_file(core->audit, name, path, key, desc, err, errlen);
    nhid_wipe(key, sizeof(key));
    return rc;
}

struct audit_put_ctx {
    const char *name;
    json_t *cfg;
    bool delete;
};

static int audit_save_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct audit_put_ctx *c = arg;
    char key[160];
    snprintf(key, sizeof(key), AUDIT_KEY_PREFIX "%s", c->name);
    if (c->delete)
        return nhid_txn_delete(txn, key);
    return nhid_core_save_json(core, txn, key, c->cfg);
}

static int new_hmac_key_hex(char out[65])
{
    uint8_t k[32];
    int rc = nhid_random_bytes(k, sizeof(k));
    if (rc == NHID_OK)
        nhid_hex_encode(k, sizeof(k), out);
    nhid_wipe(k, sizeof(k));
    return rc;
}

static int h_audit_put(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = nhid_req_param(req, "name");
    const char *type = NULL, *desc = NULL, *path = NULL;
    char hex[65] = "";
    json_t *cfg = NULL;
    static const char *const fields[] = {"type", "description", "options", "local", NULL};
    NHID_TRY(nhid_body_only(req, resp, fields));
    if (!valid_device_name(name))
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "audit device name \"%.64s\": use 1-63 letters, digits, '-', "
                                  "'_' or '.'",
                                  name));
    NHID_TRY(nhid_body_string(req, resp, "type", NULL, &type));
    NHID_TRY(nhid_body_string(req, resp, "description", "", &desc));
    if (type == NULL || strcmp(type, "file") != 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"type\": must be \"file\""));
    json_t *opts = json_object_get(req->body, "options");
    path = json_string_value(json_object_get(opts, "file_path"));
    if (path == NULL)
        path = json_string_value(json_object_get(opts, "path"));
    if (path == NULL || path[0] != '/')
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"options.file_path\": an absolute file path is "
                                  "required"));
    NHID_TRY(new_hmac_key_hex(hex));
    char err[256] = "";
    rc = enable_device(req->core, name, path, desc, hex, err, sizeof(err));
    if (rc == NHID_ERR_EXISTS)
        NHID_FAIL(nhid_resp_error(resp, 400, "audit device \"%s\" is already enabled", name));
    if (rc < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "cannot enable audit device \"%s\": %s", name,
                                  err[0] ? err : nhid_strerror(rc)));
    /* Prove the device can write before trusting it: its first record. */
    char ts[NHID_RFC3339_LEN];
    nhid_time_format_ns(nhid_now_ns(), ts);
    char probe_id[37];
    if (nhid_uuid(probe_id) < 0)
        NHID_FAIL(nhid_resp_error(resp, 500, "cannot generate a request id"));
    /* A test record, as Vault writes one when a device is enabled. */
    json_t *first = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:i, s:b}, s:{s:b, s:s}, s:{s:b, s:s}, s:{s:i}}",
        "time", ts, "type", "audit-test", "request_id", probe_id, "request", "method",
        req->method_name, "path", req->path, "remote_address", req->remote_addr, "remote_port",
        (int)req->remote_port, "mtls", req->mtls, "auth", "authenticated",
        req->auth.authenticated, "method", req->auth.method ? req->auth.method : "",
        "decision", "allowed", true, "reason", "audit device test record", "response", "status",
        200);
    if (first && req->auth.authenticated)
        json_object_set_new(json_object_get(first, "auth"), "accessor",
                            json_string(req->auth.accessor));
    if (first == NULL || nhid_audit_submit_wait(req->core->audit, first) < 0) {
        if (nhid_audit_disable(req->core->audit, name) < 0)
            nhid_warn(MOD, "audit device %s: could not disable after a failed write", name);
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "audit device \"%s\" cannot write to %s: check the path, its "
                                  "permissions and free space",
                                  name, path));
    }
    cfg = json_pack("{s:s, s:s, s:s, s:s}", "type", "file", "path", path, "description", desc,
                    "hmac_key", hex);
    struct audit_put_ctx c = {name, cfg, false};
    rc = nhid_core_write(req->core, audit_save_txn, &c);
    if (rc < 0) {
        if (nhid_audit_disable(req->core->audit, name) < 0)
            nhid_warn(MOD, "audit device %s: could not disable after a failed save", name);
        NHID_FAIL(nhid_resp_fail(resp, rc, "cannot save the audit device configuration"));
    }
    nhid_info(MOD, "audit device %s enabled (%s)", name, path);
out:
    nhid_wipe(hex, sizeof(hex));
    json_decref(cfg);
    return rc;
}

static int h_audit_delete(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = nhid_req_param(req, "name");
    int rc = nhid_audit_disable(req->core->audit, name);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK; /* idempotent, as Vault */
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    struct audit_put_ctx c = {name, NULL, true};
    return nhid_core_write(req->core, audit_save_txn, &c);
}

static int h_audit_list(struct nhid_request *req, struct nhid_response *resp)
{
    json_t *l = nhid_audit_list(req->core->audit);
    if (l == NULL)
        return NHID_ERR_NOMEM;
    /* Vault returns the map both at the top level and under "data". */
    resp->data = l;
    return NHID_OK;
}

static int h_audit_hash(struct nhid_request *req, struct nhid_response *resp)
{
    const char *input = NULL;
    int rc = nhid_body_string(req, resp, "input", NULL, &input);
    if (rc < 0)
        return rc;
    if (input == NULL)
        return nhid_resp_error(resp, 400, "missing field \"input\"");
    char out[80];
    rc = nhid_audit_hash(req->core->audit, nhid_req_param(req, "name"), input, out);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 400, "unknown audit device \"%s\"",
                               nhid_req_param(req, "name"));
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    resp->data = json_pack("{s:s}", "hash", out);
    return NHID_OK;
}

struct config_key_ctx {
    const char *name;
    char hex[65];
};

/* The HMAC key of a config-file audit device: created once, kept in the barrier. */
static int config_key_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct config_key_ctx *c = arg;
    char key[160];
    snprintf(key, sizeof(key), "sys/audit-config-key/%s", c->name);
    json_t *j = NULL;
    int rc = nhid_core_load_json(core, txn, key, &j);
    if (rc == NHID_OK) {
        snprintf(c->hex, sizeof(c->hex), "%s", json_string_value(json_object_get(j, "hmac_key")));
        json_decref(j);
        return NHID_OK;
    }
    if (rc != NHID_ERR_NOT_FOUND)
        return rc;
    rc = new_hmac_key_hex(c->hex);
    if (rc < 0)
        return rc;
    j = json_pack("{s:s}", "hmac_key", c->hex);
    rc = nhid_core_save_json(core, txn, key, j);
    json_decref(j);
    return rc;
}

/* Re-enable persisted and configured audit devices after unseal. */
struct audit_load_ctx {
    struct nhid_core *core;
    unsigned failures;
};

static int audit_load_one(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct audit_load_ctx *c = arg;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    uint32_t term = 0;
    if (nhid_barrier_decrypt(c->core->barrier, key, val, len, &pt, &ptlen, &term) < 0) {
        c->failures++;
        return 0;
    }
    json_t *j = json_loadb((const char *)pt, ptlen, 0, NULL);
    nhid_free_secret(pt, ptlen);
    const char *name = key + strlen(AUDIT_KEY_PREFIX);
    char err[256] = "";
    int rc = j ? enable_device(c->core, name, json_string_value(json_object_get(j, "path")),
                               json_string_value(json_object_get(j, "description")),
                               json_string_value(json_object_get(j, "hmac_key")), err,
                               sizeof(err))
               : NHID_ERR_INTERNAL;
    if (rc < 0 && rc != NHID_ERR_EXISTS) {
        nhid_error(MOD, "cannot re-enable audit device %s: %s", name,
                   err[0] ? err : nhid_strerror(rc));
        c->failures++;
    }
    json_decref(j);
    return 0;
}

static int sys_on_unseal(struct nhid_core *core)
{
    struct nhid_txn *txn = NULL;
    int rc = nhid_store_read_begin(core->store, &txn);
    if (rc < 0)
        return rc;
    struct audit_load_ctx lc = {core, 0};
    rc = nhid_txn_scan_prefix(txn, AUDIT_KEY_PREFIX, NULL, NHID_AUDIT_DEVICES_MAX, false,
                              audit_load_one, &lc);
    nhid_store_read_end(txn);
    if (rc < 0)
        return rc;
    /* Devices from the config file: their HMAC keys live in the barrier. */
    size_t i;
    json_t *dev;
    json_array_foreach(core->config_audit, i, dev)
    {
        struct config_key_ctx kc = {json_string_value(json_object_get(dev, "name")), ""};
        if (kc.name == NULL)
            continue;
        rc = nhid_core_write(core, config_key_txn, &kc);
        if (rc < 0)
            return rc;
        char err[256] = "";
        rc = enable_device(core, kc.name, json_string_value(json_object_get(dev, "path")),
                           json_string_value(json_object_get(dev, "description")), kc.hex, err,
                           sizeof(err));
        nhid_wipe(kc.hex, sizeof(kc.hex));
        if (rc < 0 && rc != NHID_ERR_EXISTS) {
            nhid_error(MOD, "audit device %s from the config file: %s", kc.name,
                       err[0] ? err : nhid_strerror(rc));
            return rc;
        }
    }
    return lc.failures ? NHID_ERR_IO : NHID_OK;
}

static void sys_on_seal(struct nhid_core *core)
{
    /* Audit devices stay enabled while sealed so unseal attempts are recorded. */
    (void)core;
}

/* ---- metrics ------------------------------------------------------------ */

static int h_metrics(struct nhid_request *req, struct nhid_response *resp)
{
    struct nhid_core *core = req->core;
    char *fmt = nhid_req_query(req, "format");
    bool prom = fmt && strcmp(fmt, "prometheus") == 0;
    free(fmt);
    struct nhid_seal_status st = {0};
    if (nhid_barrier_status(core->barrier, &st) < 0)
        st.sealed = true;
    uint64_t tokens = 0;
    if (nhid_token_count(core, req->txn, &tokens) < 0)
        tokens = 0;
    struct nhid_audit *a = core->audit;
    uint64_t afail = a ? nhid_audit_failure_count(a) : 0;
    uint64_t arec = a ? nhid_audit_record_count(a) : 0;
    bool aok = a == NULL || nhid_audit_device_count(a) == 0 || nhid_audit_healthy(a);
    if (!prom) {
        resp->raw = json_pack("{s:b, s:I, s:I, s:I, s:b, s:I}", "sealed", st.sealed, "tokens",
                              (json_int_t)tokens, "audit_failures", (json_int_t)afail,
                              "audit_records", (json_int_t)arec, "audit_healthy", aok,
                              "uptime_seconds", (json_int_t)(nhid_now() - core->start_time));
        return NHID_OK;
    }
    char *http = core->http_metrics ? core->http_metrics(core) : NULL;
    char head[2048];
    int n = snprintf(head, sizeof(head),
                     "# HELP nhid_sealed 1 if the barrier is sealed.\n# TYPE nhid_sealed gauge\n"
                     "nhid_sealed %d\n"
                     "# HELP nhid_tokens Live tokens.\n# TYPE nhid_tokens gauge\nnhid_tokens %llu\n"
                     "# HELP nhid_audit_failures_total Audit records that could not be written.\n"
                     "# TYPE nhid_audit_failures_total counter\nnhid_audit_failures_total %llu\n"
                     "# HELP nhid_audit_records_total Audit records written.\n"
                     "# TYPE nhid_audit_records_total counter\nnhid_audit_records_total %llu\n"
                     "# HELP nhid_audit_healthy 1 if every audit device can write.\n"
                     "# TYPE nhid_audit_healthy gauge\nnhid_audit_healthy %d\n"
                     "# HELP nhid_uptime_seconds Seconds since start.\n"
                     "# TYPE nhid_uptime_seconds gauge\nnhid_uptime_seconds %lld\n",
                     st.sealed ? 1 : 0, (unsigned long long)tokens, (unsigned long long)afail,
                     (unsigned long long)arec, aok ? 1 : 0,
                     (long long)(nhid_now() - core->start_time));
    size_t hl = http ? strlen(http) : 0;
    resp->body = malloc((size_t)n + hl + 1);
    if (resp->body == NULL) {
        free(http);
        return NHID_ERR_NOMEM;
    }
    memcpy(resp->body, head, (size_t)n);
    if (hl)
        memcpy(resp->body + n, http, hl);
    resp->body_len = (size_t)n + hl;
    free(http);
    snprintf(resp->content_type, sizeof(resp->content_type), "text/plain; version=0.0.4");
    resp->status = 200;
    return NHID_OK;
}

/* ---- lazy re-encryption after `operator rotate` -------------------------- */

struct reencrypt_ctx {
    char cursor[NHID_STORE_KEY_MAX + 1];
    size_t done;
};

static int reencrypt_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct reencrypt_ctx *c = arg;
    return nhid_barrier_reencrypt_some(core->barrier, txn, 512, c->cursor, sizeof(c->cursor),
                                       &c->done);
}

/*
 * Entries written under an older keyring term are rewritten under the
 * active one a batch at a time, so a rotation never stalls requests.
 * The cursor lives in memory: after a restart the walk starts over,
 * which only costs a scan.
 */
static int reencrypt_job(struct nhid_core *core)
{
    static struct reencrypt_ctx ctx;
    static uint32_t last_term;
    struct nhid_seal_status st;
    int rc = nhid_barrier_status(core->barrier, &st);
    if (rc < 0 || st.sealed)
        return rc;
    if (st.term <= 1)
        return NHID_OK;
    if (st.term != last_term) {
        last_term = st.term;
        ctx.cursor[0] = '\0';
        ctx.done = 0;
    } else if (ctx.cursor[0] == '\0' && ctx.done == (size_t)-1) {
        return NHID_OK; /* finished this term */
    }
    rc = nhid_core_write(core, reencrypt_txn, &ctx);
    if (rc == NHID_OK && ctx.cursor[0] == '\0') {
        nhid_info(MOD, "re-encryption under keyring term %u complete", st.term);
        ctx.done = (size_t)-1;
    }
    return rc;
}

static const struct nhid_job sys_jobs[] = {
    {"barrier-reencrypt", 1, reencrypt_job},
};

static const struct nhid_route sys_routes[] = {
    {"sys/health", NHID_M_GET | NHID_M_HEAD,
     NHID_ROUTE_UNAUTH | NHID_ROUTE_SEALED_OK | NHID_ROUTE_NOT_AUDITED, h_health, "read"},
    {"sys/seal-status", NHID_M_GET,
     NHID_ROUTE_UNAUTH | NHID_ROUTE_SEALED_OK | NHID_ROUTE_NOT_AUDITED, h_seal_status, "read"},
    {"sys/init", NHID_M_GET, NHID_ROUTE_UNAUTH | NHID_ROUTE_SEALED_OK, h_init_get, "read"},
    {"sys/init", NHID_M_WRITE, NHID_ROUTE_UNAUTH | NHID_ROUTE_SEALED_OK | NHID_ROUTE_ADMIN, h_init_put, "create"},
    {"sys/unseal", NHID_M_WRITE, NHID_ROUTE_UNAUTH | NHID_ROUTE_SEALED_OK | NHID_ROUTE_ADMIN, h_unseal, "update"},
    {"sys/seal", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_seal, "update"},
    {"sys/rotate", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_rotate, "rotate"},
    {"sys/key-status", NHID_M_GET, 0, h_key_status, "read"},
    {"sys/audit", NHID_M_GET, 0, h_audit_list, "read"},
    {"sys/audit/:name", NHID_M_WRITE, NHID_ROUTE_NO_AUDIT_DATA | NHID_ROUTE_ADMIN, h_audit_put, "create"},
    {"sys/audit/:name", NHID_M_DELETE, NHID_ROUTE_ADMIN, h_audit_delete, "delete"},
    {"sys/audit-hash/:name", NHID_M_WRITE, 0, h_audit_hash, "update"},
    {"sys/metrics", NHID_M_GET, 0, h_metrics, "read"},
};

const struct nhid_engine nhid_sys_engine = {
    .name = "sys",
    .routes = sys_routes,
    .n_routes = NHID_ARRAY_LEN(sys_routes),
    .jobs = sys_jobs,
    .n_jobs = NHID_ARRAY_LEN(sys_jobs),
    .on_unseal = sys_on_unseal,
    .on_seal = sys_on_seal,
};
