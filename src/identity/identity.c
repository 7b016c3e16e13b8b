/*
 * identity — the identity engine: machine identities and their indexes,
 * the lifecycle state machine, groups, the credential inventory endpoint,
 * the hygiene report and the counters flush job.
 */
#include "identity/identity.h"

#include <inttypes.h>
#include <stdlib.h>
#include <strings.h>

#include "barrier/barrier.h"
#include "crypto/crypto.h"
#include "identity/identity_internal.h"

#define MOD IDM_MOD
#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 1000
#define LIST_SCAN_MAX 5000 /* index entries one list request may examine (then next_after) */
#define LIST_SET_MAX 10000 /* candidates collected from a time index */
#define PROBE_MAX 1024     /* selectivity probe per index */
#define REPORT_MAX 1000    /* entries per report section */
#define CREDS_MAX 10000    /* credentials listed per identity */
#define GROUP_MEMBERS_MAX 1000
#define GROUP_DEPTH_MAX 32
#define DESCRIPTION_MAX 1024
#define REASON_MAX 512

static const char *const kinds[] = {"workload", "device", "service", "pipeline", "bot", "agent"};

/* ---- small helpers --------------------------------------------------------- */

const char *idm_jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int64_t idm_jint(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static int exists_cb(const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    (void)arg;
    return NHID_OK;
}

bool idm_exists(struct nhid_txn *txn, const char *key)
{
    return nhid_txn_get_with(txn, key, exists_cb, NULL) == NHID_OK;
}

int idm_put_empty(struct nhid_txn *txn, const char *key)
{
    return nhid_txn_put(txn, key, (const uint8_t *)"", 0);
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

int nhid_identity_name_valid(const char *what, const char *name, char *msg, size_t msglen)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0) {
        snprintf(msg, msglen, "%s is empty (use 1 to %d letters, digits, '.', '_', '-')", what,
                 NHID_IDENTITY_NAME_MAX);
        return NHID_ERR_INVALID;
    }
    if (n > NHID_IDENTITY_NAME_MAX) {
        snprintf(msg, msglen, "%s is %zu bytes long (at most %d)", what, n, NHID_IDENTITY_NAME_MAX);
        return NHID_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (!name_char(name[i])) {
            if ((unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
                snprintf(msg, msglen,
                         "%s \"%.64s\": byte 0x%02x is not allowed (use letters, digits, '.', "
                         "'_', '-')",
                         what, name, (unsigned char)name[i]);
            else
                snprintf(msg, msglen,
                         "%s \"%.64s\": character '%c' is not allowed (use letters, digits, '.', "
                         "'_', '-')",
                         what, name, name[i]);
            return NHID_ERR_INVALID;
        }
    }
    if (name[0] == '.' || name[0] == '-' || name[0] == '_') {
        snprintf(msg, msglen, "%s \"%.64s\": must start with a letter or digit", what, name);
        return NHID_ERR_INVALID;
    }
    return NHID_OK;
}

int nhid_identity_spiffe_valid(const char *id, char *msg, size_t msglen)
{
    /* SPIFFE ID spec §2.1 (trust domain) and §2.2 (path). */
    size_t n = id ? strlen(id) : 0;
    if (n > NHID_IDENTITY_SPIFFE_MAX) {
        snprintf(msg, msglen, "SPIFFE ID is longer than %d bytes", NHID_IDENTITY_SPIFFE_MAX);
        return NHID_ERR_INVALID;
    }
    if (!nhid_has_prefix(id ? id : "", "spiffe://")) {
        snprintf(msg, msglen, "SPIFFE ID \"%.80s\": must start with \"spiffe://\"", id ? id : "");
        return NHID_ERR_INVALID;
    }
    const char *td = id + 9;
    const char *p = td;
    while (*p && *p != '/') {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == '_')) {
            snprintf(msg, msglen,
                     "SPIFFE ID \"%.80s\": trust domain character '%c' is not allowed (lower-case "
                     "letters, digits, '.', '-', '_')",
                     id, c);
            return NHID_ERR_INVALID;
        }
        p++;
    }
    if (p == td) {
        snprintf(msg, msglen, "SPIFFE ID \"%.80s\": trust domain is empty", id);
        return NHID_ERR_INVALID;
    }
    if (p - td > 255) {
        snprintf(msg, msglen, "SPIFFE ID: trust domain is longer than 255 bytes");
        return NHID_ERR_INVALID;
    }
    while (*p == '/') {
        const char *seg = ++p;
        while (*p && *p != '/') {
            char c = *p;
            if (!(name_char(c))) {
                snprintf(msg, msglen,
                         "SPIFFE ID \"%.80s\": path character '%c' is not allowed (letters, "
                         "digits, '.', '-', '_')",
                         id, c);
                return NHID_ERR_INVALID;
            }
            p++;
        }
        size_t len = (size_t)(p - seg);
        if (len == 0) {
            snprintf(msg, msglen, "SPIFFE ID \"%.80s\": empty path segment or trailing '/'", id);
            return NHID_ERR_INVALID;
        }
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.')) {
            snprintf(msg, msglen, "SPIFFE ID \"%.80s\": \".\" and \"..\" segments are not allowed",
                     id);
            return NHID_ERR_INVALID;
        }
    }
    return NHID_OK;
}

static bool label_part_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]) && s[i] != ':')
            return false;
    return true;
}

static const char *who(const struct nhid_request *req, char *buf, size_t len)
{
    if (req->auth.identity[0])
        snprintf(buf, len, "identity:%s", req->auth.identity);
    else if (req->auth.root)
        snprintf(buf, len, "root:%s", req->auth.accessor);
    else if (req->auth.accessor[0])
        snprintf(buf, len, "token:%s", req->auth.accessor);
    else
        snprintf(buf, len, "%s", req->auth.method ? req->auth.method : "system");
    return buf;
}

static int key_machine(char *out, size_t len, const char *name)
{
    return idm_key(out, len, "identity/machine/%s", name);
}

/* ---- records and indexes ---------------------------------------------------- */

/* The record's key for a valid name; NHID_ERR_NOT_FOUND for any other. */
static int machine_key(const char *name, char key[256])
{
    char msg[8];
    if (nhid_identity_name_valid("name", name, msg, sizeof(msg)) < 0 ||
        key_machine(key, 256, name) < 0)
        return NHID_ERR_NOT_FOUND;
    return NHID_OK;
}

int nhid_identity_get(struct nhid_core *core, struct nhid_txn *txn, const char *name, json_t **out)
{
    char key[256];
    int rc = machine_key(name, key);
    return rc < 0 ? rc : nhid_core_load_json(core, txn, key, out);
}

int nhid_identity_get_shared(struct nhid_core *core, struct nhid_txn *txn, const char *name,
                             json_t **out)
{
    char key[256];
    int rc = machine_key(name, key);
    return rc < 0 ? rc : nhid_core_load_json_shared(core, txn, key, out);
}

int nhid_identity_by_spiffe(struct nhid_core *core, struct nhid_txn *txn, const char *spiffe_id,
                            char name[NHID_IDENTITY_NAME_MAX + 1])
{
    char key[NHID_IDENTITY_SPIFFE_MAX + 64];
    json_t *v = NULL;
    if (spiffe_id == NULL || strlen(spiffe_id) > NHID_IDENTITY_SPIFFE_MAX)
        return NHID_ERR_NOT_FOUND;
    snprintf(key, sizeof(key), "identity/idx/spiffe/%s", spiffe_id);
    /* Read-only: the per-thread decoded copy (signing and mTLS requests look it up every time). */
    int rc = nhid_core_load_json_shared(core, txn, key, &v);
    if (rc < 0)
        return rc;
    snprintf(name, NHID_IDENTITY_NAME_MAX + 1, "%s", idm_jstr(v, "name"));
    json_decref(v);
    return NHID_OK;
}

int nhid_identity_may_authenticate(const json_t *ident, char *msg, size_t msglen)
{
    const char *st = idm_jstr(ident, "state");
    if (strcmp(st, NHID_STATE_ACTIVE) == 0 || strcmp(st, NHID_STATE_PENDING) == 0)
        return NHID_OK;
    snprintf(msg, msglen, "identity %s is %s", idm_jstr(ident, "name"), st);
    return NHID_ERR_DENIED;
}

/* Add (or remove) the index keys of a record. */
static int index_apply(struct nhid_core *core, struct nhid_txn *txn, const json_t *rec, bool add)
{
    int rc = NHID_OK;
    char key[NHID_IDENTITY_SPIFFE_MAX + 256];
    const char *name = idm_jstr(rec, "name");
    const char *owner = idm_jstr(rec, "owner");
#define IDX(...)                                                                                   \
    do {                                                                                           \
        if (snprintf(key, sizeof(key), __VA_ARGS__) >= (int)sizeof(key))                           \
            NHID_FAIL(NHID_ERR_TOO_LARGE);                                                         \
        NHID_TRY(add ? idm_put_empty(txn, key) : nhid_txn_delete(txn, key));                       \
    } while (0)
    if (*owner)
        IDX("identity/idx/owner/%s/%s", owner, name);
    else
        IDX("identity/idx/noowner/%s", name);
    IDX("identity/idx/kind/%s/%s", idm_jstr(rec, "kind"), name);
    IDX("identity/idx/state/%s/%s", idm_jstr(rec, "state"), name);
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(rec, "labels"), k, v)
        IDX("identity/idx/label/%s=%s/%s", k, json_string_value(v), name);
#undef IDX
    json_t *ref = json_pack("{s:s}", "name", name);
    NHID_CHECK_ALLOC(ref);
    snprintf(key, sizeof(key), "identity/idx/id/%s", idm_jstr(rec, "id"));
    rc = add ? nhid_core_save_json(core, txn, key, ref) : nhid_txn_delete(txn, key);
    if (rc == NHID_OK) {
        snprintf(key, sizeof(key), "identity/idx/spiffe/%s", idm_jstr(rec, "spiffe_id"));
        rc = add ? nhid_core_save_json(core, txn, key, ref) : nhid_txn_delete(txn, key);
    }
    json_decref(ref);
out:
    return rc;
}

static int save_record(struct nhid_core *core, struct nhid_txn *txn, json_t *rec)
{
    char key[256];
    int rc = key_machine(key, sizeof(key), idm_jstr(rec, "name"));
    if (rc < 0)
        return rc;
    return nhid_core_save_json(core, txn, key, rec);
}

static json_t *present(const json_t *rec)
{
    json_t *o = json_deep_copy(rec);
    if (o == NULL)
        return NULL;
    char t[NHID_RFC3339_LEN];
    static const char *const times[] = {"created_at", "updated_at"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(times); i++) {
        json_t *v = json_object_get(o, times[i]);
        if (json_is_integer(v)) {
            nhid_time_format(json_integer_value(v), t);
            json_object_set_new(o, times[i], json_string(t));
        }
    }
    return o;
}

static void append_history(json_t *rec, const char *from, const char *to, const char *by,
                           const char *why)
{
    json_t *h = json_object_get(rec, "history");
    if (!json_is_array(h)) {
        h = json_array();
        json_object_set_new(rec, "history", h);
    }
    char t[NHID_RFC3339_LEN];
    nhid_time_format(nhid_now(), t);
    json_array_append_new(h, json_pack("{s:s, s:s, s:s, s:s, s:s}", "from", from, "to", to, "who",
                                       by, "when", t, "why", why ? why : ""));
    while (json_array_size(h) > NHID_IDENTITY_HISTORY_MAX)
        json_array_remove(h, 0);
}

/* Move rec to state `to`: indexes, history, gate. txn writable. */
static int set_state(struct nhid_core *core, struct nhid_txn *txn, json_t *rec, const char *to,
                     const char *by, const char *why)
{
    int rc = NHID_OK;
    char key[512];
    char from[32];
    snprintf(from, sizeof(from), "%s", idm_jstr(rec, "state"));
    NHID_TRY(idm_key(key, sizeof(key), "identity/idx/state/%s/%s", from, idm_jstr(rec, "name")));
    NHID_TRY(nhid_txn_delete(txn, key));
    NHID_TRY(idm_key(key, sizeof(key), "identity/idx/state/%s/%s", to, idm_jstr(rec, "name")));
    NHID_TRY(idm_put_empty(txn, key));
    json_object_set_new(rec, "state", json_string(to));
    json_object_set_new(rec, "state_reason", json_string(why ? why : ""));
    json_object_set_new(rec, "updated_at", json_integer(nhid_now()));
    append_history(rec, from, to, by, why);
    NHID_TRY(save_record(core, txn, rec));
    /*
     * The gate changes before the commit: for suspend/decommission that
     * fails closed; a resume whose commit then failed would open the gate
     * early, which the next on_unseal corrects (logins re-read the state).
     */
    idm_gate_set(idm_jstr(rec, "id"), idm_jstr(rec, "name"), to);
out:
    return rc;
}

int nhid_identity_activate(struct nhid_core *core, struct nhid_txn *txn, json_t *ident,
                           const char *method, bool *activated)
{
    if (activated)
        *activated = false;
    if (strcmp(idm_jstr(ident, "state"), NHID_STATE_PENDING) != 0)
        return NHID_OK;
    char why[96];
    snprintf(why, sizeof(why), "first successful %s", method ? method : "login");
    char by[160];
    snprintf(by, sizeof(by), "identity:%s", idm_jstr(ident, "name"));
    int rc = set_state(core, txn, ident, NHID_STATE_ACTIVE, by, why);
    if (rc == NHID_OK && activated)
        *activated = true;
    return rc;
}

/* ---- create / read / update / delete ------------------------------------------ */

static int parse_labels(struct nhid_request *req, struct nhid_response *resp, json_t **out)
{
    json_t *v = json_object_get(req->body, "labels");
    if (v == NULL || json_is_null(v)) {
        *out = NULL;
        return NHID_OK;
    }
    json_t *labels = json_object();
    if (labels == NULL)
        return NHID_ERR_NOMEM;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            if (!json_is_string(x)) {
                json_decref(labels);
                return nhid_resp_error(resp, 400,
                                       "field \"labels\": value of \"%.64s\" is not a "
                                       "string",
                                       k);
            }
            json_object_set(labels, k, x);
        }
    } else if (json_is_array(v) || json_is_string(v)) {
        /* "k=v" strings, as the CLI's -label flag sends them */
        json_t *list = NULL;
        int rc = nhid_body_string_list(req, resp, "labels", &list);
        if (rc < 0) {
            json_decref(labels);
            return rc;
        }
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x)
        {
            const char *s = json_string_value(x);
            const char *eq = strchr(s, '=');
            if (eq == NULL) {
                /* report before releasing: s belongs to list */
                rc = nhid_resp_error(resp, 400, "field \"labels\": \"%.64s\" is not key=value", s);
                json_decref(list);
                json_decref(labels);
                return rc;
            }
            char k[128];
            snprintf(k, sizeof(k), "%.*s", (int)(eq - s < 127 ? eq - s : 127), s);
            json_object_set_new(labels, k, json_string(eq + 1));
        }
        json_decref(list);
    } else {
        json_decref(labels);
        return nhid_resp_error(resp, 400, "field \"labels\": expected an object of strings");
    }
    if (json_object_size(labels) > NHID_IDENTITY_LABELS_MAX) {
        json_decref(labels);
        return nhid_resp_error(resp, 400, "field \"labels\": more than %d labels",
                               NHID_IDENTITY_LABELS_MAX);
    }
    const char *k;
    json_t *x;
    json_object_foreach(labels, k, x)
    {
        if (!label_part_ok(k, 63) || !label_part_ok(json_string_value(x), 127)) {
            /* report before releasing: k and x belong to labels */
            int rc = nhid_resp_error(resp, 400,
                                     "field \"labels\": \"%.64s=%.64s\": keys (≤ 63) and values "
                                     "(≤ 127) use letters, digits, '.', '_', '-', ':'",
                                     k, json_string_value(x));
            json_decref(labels);
            return rc;
        }
    }
    *out = labels;
    return NHID_OK;
}

static int check_owner(struct nhid_response *resp, const char *owner)
{
    char msg[256];
    if (owner && *owner && nhid_identity_name_valid("field \"owner\"", owner, msg, sizeof(msg)) < 0)
        return nhid_resp_error(resp, 400, "%s", msg);
    return NHID_OK;
}

static int check_description(struct nhid_response *resp, const char *d)
{
    if (d && strlen(d) > DESCRIPTION_MAX)
        return nhid_resp_error(resp, 400, "field \"description\": longer than %d bytes",
                               DESCRIPTION_MAX);
    return NHID_OK;
}

static int param_name(struct nhid_request *req, struct nhid_response *resp, const char *what,
                      const char **out)
{
    const char *name = nhid_req_param(req, "name");
    char msg[256];
    if (nhid_identity_name_valid(what, name, msg, sizeof(msg)) < 0)
        return nhid_resp_error(resp, 400, "%s", msg);
    *out = name;
    return NHID_OK;
}

static const char *const create_fields[] = {"kind",        "owner",     "labels",
                                            "description", "spiffe_id", NULL};

static int h_create(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = NULL, *kind = NULL, *owner = NULL, *desc = NULL, *spiffe = NULL;
    json_t *labels = NULL, *rec = NULL;
    char key[256], msg[512], spiffe_buf[NHID_IDENTITY_SPIFFE_MAX + 1];
    char id[37];
    NHID_TRY(param_name(req, resp, "identity name", &name));
    NHID_TRY(nhid_body_only(req, resp, create_fields));
    NHID_TRY(nhid_body_string(req, resp, "kind", NULL, &kind));
    NHID_TRY(nhid_body_string(req, resp, "owner", "", &owner));
    NHID_TRY(nhid_body_string(req, resp, "description", "", &desc));
    NHID_TRY(nhid_body_string(req, resp, "spiffe_id", NULL, &spiffe));
    NHID_TRY(parse_labels(req, resp, &labels));
    if (kind == NULL)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "missing field \"kind\" (one of workload, device, "
                                  "service, pipeline, bot, agent)"));
    bool kind_ok = false;
    for (size_t i = 0; i < NHID_ARRAY_LEN(kinds); i++)
        if (strcmp(kind, kinds[i]) == 0)
            kind_ok = true;
    if (!kind_ok)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"kind\": \"%.32s\" is not a kind (use workload, device, "
                                  "service, pipeline, bot, agent)",
                                  kind));
    NHID_TRY(check_owner(resp, owner));
    NHID_TRY(check_description(resp, desc));
    if (spiffe == NULL || *spiffe == '\0') {
        if (snprintf(spiffe_buf, sizeof(spiffe_buf), "spiffe://%s/%s/%s", req->core->trust_domain,
                     kind, name) >= (int)sizeof(spiffe_buf))
            NHID_FAIL(nhid_resp_error(resp, 400, "default SPIFFE ID would be too long"));
        spiffe = spiffe_buf;
    }
    if (nhid_identity_spiffe_valid(spiffe, msg, sizeof(msg)) < 0)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"spiffe_id\": %s", msg));
    NHID_TRY(key_machine(key, sizeof(key), name));
    if (idm_exists(req->txn, key))
        NHID_FAIL(nhid_resp_error(resp, 409,
                                  "identity %s already exists (change it with PUT or PATCH, "
                                  "`nhid identity update`)",
                                  name));
    {
        char skey[NHID_IDENTITY_SPIFFE_MAX + 64];
        snprintf(skey, sizeof(skey), "identity/idx/spiffe/%s", spiffe);
        if (idm_exists(req->txn, skey))
            NHID_FAIL(nhid_resp_error(resp, 409,
                                      "SPIFFE ID %.200s already belongs to another "
                                      "identity",
                                      spiffe));
    }
    NHID_TRY(nhid_uuid(id));
    int64_t now = nhid_now();
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:[]}", "name", name,
                    "id", id, "kind", kind, "owner", owner, "description", desc, "labels",
                    labels ? labels : json_object(), "spiffe_id", spiffe, "state",
                    NHID_STATE_PENDING, "state_reason", "", "created_at", (json_int_t)now,
                    "updated_at", (json_int_t)now, "history");
    labels = NULL;
    NHID_CHECK_ALLOC(rec);
    char by[160];
    append_history(rec, "", NHID_STATE_PENDING, who(req, by, sizeof(by)), "registered");
    NHID_TRY(save_record(req->core, req->txn, rec));
    NHID_TRY(index_apply(req->core, req->txn, rec, true));
    /* last-seen index starts at the creation time (an identity never seen ages from there) */
    char skey[256];
    snprintf(skey, sizeof(skey), "identity/idx/seen/%020" PRId64 "/%s", now, name);
    NHID_TRY(idm_put_empty(req->txn, skey));
    json_t *seen = json_pack("{s:I, s:I}", "indexed_at", (json_int_t)now, "last_seen", 0);
    NHID_CHECK_ALLOC(seen);
    snprintf(skey, sizeof(skey), "identity/seen/%s", name);
    rc = nhid_core_save_json(req->core, req->txn, skey, seen);
    json_decref(seen);
    NHID_TRY(rc);
    resp->data = present(rec);
    resp->audit_extra = json_pack("{s:{s:s, s:s, s:s, s:s}}", "identity", "name", name, "entity_id",
                                  id, "event", "registered", "state", NHID_STATE_PENDING);
out:
    json_decref(labels);
    json_decref(rec);
    return rc;
}

int nhid_identity_import(struct nhid_core *core, struct nhid_txn *txn, const char *name,
                         const char *kind, const char *owner, const json_t *labels,
                         const char *state)
{
    int rc = NHID_OK;
    char msg[256], key[256], spiffe[NHID_IDENTITY_SPIFFE_MAX + 1], id[37];
    json_t *rec = NULL, *seen = NULL;
    bool kind_ok = false;
    for (size_t i = 0; i < NHID_ARRAY_LEN(kinds); i++)
        kind_ok |= kind && strcmp(kind, kinds[i]) == 0;
    if (!kind_ok || nhid_identity_name_valid("name", name, msg, sizeof(msg)) < 0 ||
        (owner && *owner && nhid_identity_name_valid("owner", owner, msg, sizeof(msg)) < 0) ||
        (strcmp(state, NHID_STATE_PENDING) && strcmp(state, NHID_STATE_ACTIVE)))
        return NHID_ERR_INVALID;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)labels, k,
                        v) if (!label_part_ok(k, 63) || !json_is_string(v) ||
                               !label_part_ok(json_string_value(v), 127)) return NHID_ERR_INVALID;
    NHID_TRY(key_machine(key, sizeof(key), name));
    if (idm_exists(txn, key))
        return NHID_ERR_EXISTS;
    NHID_TRY(idm_key(spiffe, sizeof(spiffe), "spiffe://%s/%s/%s", core->trust_domain, kind, name));
    NHID_TRY(nhid_uuid(id));
    int64_t now = nhid_now();
    rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:[{s:s, s:s, s:s, "
                    "s:s, s:s}]}",
                    "name", name, "id", id, "kind", kind, "owner", owner ? owner : "",
                    "description", "", "labels", labels ? json_deep_copy(labels) : json_object(),
                    "spiffe_id", spiffe, "state", state, "state_reason", "", "created_at",
                    (json_int_t)now, "updated_at", (json_int_t)now, "history", "from", "", "to",
                    state, "who", "import", "when", "", "why", "imported");
    NHID_CHECK_ALLOC(rec);
    NHID_TRY(save_record(core, txn, rec));
    NHID_TRY(index_apply(core, txn, rec, true));
    NHID_TRY(idm_key(key, sizeof(key), "identity/idx/seen/%020" PRId64 "/%s", now, name));
    NHID_TRY(idm_put_empty(txn, key));
    seen = json_pack("{s:I, s:I}", "indexed_at", (json_int_t)now, "last_seen", 0);
    NHID_CHECK_ALLOC(seen);
    NHID_TRY(idm_key(key, sizeof(key), "identity/seen/%s", name));
    NHID_TRY(nhid_core_save_json(core, txn, key, seen));
out:
    json_decref(rec);
    json_decref(seen);
    return rc;
}

/* Merge stored and pending last-seen counters into the presented record. */
static void add_seen(struct nhid_core *core, struct nhid_txn *txn, json_t *o, const char *name)
{
    char key[256];
    json_t *s = NULL;
    snprintf(key, sizeof(key), "identity/seen/%s", name);
    if (nhid_core_load_json(core, txn, key, &s) < 0)
        return;
    char t[NHID_RFC3339_LEN];
    int64_t ls = idm_jint(s, "last_seen");
    if (ls) {
        nhid_time_format(ls, t);
        json_object_set_new(o, "last_seen", json_string(t));
    } else {
        json_object_set_new(o, "last_seen", json_null());
    }
    json_object_set_new(o, "auth_success_count", json_integer(idm_jint(s, "auth_ok")));
    json_object_set_new(o, "auth_failure_count", json_integer(idm_jint(s, "auth_failed")));
    json_object_set_new(o, "last_auth_method", json_string(idm_jstr(s, "method")));
    json_object_set_new(o, "last_source", json_string(idm_jstr(s, "source")));
    json_decref(s);
}

static int load_named(struct nhid_request *req, struct nhid_response *resp, const char **name,
                      json_t **rec)
{
    int rc = param_name(req, resp, "identity name", name);
    if (rc < 0)
        return rc;
    rc = nhid_identity_get(req->core, req->txn, *name, rec);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no identity named %s", *name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    return NHID_OK;
}

static int h_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = NULL;
    json_t *rec = NULL;
    int rc = load_named(req, resp, &name, &rec);
    if (rc < 0)
        return rc;
    resp->data = present(rec);
    add_seen(req->core, req->txn, resp->data, name);
    json_decref(rec);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

static const char *const update_fields[] = {"owner", "labels",    "description",
                                            "kind",  "spiffe_id", NULL};

static int h_update(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = NULL, *owner = NULL, *desc = NULL, *kind = NULL, *spiffe = NULL;
    json_t *rec = NULL, *labels = NULL;
    NHID_TRY(load_named(req, resp, &name, &rec));
    NHID_TRY(nhid_body_only(req, resp, update_fields));
    NHID_TRY(nhid_body_string(req, resp, "owner", NULL, &owner));
    NHID_TRY(nhid_body_string(req, resp, "description", NULL, &desc));
    NHID_TRY(nhid_body_string(req, resp, "kind", NULL, &kind));
    NHID_TRY(nhid_body_string(req, resp, "spiffe_id", NULL, &spiffe));
    NHID_TRY(parse_labels(req, resp, &labels));
    if (kind && strcmp(kind, idm_jstr(rec, "kind")) != 0)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"kind\": cannot be changed (register a new "
                                  "identity instead)"));
    if (spiffe && strcmp(spiffe, idm_jstr(rec, "spiffe_id")) != 0)
        NHID_FAIL(nhid_resp_error(resp, 400,
                                  "field \"spiffe_id\": cannot be changed (register "
                                  "a new identity instead)"));
    if (strcmp(idm_jstr(rec, "state"), NHID_STATE_DECOMMISSIONED) == 0)
        NHID_FAIL(
            nhid_resp_error(resp, 409, "identity %s is decommissioned and cannot change", name));
    NHID_TRY(check_owner(resp, owner));
    NHID_TRY(check_description(resp, desc));
    NHID_TRY(index_apply(req->core, req->txn, rec, false));
    if (owner)
        json_object_set_new(rec, "owner", json_string(owner));
    if (desc)
        json_object_set_new(rec, "description", json_string(desc));
    if (labels) {
        json_object_set(rec, "labels", labels);
    }
    json_object_set_new(rec, "updated_at", json_integer(nhid_now()));
    NHID_TRY(index_apply(req->core, req->txn, rec, true));
    NHID_TRY(save_record(req->core, req->txn, rec));
    resp->data = present(rec);
out:
    json_decref(labels);
    json_decref(rec);
    return rc;
}

static int h_delete(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = NULL;
    json_t *rec = NULL, *seen = NULL;
    char key[512];
    NHID_TRY(load_named(req, resp, &name, &rec));
    if (strcmp(idm_jstr(rec, "state"), NHID_STATE_DECOMMISSIONED) != 0)
        NHID_FAIL(nhid_resp_error(resp, 409,
                                  "identity %s is %s: decommission it first (`nhid identity "
                                  "decommission %s`), which revokes its credentials",
                                  name, idm_jstr(rec, "state"), name));
    NHID_TRY(index_apply(req->core, req->txn, rec, false));
    snprintf(key, sizeof(key), "identity/seen/%s", name);
    if (nhid_core_load_json(req->core, req->txn, key, &seen) == NHID_OK) {
        char ikey[512];
        snprintf(ikey, sizeof(ikey), "identity/idx/seen/%020" PRId64 "/%s",
                 idm_jint(seen, "indexed_at"), name);
        NHID_TRY(nhid_txn_delete(req->txn, ikey));
    }
    NHID_TRY(nhid_txn_delete(req->txn, key));
    NHID_TRY(key_machine(key, sizeof(key), name));
    NHID_TRY(nhid_txn_delete(req->txn, key));
    /* The credential records stay (inventory history); the gate keeps denying its id. */
out:
    json_decref(seen);
    json_decref(rec);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static const char *allowed_from(const char *state)
{
    if (strcmp(state, NHID_STATE_PENDING) == 0)
        return "activate (first login or enrollment), suspend, decommission";
    if (strcmp(state, NHID_STATE_ACTIVE) == 0)
        return "suspend, decommission";
    if (strcmp(state, NHID_STATE_SUSPENDED) == 0)
        return "resume, decommission";
    return "none (decommissioned is terminal)";
}

enum op { OP_SUSPEND, OP_RESUME, OP_DECOMMISSION };

static int transition(struct nhid_request *req, struct nhid_response *resp, enum op op)
{
    static const char *const verbs[] = {"suspend", "resume", "decommission"};
    static const char *const targets[] = {NHID_STATE_SUSPENDED, NHID_STATE_ACTIVE,
                                          NHID_STATE_DECOMMISSIONED};
    static const char *const fields[] = {"reason", NULL};
    int rc = NHID_OK;
    const char *name = NULL, *reason = NULL;
    json_t *rec = NULL;
    char by[160];
    NHID_TRY(load_named(req, resp, &name, &rec));
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_string(req, resp, "reason", "", &reason));
    if (strlen(reason) > REASON_MAX)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"reason\": longer than %d bytes", REASON_MAX));
    const char *st = idm_jstr(rec, "state");
    bool legal = false;
    switch (op) {
    case OP_SUSPEND:
        legal = !strcmp(st, NHID_STATE_PENDING) || !strcmp(st, NHID_STATE_ACTIVE);
        break;
    case OP_RESUME:
        legal = !strcmp(st, NHID_STATE_SUSPENDED);
        break;
    case OP_DECOMMISSION:
        legal = strcmp(st, NHID_STATE_DECOMMISSIONED) != 0;
        break;
    }
    if (!legal)
        NHID_FAIL(nhid_resp_error(resp, 409, "cannot %s identity %s: it is %s; allowed from %s: %s",
                                  verbs[op], name, st, st, allowed_from(st)));
    char from[32];
    snprintf(from, sizeof(from), "%s", st);
    unsigned revoked = 0;
    if (op == OP_DECOMMISSION)
        NHID_TRY(nhid_identity_cred_revoke_all(req->core, req->txn, idm_jstr(rec, "id"),
                                               "identity decommissioned", &revoked));
    NHID_TRY(set_state(req->core, req->txn, rec, targets[op], who(req, by, sizeof(by)),
                       *reason ? reason : NULL));
    resp->data = present(rec);
    if (op == OP_DECOMMISSION)
        json_object_set_new(resp->data, "credentials_revoked", json_integer(revoked));
    resp->audit_extra = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}}", "identity", "name",
                                  name, "entity_id", idm_jstr(rec, "id"), "event", verbs[op],
                                  "from", from, "to", targets[op], "who", by, "why", reason);
out:
    json_decref(rec);
    return rc;
}

static int h_suspend(struct nhid_request *req, struct nhid_response *resp)
{
    return transition(req, resp, OP_SUSPEND);
}

static int h_resume(struct nhid_request *req, struct nhid_response *resp)
{
    return transition(req, resp, OP_RESUME);
}

static int h_decommission(struct nhid_request *req, struct nhid_response *resp)
{
    return transition(req, resp, OP_DECOMMISSION);
}

/* ---- credentials inventory ---------------------------------------------------------- */

struct cred_collect {
    struct nhid_core *core;
    json_t *out;
    size_t max;
};

static int cred_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct cred_collect *c = arg;
    if (json_array_size(c->out) >= c->max)
        return 1;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    uint32_t term;
    if (nhid_barrier_decrypt(c->core->barrier, key, val, len, &pt, &ptlen, &term) < 0)
        return 0;
    json_t *rec = json_loadb((const char *)pt, ptlen, 0, NULL);
    nhid_free_secret(pt, ptlen);
    if (rec == NULL)
        return 0;
    int64_t now = nhid_now();
    char t[NHID_RFC3339_LEN];
    const char *status = json_is_true(json_object_get(rec, "revoked"))
                             ? "revoked"
                             : (idm_jint(rec, "expires") <= now ? "expired" : "active");
    json_object_set_new(rec, "status", json_string(status));
    static const char *const times[] = {"issued", "expires", "last_used", "revoked_at"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(times); i++) {
        json_t *v = json_object_get(rec, times[i]);
        if (json_is_integer(v)) {
            if (json_integer_value(v) == 0) {
                json_object_set_new(rec, times[i], json_null());
            } else {
                nhid_time_format(json_integer_value(v), t);
                json_object_set_new(rec, times[i], json_string(t));
            }
        }
    }
    json_array_append_new(c->out, rec);
    return 0;
}

static int h_creds(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = NULL;
    json_t *rec = NULL;
    int rc = load_named(req, resp, &name, &rec);
    if (rc < 0)
        return rc;
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "identity/cred/%s/", idm_jstr(rec, "id"));
    struct cred_collect c = {req->core, json_array(), CREDS_MAX};
    rc = nhid_txn_scan_prefix(req->txn, prefix, NULL, 0, false, cred_cb, &c);
    if (rc < 0) {
        json_decref(c.out);
        json_decref(rec);
        return nhid_resp_fail(resp, rc, NULL);
    }
    resp->data = json_pack("{s:s, s:s, s:s, s:o}", "name", name, "entity_id", idm_jstr(rec, "id"),
                           "state", idm_jstr(rec, "state"), "credentials", c.out);
    json_decref(rec);
    return NHID_OK;
}

/* ---- filtered list ---------------------------------------------------------------- */

struct name_set {
    char **v;
    size_t n, cap;
};

static int set_add(struct name_set *s, const char *name)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        char **nv = realloc(s->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return NHID_ERR_NOMEM;
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n] = strdup(name);
    if (s->v[s->n] == NULL)
        return NHID_ERR_NOMEM;
    s->n++;
    return NHID_OK;
}

static void set_free(struct name_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sort and drop duplicates. */
static void set_sort_unique(struct name_set *s)
{
    qsort(s->v, s->n, sizeof(*s->v), cmp_str);
    size_t o = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (o > 0 && strcmp(s->v[o - 1], s->v[i]) == 0) {
            free(s->v[i]);
            continue;
        }
        s->v[o++] = s->v[i];
    }
    s->n = o;
}

struct list_q {
    char *prefixes[4]; /* index prefixes every result must be under */
    size_t n_prefixes;
    int64_t seen_before; /* 0 = no filter */
    int64_t expiring_within;
    const char *after;
    size_t limit;
};

struct probe {
    size_t n, max;
};

static int probe_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)key;
    (void)val;
    (void)len;
    struct probe *p = arg;
    return ++p->n >= p->max;
}

struct walk {
    struct nhid_core *core;
    struct nhid_txn *txn;
    struct list_q *q;
    size_t skip_prefix; /* index of the prefix being walked (not re-checked), or SIZE_MAX */
    size_t prefix_len;
    json_t *keys;
    size_t scanned;
    char last[NHID_IDENTITY_NAME_MAX + 1];
    bool more;
    int rc;
};

static bool matches(struct walk *w, const char *name)
{
    char key[512];
    for (size_t i = 0; i < w->q->n_prefixes; i++) {
        if (i == w->skip_prefix)
            continue;
        if (snprintf(key, sizeof(key), "%s%s", w->q->prefixes[i], name) >= (int)sizeof(key))
            return false;
        if (!idm_exists(w->txn, key))
            return false;
    }
    if (w->q->seen_before) {
        json_t *s = NULL;
        snprintf(key, sizeof(key), "identity/seen/%s", name);
        if (nhid_core_load_json(w->core, w->txn, key, &s) < 0)
            return false;
        bool ok = idm_jint(s, "indexed_at") < w->q->seen_before;
        json_decref(s);
        if (!ok)
            return false;
    }
    return true;
}

/* Visit one candidate name; returns nonzero to stop. */
static int visit(struct walk *w, const char *name)
{
    if (strlen(name) > NHID_IDENTITY_NAME_MAX)
        return 0;
    if (w->q->after && strcmp(name, w->q->after) <= 0)
        return 0;
    if (json_array_size(w->keys) >= w->q->limit) {
        w->more = true;
        return 1;
    }
    if (w->scanned >= LIST_SCAN_MAX) {
        w->more = true;
        return 1;
    }
    w->scanned++;
    snprintf(w->last, sizeof(w->last), "%s", name);
    if (matches(w, name))
        json_array_append_new(w->keys, json_string(name));
    return 0;
}

static int walk_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct walk *w = arg;
    return visit(w, key + w->prefix_len);
}

struct set_walk {
    struct name_set *set;
    size_t prefix_len;
    bool name_after_ts; /* key is <prefix><ts>/<name> */
    int64_t max;
};

static int set_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct set_walk *s = arg;
    if (s->set->n >= LIST_SET_MAX)
        return 1;
    const char *rest = key + s->prefix_len;
    const char *slash = strchr(rest, '/');
    if (slash == NULL)
        return 0;
    if (set_add(s->set, slash + 1) < 0)
        return 1;
    return 0;
}

/* Names of identities holding a live credential expiring before `until`. */
struct exp_walk {
    struct nhid_core *core;
    struct nhid_txn *txn;
    struct name_set *set;
    struct hmap seen; /* entity ids done */
};

static int exp_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct exp_walk *e = arg;
    if (e->set->n >= LIST_SET_MAX)
        return 1;
    /* identity/cred-expiry/<ts>/<entity>/<type>/<id> */
    const char *p = key + strlen("identity/cred-expiry/");
    const char *s1 = strchr(p, '/');
    if (s1 == NULL)
        return 0;
    const char *s2 = strchr(s1 + 1, '/');
    if (s2 == NULL || s2 - s1 - 1 >= 64)
        return 0;
    char ent[64];
    snprintf(ent, sizeof(ent), "%.*s", (int)(s2 - s1 - 1), s1 + 1);
    if (hmap_get(&e->seen, ent))
        return 0;
    if (hmap_put(&e->seen, ent, (void *)1) < 0)
        return 1;
    char ikey[128];
    json_t *ref = NULL;
    snprintf(ikey, sizeof(ikey), "identity/idx/id/%s", ent);
    if (nhid_core_load_json(e->core, e->txn, ikey, &ref) == NHID_OK) {
        set_add(e->set, idm_jstr(ref, "name"));
        json_decref(ref);
    }
    return 0;
}

static int expiring_names(struct nhid_core *core, struct nhid_txn *txn, int64_t from, int64_t to,
                          struct name_set *set)
{
    char start[64], end[64];
    snprintf(start, sizeof(start), "identity/cred-expiry/%020" PRId64 "/", from);
    snprintf(end, sizeof(end), "identity/cred-expiry/%020" PRId64 "/", to);
    struct exp_walk e = {core, txn, set, {0}};
    int rc = nhid_txn_scan(txn, start, end, 0, true, exp_cb, &e);
    hmap_clear(&e.seen, NULL);
    return rc;
}

static int parse_time_filter(struct nhid_response *resp, const char *field, const char *v,
                             bool past, int64_t *out)
{
    int64_t t;
    char err[160];
    if (nhid_time_parse(v, &t) == NHID_OK) {
        *out = t;
        return NHID_OK;
    }
    int64_t d;
    if (nhid_duration_parse(v, &d, err, sizeof(err)) < 0)
        return nhid_resp_error(resp, 400,
                               "query \"%s\": \"%.40s\" is neither an RFC 3339 time nor a "
                               "duration (%s)",
                               field, v, err);
    *out = past ? nhid_now() - d : d;
    return NHID_OK;
}

static int h_list(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    struct list_q q = {0};
    struct name_set set = {0};
    char *owner = nhid_req_query(req, "owner"), *kind = nhid_req_query(req, "kind");
    char *state = nhid_req_query(req, "state"), *label = nhid_req_query(req, "label");
    char *seen = nhid_req_query(req, "last_seen_before");
    char *exp = nhid_req_query(req, "credential_expiring_within");
    char *after = nhid_req_query(req, "after"), *limit = nhid_req_query(req, "limit");
    char msg[256];
    struct walk w = {0};
    w.keys = json_array();
    NHID_CHECK_ALLOC(w.keys);
    q.limit = LIST_LIMIT_DEFAULT;
    if (limit) {
        char *end;
        unsigned long l = strtoul(limit, &end, 10);
        if (*end || l == 0 || l > LIST_LIMIT_MAX)
            NHID_FAIL(nhid_resp_error(resp, 400, "query \"limit\": use 1 to %d", LIST_LIMIT_MAX));
        q.limit = l;
    }
    if (after && *after)
        q.after = after;
#define ADD_PREFIX(fmt, a)                                                                         \
    do {                                                                                           \
        if (asprintf(&q.prefixes[q.n_prefixes], fmt, a) < 0)                                       \
            NHID_FAIL(NHID_ERR_NOMEM);                                                             \
        q.n_prefixes++;                                                                            \
    } while (0)
    if (label) {
        const char *eq = strchr(label, '=');
        if (eq == NULL || strchr(label, '/'))
            NHID_FAIL(nhid_resp_error(resp, 400, "query \"label\": use key=value"));
        ADD_PREFIX("identity/idx/label/%s/", label);
    }
    if (owner) {
        if (*owner && nhid_identity_name_valid("query \"owner\"", owner, msg, sizeof(msg)) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400, "%s", msg));
        if (*owner)
            ADD_PREFIX("identity/idx/owner/%s/", owner);
        else
            ADD_PREFIX("identity/idx/noowner/%s", "");
    }
    if (state) {
        if (strcmp(state, NHID_STATE_PENDING) && strcmp(state, NHID_STATE_ACTIVE) &&
            strcmp(state, NHID_STATE_SUSPENDED) && strcmp(state, NHID_STATE_DECOMMISSIONED))
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "query \"state\": \"%.32s\" is not a state (use "
                                      "pending, active, suspended, decommissioned)",
                                      state));
        ADD_PREFIX("identity/idx/state/%s/", state);
    }
    if (kind) {
        bool ok = false;
        for (size_t i = 0; i < NHID_ARRAY_LEN(kinds); i++)
            ok |= strcmp(kind, kinds[i]) == 0;
        if (!ok)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "query \"kind\": \"%.32s\" is not a kind (use "
                                      "workload, device, service, pipeline, bot, "
                                      "agent)",
                                      kind));
        ADD_PREFIX("identity/idx/kind/%s/", kind);
    }
#undef ADD_PREFIX
    if (seen)
        NHID_TRY(parse_time_filter(resp, "last_seen_before", seen, true, &q.seen_before));
    if (exp)
        NHID_TRY(
            parse_time_filter(resp, "credential_expiring_within", exp, false, &q.expiring_within));
    w.core = req->core;
    w.txn = req->txn;
    w.q = &q;
    w.skip_prefix = SIZE_MAX;
    if (exp || (seen && q.n_prefixes == 0)) {
        /* Walk a set built from a time-ordered index, in name order. */
        int64_t now = nhid_now();
        if (exp) {
            NHID_TRY(expiring_names(req->core, req->txn, now, now + q.expiring_within, &set));
        } else {
            char end[64];
            snprintf(end, sizeof(end), "identity/idx/seen/%020" PRId64 "/", q.seen_before);
            struct set_walk sw = {&set, strlen("identity/idx/seen/"), true, 0};
            NHID_TRY(nhid_txn_scan(req->txn, "identity/idx/seen/", end, 0, true, set_cb, &sw));
            q.seen_before = 0; /* the walk itself applied it */
        }
        bool truncated = set.n >= LIST_SET_MAX;
        set_sort_unique(&set);
        for (size_t i = 0; i < set.n; i++)
            if (visit(&w, set.v[i]))
                break;
        if (truncated && !w.more)
            resp->warnings = json_pack("[s]", "more than 10000 identities match the time filter; "
                                              "narrow it with another filter");
    } else if (q.n_prefixes > 0) {
        /* Probe each index with a bounded scan and walk the smallest. */
        size_t best = 0, best_n = SIZE_MAX;
        for (size_t i = 0; i < q.n_prefixes && q.n_prefixes > 1; i++) {
            struct probe p = {0, PROBE_MAX};
            NHID_TRY(
                nhid_txn_scan_prefix(req->txn, q.prefixes[i], NULL, PROBE_MAX, true, probe_cb, &p));
            if (p.n < best_n) {
                best_n = p.n;
                best = i;
            }
        }
        w.skip_prefix = best;
        w.prefix_len = strlen(q.prefixes[best]);
        char akey[512] = "";
        if (q.after)
            snprintf(akey, sizeof(akey), "%s%s", q.prefixes[best], q.after);
        NHID_TRY(nhid_txn_scan_prefix(req->txn, q.prefixes[best], q.after ? akey : NULL, 0, true,
                                      walk_cb, &w));
    } else {
        w.prefix_len = strlen("identity/machine/");
        char akey[512] = "";
        if (q.after)
            snprintf(akey, sizeof(akey), "identity/machine/%s", q.after);
        NHID_TRY(nhid_txn_scan_prefix(req->txn, "identity/machine/", q.after ? akey : NULL, 0, true,
                                      walk_cb, &w));
    }
    /* key_info: a summary of each listed identity (Vault's LIST shape). */
    json_t *info = json_object();
    NHID_CHECK_ALLOC(info);
    size_t i;
    json_t *v;
    json_array_foreach(w.keys, i, v)
    {
        json_t *rec = NULL;
        if (nhid_identity_get(req->core, req->txn, json_string_value(v), &rec) == NHID_OK) {
            json_object_set_new(info, json_string_value(v),
                                json_pack("{s:s, s:s, s:s, s:s}", "kind", idm_jstr(rec, "kind"),
                                          "owner", idm_jstr(rec, "owner"), "state",
                                          idm_jstr(rec, "state"), "spiffe_id",
                                          idm_jstr(rec, "spiffe_id")));
            json_decref(rec);
        }
    }
    resp->data = json_pack("{s:O, s:o}", "keys", w.keys, "key_info", info);
    if (resp->data && w.more)
        json_object_set_new(resp->data, "next_after", json_string(w.last));
out:
    for (size_t k = 0; k < q.n_prefixes; k++)
        free(q.prefixes[k]);
    set_free(&set);
    json_decref(w.keys);
    free(owner);
    free(kind);
    free(state);
    free(label);
    free(seen);
    free(exp);
    free(after);
    free(limit);
    return rc;
}

/* ---- groups ------------------------------------------------------------------------- */

static int group_key(char *out, size_t len, const char *name)
{
    return idm_key(out, len, "identity/group/%s", name);
}

/* Does group `start` (transitively) contain group `target`? Bounded depth. */
static int group_reaches(struct nhid_core *core, struct nhid_txn *txn, const char *start,
                         const char *target, int depth, bool *found)
{
    if (strcmp(start, target) == 0) {
        *found = true;
        return NHID_OK;
    }
    if (depth > GROUP_DEPTH_MAX)
        return NHID_ERR_TOO_LARGE;
    char key[256];
    json_t *g = NULL;
    if (group_key(key, sizeof(key), start) < 0 || nhid_core_load_json(core, txn, key, &g) < 0)
        return NHID_OK;
    size_t i;
    json_t *v;
    int rc = NHID_OK;
    json_array_foreach(json_object_get(g, "member_groups"), i, v)
    {
        rc = group_reaches(core, txn, json_string_value(v), target, depth + 1, found);
        if (rc < 0 || *found)
            break;
    }
    json_decref(g);
    return rc;
}

static const char *const group_fields[] = {"member_identities", "member_groups", "description",
                                           NULL};

static int h_group_write(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    const char *name = NULL, *desc = NULL;
    json_t *ids = NULL, *groups = NULL, *old = NULL, *rec = NULL;
    char key[512], msg[256];
    NHID_TRY(param_name(req, resp, "group name", &name));
    NHID_TRY(nhid_body_only(req, resp, group_fields));
    NHID_TRY(nhid_body_string(req, resp, "description", NULL, &desc));
    NHID_TRY(check_description(resp, desc));
    NHID_TRY(group_key(key, sizeof(key), name));
    rc = nhid_core_load_json(req->core, req->txn, key, &old);
    if (rc < 0 && rc != NHID_ERR_NOT_FOUND)
        NHID_FAIL(nhid_resp_fail(resp, rc, NULL));
    rc = NHID_OK;
    if (json_object_get(req->body, "member_identities"))
        NHID_TRY(nhid_body_string_list(req, resp, "member_identities", &ids));
    else
        ids = old ? json_incref(json_object_get(old, "member_identities")) : json_array();
    if (json_object_get(req->body, "member_groups"))
        NHID_TRY(nhid_body_string_list(req, resp, "member_groups", &groups));
    else
        groups = old ? json_incref(json_object_get(old, "member_groups")) : json_array();
    if (json_array_size(ids) + json_array_size(groups) > GROUP_MEMBERS_MAX)
        NHID_FAIL(nhid_resp_error(resp, 400, "a group has at most %d members", GROUP_MEMBERS_MAX));
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        const char *m = json_string_value(v);
        char mkey[256];
        if (nhid_identity_name_valid("field \"member_identities\"", m, msg, sizeof(msg)) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400, "%s", msg));
        NHID_TRY(key_machine(mkey, sizeof(mkey), m));
        if (!idm_exists(req->txn, mkey))
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"member_identities\": no identity "
                                      "named %s",
                                      m));
    }
    json_array_foreach(groups, i, v)
    {
        const char *m = json_string_value(v);
        char mkey[256];
        bool cycle = false;
        if (nhid_identity_name_valid("field \"member_groups\"", m, msg, sizeof(msg)) < 0)
            NHID_FAIL(nhid_resp_error(resp, 400, "%s", msg));
        NHID_TRY(group_key(mkey, sizeof(mkey), m));
        if (!idm_exists(req->txn, mkey))
            NHID_FAIL(nhid_resp_error(resp, 400, "field \"member_groups\": no group named %s", m));
        if (group_reaches(req->core, req->txn, m, name, 0, &cycle) < 0 || cycle)
            NHID_FAIL(nhid_resp_error(resp, 400,
                                      "field \"member_groups\": %s would make a cycle (or nests "
                                      "deeper than %d)",
                                      m, GROUP_DEPTH_MAX));
    }
    /* Reverse index identity → group (policies use groups as parents). */
    json_array_foreach(json_object_get(old, "member_identities"), i, v)
    {
        char mkey[512];
        snprintf(mkey, sizeof(mkey), "identity/idx/member/%s/%s", json_string_value(v), name);
        NHID_TRY(nhid_txn_delete(req->txn, mkey));
    }
    json_array_foreach(ids, i, v)
    {
        char mkey[512];
        snprintf(mkey, sizeof(mkey), "identity/idx/member/%s/%s", json_string_value(v), name);
        NHID_TRY(idm_put_empty(req->txn, mkey));
    }
    /* ... and nested group → its parent groups (policy ancestors). */
    json_array_foreach(json_object_get(old, "member_groups"), i, v)
    {
        char mkey[512];
        snprintf(mkey, sizeof(mkey), "identity/idx/subgroup/%s/%s", json_string_value(v), name);
        NHID_TRY(nhid_txn_delete(req->txn, mkey));
    }
    json_array_foreach(groups, i, v)
    {
        char mkey[512];
        snprintf(mkey, sizeof(mkey), "identity/idx/subgroup/%s/%s", json_string_value(v), name);
        NHID_TRY(idm_put_empty(req->txn, mkey));
    }
    int64_t now = nhid_now();
    char id[37];
    if (old)
        snprintf(id, sizeof(id), "%s", idm_jstr(old, "id"));
    else
        NHID_TRY(nhid_uuid(id));
    rec = json_pack("{s:s, s:s, s:s, s:O, s:O, s:I, s:I}", "name", name, "id", id, "description",
                    desc ? desc : (old ? idm_jstr(old, "description") : ""), "member_identities",
                    ids, "member_groups", groups, "created_at",
                    (json_int_t)(old ? idm_jint(old, "created_at") : now), "updated_at",
                    (json_int_t)now);
    NHID_CHECK_ALLOC(rec);
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, rec));
    resp->data = present(rec);
out:
    json_decref(ids);
    json_decref(groups);
    json_decref(old);
    json_decref(rec);
    return rc;
}

static int h_group_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = NULL;
    char key[256];
    json_t *g = NULL;
    int rc = param_name(req, resp, "group name", &name);
    if (rc < 0)
        return rc;
    if (group_key(key, sizeof(key), name) < 0)
        return nhid_resp_error(resp, 404, "no group named %s", name);
    rc = nhid_core_load_json(req->core, req->txn, key, &g);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no group named %s", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    resp->data = present(g);
    json_decref(g);
    return NHID_OK;
}

static int h_group_delete(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = NULL;
    char key[256];
    json_t *g = NULL;
    int rc = param_name(req, resp, "group name", &name);
    if (rc < 0)
        return rc;
    if (group_key(key, sizeof(key), name) < 0 ||
        nhid_core_load_json(req->core, req->txn, key, &g) < 0)
        return NHID_OK; /* idempotent */
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(g, "member_identities"), i, v)
    {
        char mkey[512];
        snprintf(mkey, sizeof(mkey), "identity/idx/member/%s/%s", json_string_value(v), name);
        if ((rc = nhid_txn_delete(req->txn, mkey)) < 0)
            break;
    }
    json_array_foreach(json_object_get(g, "member_groups"), i, v)
    {
        char mkey[512];
        snprintf(mkey, sizeof(mkey), "identity/idx/subgroup/%s/%s", json_string_value(v), name);
        if (rc == NHID_OK)
            rc = nhid_txn_delete(req->txn, mkey);
    }
    json_decref(g);
    if (rc == NHID_OK)
        rc = nhid_txn_delete(req->txn, key);
    return rc;
}

struct keys_cb {
    json_t *keys;
    size_t plen;
    size_t max;
};

static int keys_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct keys_cb *k = arg;
    if (json_array_size(k->keys) >= k->max)
        return 1;
    json_array_append_new(k->keys, json_string(key + k->plen));
    return 0;
}

static int h_group_list(struct nhid_request *req, struct nhid_response *resp)
{
    struct keys_cb k = {json_array(), strlen("identity/group/"), 10000};
    char *after = nhid_req_query(req, "after");
    char akey[512] = "";
    if (after && strlen(after) <= NHID_IDENTITY_NAME_MAX)
        snprintf(akey, sizeof(akey), "identity/group/%s", after);
    int rc = nhid_txn_scan_prefix(req->txn, "identity/group/", akey[0] ? akey : NULL, 0, true,
                                  keys_cb, &k);
    free(after);
    if (rc < 0) {
        json_decref(k.keys);
        return nhid_resp_fail(resp, rc, NULL);
    }
    resp->data = json_pack("{s:o}", "keys", k.keys);
    return NHID_OK;
}

/* ---- hygiene report ------------------------------------------------------------------ */

static int query_days(struct nhid_request *req, struct nhid_response *resp, const char *field,
                      int64_t def, int64_t *out)
{
    char *v = nhid_req_query(req, field);
    if (v == NULL) {
        *out = def;
        return NHID_OK;
    }
    char *end;
    long long d = strtoll(v, &end, 10);
    int rc = NHID_OK;
    if (*v == '\0' || *end || d < 0 || d > 36500)
        rc = nhid_resp_error(resp, 400,
                             "query \"%s\": \"%.20s\" is not a number of days (0 to "
                             "36500)",
                             field, v);
    else
        *out = d;
    free(v);
    return rc;
}

struct report_ctx {
    struct nhid_core *core;
    struct nhid_txn *txn;
    json_t *out;
    size_t plen;
    int kind; /* 0 names, 1 stale (ts/name), 2 expiring, 3 multinet, 4 suspended */
};

static json_t *name_of_entity(struct report_ctx *r, const char *ent, size_t entlen)
{
    char key[160];
    json_t *ref = NULL;
    if (entlen >= 64)
        return json_null();
    snprintf(key, sizeof(key), "identity/idx/id/%.*s", (int)entlen, ent);
    if (nhid_core_load_json(r->core, r->txn, key, &ref) < 0)
        return json_null();
    json_t *s = json_string(idm_jstr(ref, "name"));
    json_decref(ref);
    return s;
}

static int report_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct report_ctx *r = arg;
    if (json_array_size(r->out) >= REPORT_MAX)
        return 1;
    const char *rest = key + r->plen;
    char t[NHID_RFC3339_LEN];
    switch (r->kind) {
    case 0:
        json_array_append_new(r->out, json_string(rest));
        break;
    case 1: {
        const char *slash = strchr(rest, '/');
        if (slash == NULL)
            break;
        int64_t ts = strtoll(rest, NULL, 10);
        json_t *s = NULL;
        char skey[256];
        snprintf(skey, sizeof(skey), "identity/seen/%s", slash + 1);
        bool never = true;
        if (nhid_core_load_json(r->core, r->txn, skey, &s) == NHID_OK) {
            never = idm_jint(s, "last_seen") == 0;
            json_decref(s);
        }
        nhid_time_format(ts, t);
        json_array_append_new(r->out, json_pack("{s:s, s:s, s:b}", "name", slash + 1,
                                                never ? "created_at" : "last_seen", t, "never_seen",
                                                never));
        break;
    }
    case 2:
    case 3: {
        /* 2: <ts>/<entity>/<type>/<id>; 3: <entity>/<type>/<id> */
        const char *p = rest;
        int64_t ts = 0;
        if (r->kind == 2) {
            ts = strtoll(p, NULL, 10);
            p = strchr(p, '/');
            if (p == NULL)
                break;
            p++;
        }
        const char *s1 = strchr(p, '/');
        const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
        if (s2 == NULL)
            break;
        json_t *o =
            json_pack("{s:o, s:s%, s:s}", "identity", name_of_entity(r, p, (size_t)(s1 - p)),
                      "type", s1 + 1, (size_t)(s2 - s1 - 1), "id", s2 + 1);
        if (o && r->kind == 2) {
            nhid_time_format(ts, t);
            json_object_set_new(o, "expires", json_string(t));
        }
        if (o)
            json_array_append_new(r->out, o);
        break;
    }
    case 4: {
        json_t *rec = NULL;
        if (nhid_identity_get(r->core, r->txn, rest, &rec) == NHID_OK) {
            json_array_append_new(r->out, json_pack("{s:s, s:s}", "name", rest, "reason",
                                                    idm_jstr(rec, "state_reason")));
            json_decref(rec);
        }
        break;
    }
    }
    return 0;
}

static int h_report(struct nhid_request *req, struct nhid_response *resp)
{
    int rc = NHID_OK;
    int64_t stale_days, exp_days;
    NHID_TRY(query_days(req, resp, "stale_days", 30, &stale_days));
    NHID_TRY(query_days(req, resp, "expiring_days", 7, &exp_days));
    int64_t now = nhid_now();
    json_t *sec[5] = {json_array(), json_array(), json_array(), json_array(), json_array()};
    for (int i = 0; i < 5; i++)
        if (sec[i] == NULL)
            rc = NHID_ERR_NOMEM;
    struct report_ctx r = {req->core, req->txn, NULL, 0, 0};
    char start[96], end[96];
    if (rc == NHID_OK) {
        r.out = sec[0];
        r.kind = 0;
        r.plen = strlen("identity/idx/noowner/");
        rc = nhid_txn_scan_prefix(req->txn, "identity/idx/noowner/", NULL, 0, true, report_cb, &r);
    }
    if (rc == NHID_OK) {
        r.out = sec[1];
        r.kind = 1;
        r.plen = strlen("identity/idx/seen/");
        snprintf(end, sizeof(end), "identity/idx/seen/%020" PRId64 "/", now - stale_days * 86400);
        rc = nhid_txn_scan(req->txn, "identity/idx/seen/", end, 0, true, report_cb, &r);
    }
    if (rc == NHID_OK) {
        r.out = sec[2];
        r.kind = 2;
        r.plen = strlen("identity/cred-expiry/");
        snprintf(start, sizeof(start), "identity/cred-expiry/%020" PRId64 "/", now);
        snprintf(end, sizeof(end), "identity/cred-expiry/%020" PRId64 "/", now + exp_days * 86400);
        rc = nhid_txn_scan(req->txn, start, end, 0, true, report_cb, &r);
    }
    if (rc == NHID_OK) {
        r.out = sec[3];
        r.kind = 3;
        r.plen = strlen("identity/idx/multinet/");
        rc = nhid_txn_scan_prefix(req->txn, "identity/idx/multinet/", NULL, 0, true, report_cb, &r);
    }
    if (rc == NHID_OK) {
        r.out = sec[4];
        r.kind = 4;
        r.plen = strlen("identity/idx/state/suspended/");
        rc = nhid_txn_scan_prefix(req->txn, "identity/idx/state/suspended/", NULL, 0, true,
                                  report_cb, &r);
    }
    if (rc < 0) {
        for (int i = 0; i < 5; i++)
            json_decref(sec[i]);
        NHID_FAIL(nhid_resp_fail(resp, rc, NULL));
    }
    /* Stale skips identities that are decommissioned (nothing left to clean up). */
    resp->data = json_pack(
        "{s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "stale_days",
        (json_int_t)stale_days, "expiring_days", (json_int_t)exp_days, "orphans", sec[0], "stale",
        sec[1], "expiring", sec[2], "multi_network", sec[3], "suspended", sec[4], "counts",
        "orphans", (json_int_t)json_array_size(sec[0]), "stale",
        (json_int_t)json_array_size(sec[1]), "expiring", (json_int_t)json_array_size(sec[2]),
        "multi_network", (json_int_t)json_array_size(sec[3]), "suspended",
        (json_int_t)json_array_size(sec[4]));
out:
    return rc;
}

/* ---- flush job, unseal ------------------------------------------------------------- */

int idm_flush_uses(struct nhid_core *core, struct nhid_txn *txn, struct hmap *m);

struct flush_arg {
    struct hmap seen, uses;
};

static int flush_seen(struct nhid_core *core, struct nhid_txn *txn, struct hmap *m)
{
    int rc = NHID_OK;
    for (size_t b = 0; b < m->nb; b++) {
        for (struct hent *e = m->b[b]; e; e = e->next) {
            struct idm_seen *s = e->val;
            char key[256], ikey[320], mkey[256];
            json_t *rec = NULL;
            if (key_machine(mkey, sizeof(mkey), e->key) < 0 || !idm_exists(txn, mkey))
                continue; /* deleted meanwhile */
            snprintf(key, sizeof(key), "identity/seen/%s", e->key);
            rc = nhid_core_load_json(core, txn, key, &rec);
            if (rc == NHID_ERR_NOT_FOUND) {
                rec = json_object();
                rc = rec ? NHID_OK : NHID_ERR_NOMEM;
            }
            NHID_TRY(rc);
            int64_t old_idx = idm_jint(rec, "indexed_at");
            if (old_idx) {
                snprintf(ikey, sizeof(ikey), "identity/idx/seen/%020" PRId64 "/%s", old_idx,
                         e->key);
                rc = nhid_txn_delete(txn, ikey);
            }
            if (rc == NHID_OK) {
                snprintf(ikey, sizeof(ikey), "identity/idx/seen/%020" PRId64 "/%s", s->last_seen,
                         e->key);
                rc = idm_put_empty(txn, ikey);
            }
            json_object_set_new(rec, "indexed_at", json_integer(s->last_seen));
            json_object_set_new(rec, "last_seen", json_integer(s->last_seen));
            json_object_set_new(rec, "auth_ok",
                                json_integer(idm_jint(rec, "auth_ok") + (json_int_t)s->ok));
            json_object_set_new(rec, "auth_failed",
                                json_integer(idm_jint(rec, "auth_failed") + (json_int_t)s->failed));
            json_object_set_new(rec, "method", json_string(s->method));
            json_object_set_new(rec, "source", json_string(s->source));
            if (rc == NHID_OK)
                rc = nhid_core_save_json(core, txn, key, rec);
            json_decref(rec);
            NHID_TRY(rc);
        }
    }
out:
    return rc;
}

static int flush_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct flush_arg *f = arg;
    int rc = flush_seen(core, txn, &f->seen);
    if (rc == NHID_OK)
        rc = idm_flush_uses(core, txn, &f->uses);
    return rc;
}

int idm_flush(struct nhid_core *core)
{
    struct flush_arg f;
    idm_take_seen(&f.seen);
    idm_take_uses(&f.uses);
    int rc = NHID_OK;
    if (f.seen.n || f.uses.n)
        rc = nhid_core_write(core, flush_txn, &f);
    if (rc < 0)
        nhid_warn(MOD, "flushing usage counters failed: %s (counters dropped)", nhid_strerror(rc));
    hmap_clear(&f.seen, free);
    hmap_clear(&f.uses, free);
    return rc;
}

static int flush_job(struct nhid_core *core)
{
    return idm_flush(core);
}

struct gate_load {
    struct nhid_core *core;
    struct nhid_txn *txn;
    size_t plen;
    const char *state;
};

static int gate_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct gate_load *g = arg;
    json_t *rec = NULL;
    if (nhid_identity_get(g->core, g->txn, key + g->plen, &rec) == NHID_OK) {
        idm_gate_set(idm_jstr(rec, "id"), idm_jstr(rec, "name"), g->state);
        json_decref(rec);
    }
    return 0;
}

/* ---- policy entities (core->identity_entities) ------------------------------------- */

#define ENTITY_GROUPS_MAX 256

struct parent_scan {
    json_t *parents; /* array of uids */
    size_t plen;
};

static int parent_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct parent_scan *p = arg;
    if (json_array_size(p->parents) >= ENTITY_GROUPS_MAX)
        return 1;
    json_array_append_new(p->parents,
                          json_pack("{s:s, s:s}", "type", "Group", "id", key + p->plen));
    return 0;
}

static int group_parents(struct nhid_txn *txn, const char *kind, const char *name, json_t **out)
{
    char prefix[320];
    snprintf(prefix, sizeof(prefix), "identity/idx/%s/%s/", kind, name);
    struct parent_scan p = {json_array(), strlen(prefix)};
    if (p.parents == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_txn_scan_prefix(txn, prefix, NULL, ENTITY_GROUPS_MAX, true, parent_cb, &p);
    if (rc < 0) {
        json_decref(p.parents);
        return rc;
    }
    *out = p.parents;
    return NHID_OK;
}

/*
 * Machine::"<name>" {kind, owner, labels, state, spiffe_id, entity_id} in
 * Group::"<g>" (direct memberships) and Owner::"<owner>"; then every
 * ancestor group (breadth-first, bounded).
 */
static int identity_entities(struct nhid_core *core, struct nhid_txn *txn, const char *name,
                             json_t *entities, char *state_out, size_t statelen)
{
    int rc = NHID_OK;
    json_t *rec = NULL, *parents = NULL, *queue = NULL;
    rc = nhid_identity_get(core, txn, name, &rec);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK; /* a bare Machine entity */
    if (rc < 0)
        return rc;
    snprintf(state_out, statelen, "%s", idm_jstr(rec, "state"));
    NHID_TRY(group_parents(txn, "member", name, &parents));
    const char *owner = idm_jstr(rec, "owner");
    if (*owner) {
        json_array_append_new(parents, json_pack("{s:s, s:s}", "type", "Owner", "id", owner));
        json_array_append_new(entities,
                              json_pack("{s:{s:s, s:s}, s:{s:s}, s:[]}", "uid", "type", "Owner",
                                        "id", owner, "attrs", "name", owner, "parents"));
    }
    json_t *labels = json_object_get(rec, "labels");
    json_array_append_new(entities,
                          json_pack("{s:{s:s, s:s}, s:{s:s, s:s, s:s, s:o, s:s, s:s, s:s}, s:O}",
                                    "uid", "type", "Machine", "id", name, "attrs", "name", name,
                                    "kind", idm_jstr(rec, "kind"), "owner", owner, "labels",
                                    json_is_object(labels) ? json_deep_copy(labels) : json_object(),
                                    "state", idm_jstr(rec, "state"), "spiffe_id",
                                    idm_jstr(rec, "spiffe_id"), "entity_id", idm_jstr(rec, "id"),
                                    "parents", parents));
    /* Ancestor groups. */
    queue = json_array();
    NHID_CHECK_ALLOC(queue);
    struct hmap done = {0};
    size_t i;
    json_t *v;
    json_array_foreach(parents, i, v) if (!strcmp(idm_jstr(v, "type"), "Group"))
        json_array_append(queue, json_object_get(v, "id"));
    for (size_t k = 0; k < json_array_size(queue) && k < ENTITY_GROUPS_MAX; k++) {
        const char *g = json_string_value(json_array_get(queue, k));
        if (hmap_get(&done, g))
            continue;
        if (hmap_put(&done, g, (void *)1) < 0) {
            rc = NHID_ERR_NOMEM;
            break;
        }
        json_t *gp = NULL;
        rc = group_parents(txn, "subgroup", g, &gp);
        if (rc < 0)
            break;
        json_array_foreach(gp, i, v) json_array_append(queue, json_object_get(v, "id"));
        json_array_append_new(entities,
                              json_pack("{s:{s:s, s:s}, s:{s:s}, s:o}", "uid", "type", "Group",
                                        "id", g, "attrs", "name", g, "parents", gp));
    }
    hmap_clear(&done, NULL);
out:
    json_decref(rec);
    json_decref(parents);
    json_decref(queue);
    return rc;
}

static int identity_on_unseal(struct nhid_core *core)
{
    struct nhid_txn *txn = NULL;
    int rc = nhid_store_read_begin(core->store, &txn);
    if (rc < 0)
        return rc;
    idm_gate_clear_all();
    static const char *const blocked[] = {NHID_STATE_SUSPENDED, NHID_STATE_DECOMMISSIONED};
    for (size_t i = 0; i < NHID_ARRAY_LEN(blocked) && rc == NHID_OK; i++) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "identity/idx/state/%s/", blocked[i]);
        struct gate_load g = {core, txn, strlen(prefix), blocked[i]};
        rc = nhid_txn_scan_prefix(txn, prefix, NULL, 0, true, gate_cb, &g);
    }
    nhid_store_read_end(txn);
    if (rc == NHID_OK) {
        core->identity_gate = idm_gate_check;
        core->identity_entities = identity_entities;
    }
    return rc;
}

static void identity_on_seal(struct nhid_core *core)
{
    (void)idm_flush(core);
}

static void identity_metrics(struct nhid_core *core, json_t *gauges)
{
    (void)core;
    (void)gauges;
}

static const struct nhid_route identity_routes[] = {
    {"identity/machine", NHID_M_LIST | NHID_M_GET, 0, h_list, "list"},
    {"identity/machine/:name", NHID_M_POST, NHID_ROUTE_WRITE, h_create, "create"},
    {"identity/machine/:name", NHID_M_PUT | NHID_M_PATCH, NHID_ROUTE_WRITE, h_update, "update"},
    {"identity/machine/:name", NHID_M_GET, 0, h_read, "read"},
    {"identity/machine/:name", NHID_M_DELETE, NHID_ROUTE_WRITE, h_delete, "delete"},
    {"identity/machine/:name/suspend", NHID_M_WRITE, NHID_ROUTE_WRITE, h_suspend, "suspend"},
    {"identity/machine/:name/resume", NHID_M_WRITE, NHID_ROUTE_WRITE, h_resume, "resume"},
    {"identity/machine/:name/decommission", NHID_M_WRITE, NHID_ROUTE_WRITE, h_decommission,
     "decommission"},
    {"identity/machine/:name/creds", NHID_M_GET, 0, h_creds, "read_credentials"},
    {"identity/group", NHID_M_LIST | NHID_M_GET, 0, h_group_list, "list"},
    {"identity/group/:name", NHID_M_WRITE, NHID_ROUTE_WRITE, h_group_write, "update"},
    {"identity/group/:name", NHID_M_GET, 0, h_group_read, "read"},
    {"identity/group/:name", NHID_M_DELETE, NHID_ROUTE_WRITE, h_group_delete, "delete"},
    {"identity/report", NHID_M_GET, 0, h_report, "report"},
};

static const struct nhid_job identity_jobs[] = {
    {"identity-flush", 2, flush_job},
};

const struct nhid_engine nhid_identity_engine = {
    .name = "identity",
    .routes = identity_routes,
    .n_routes = NHID_ARRAY_LEN(identity_routes),
    .jobs = identity_jobs,
    .n_jobs = NHID_ARRAY_LEN(identity_jobs),
    .on_unseal = identity_on_unseal,
    .on_seal = identity_on_seal,
    .metrics = identity_metrics,
};
