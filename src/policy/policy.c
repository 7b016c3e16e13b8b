/* policy — stored Cedar policies, the loaded set, and the authorize hook. */
#include "policy/policy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barrier/barrier.h"
#include "cedar/cedar.h"
#include "store/store.h"

#define MOD "policy"
#define DOC_PREFIX "policy/cedar/"
#define SCHEMA_KEY "policy/cedar-schema"
#define POLICY_NAME_MAX 128
#define POLICY_DOC_MAX (1u << 20) /* bytes of one policy document */
#define POLICY_DOCS_MAX 10000     /* stored documents */

/*
 * Built-in baseline (as Vault's `default` policy): every authenticated
 * caller may look up, renew and revoke its own token. A stored `forbid`
 * overrides it; nothing else is permitted until a policy says so.
 */
static const char baseline_text[] =
    "@id(\"nhid.baseline.own-token\")\n"
    "@description(\"Every authenticated caller may look up, renew and revoke its own token.\")\n"
    "permit (\n"
    "  principal,\n"
    "  action in [Action::\"read\", Action::\"renew\", Action::\"revoke\"],\n"
    "  resource\n"
    ")\n"
    "when {\n"
    "  context.own_token &&\n"
    "  [\"auth/token/lookup-self\", \"auth/token/renew-self\", \"auth/token/revoke-self\"]\n"
    "    .contains(resource.path)\n"
    "};\n";

const char *nhid_policy_baseline(void)
{
    return baseline_text;
}

struct policy_state {
    pthread_rwlock_t lock; /* guards active/schema pointers during evaluation */
    pthread_mutex_t admin; /* serialises policy changes */
    struct cedar_policy_set *active;
    struct cedar_schema *schema;
    char *schema_text;
    uint64_t generation;
};

static struct policy_state *pstate(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "policy");
    return slot ? *slot : NULL;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > POLICY_NAME_MAX)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_' || *c == '.'))
            return false;
    return true;
}

/* ---- building the set --------------------------------------------------- */

/* Give unannotated policies of document `doc` the ids "<doc>.policy<K>". */
static int rename_policies(struct cedar_policy_set *ps, size_t from, const char *doc)
{
    for (size_t i = from, k = 0; i < ps->npolicies; i++, k++) {
        struct cedar_policy *p = ps->policies[i];
        bool annotated = false;
        for (size_t a = 0; a < p->nannot; a++)
            if (p->annots[a].key.len == 2 && memcmp(p->annots[a].key.ptr, "id", 2) == 0)
                annotated = true;
        if (annotated)
            continue;
        char buf[POLICY_NAME_MAX + 32];
        int n = snprintf(buf, sizeof(buf), "%s.policy%zu", doc, k);
        char *id = cedar_arena_strndup(&ps->arena, buf, (size_t)n);
        if (id == NULL)
            return NHID_ERR_NOMEM;
        p->id.ptr = id;
        p->id.len = (size_t)n;
    }
    return NHID_OK;
}

struct doc_collect {
    struct nhid_core *core;
    struct cedar_policy_set *ps;
    const char *skip; /* a document being replaced or deleted */
    char *err;
    size_t errlen;
    int rc;
    size_t count;
};

static int add_document(struct cedar_policy_set *ps, const char *name, const char *text, size_t len,
                        char *err, size_t errlen)
{
    size_t before = ps->npolicies;
    int rc = cedar_policy_set_add_text(ps, text, len, name, err, errlen);
    if (rc < 0)
        return rc;
    return rename_policies(ps, before, name);
}

static int collect_doc(const char *key, const uint8_t *val, size_t len, void *arg)
{
    struct doc_collect *c = arg;
    const char *name = key + strlen(DOC_PREFIX);
    if (c->skip && strcmp(name, c->skip) == 0)
        return 0;
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    uint32_t term;
    c->rc = nhid_barrier_decrypt(c->core->barrier, key, val, len, &pt, &ptlen, &term);
    if (c->rc < 0)
        return 1;
    json_t *j = json_loadb((const char *)pt, ptlen, 0, NULL);
    nhid_free_secret(pt, ptlen);
    const char *text = json_string_value(json_object_get(j, "policy"));
    if (text == NULL) {
        json_decref(j);
        c->rc = NHID_ERR_INTERNAL;
        return 1;
    }
    c->rc = add_document(c->ps, name, text, strlen(text), c->err, c->errlen);
    json_decref(j);
    c->count++;
    return c->rc < 0;
}

/*
 * Build the full set: baseline, every stored document (except `skip`),
 * then `extra` (a new or replaced document) if given.
 */
static int build_set(struct nhid_core *core, struct nhid_txn *txn, const char *skip,
                     const char *extra_name, const char *extra_text, struct cedar_policy_set **out,
                     char *err, size_t errlen)
{
    struct cedar_policy_set *ps = NULL;
    struct nhid_txn *own = NULL;
    if (txn == NULL) {
        int brc = nhid_store_read_begin(core->store, &own);
        if (brc < 0)
            return brc;
        txn = own;
    }
    int rc =
        cedar_policy_set_parse(baseline_text, strlen(baseline_text), "baseline", &ps, err, errlen);
    if (rc < 0) {
        nhid_store_read_end(own);
        return rc;
    }
    struct doc_collect c = {core, ps, skip, err, errlen, NHID_OK, 0};
    rc = nhid_txn_scan_prefix(txn, DOC_PREFIX, NULL, POLICY_DOCS_MAX, false, collect_doc, &c);
    if (rc == NHID_OK)
        rc = c.rc;
    if (rc == NHID_OK && extra_text)
        rc = add_document(ps, extra_name, extra_text, strlen(extra_text), err, errlen);
    if (rc == NHID_OK)
        rc = cedar_policy_set_prepare(ps);
    nhid_store_read_end(own);
    if (rc < 0) {
        cedar_policy_set_free(ps);
        return rc;
    }
    *out = ps;
    return NHID_OK;
}

static int load_schema(struct nhid_core *core, struct nhid_txn *txn, struct cedar_schema **out,
                       char **text_out)
{
    json_t *j = NULL;
    int rc = nhid_core_load_json(core, txn, SCHEMA_KEY, &j);
    if (rc == NHID_ERR_NOT_FOUND) {
        *out = NULL;
        *text_out = NULL;
        return NHID_OK;
    }
    if (rc < 0)
        return rc;
    const char *text = json_string_value(json_object_get(j, "schema"));
    bool is_json = json_is_true(json_object_get(j, "json"));
    char err[512];
    rc = text ? cedar_schema_parse(text, strlen(text), "schema", is_json, out, err, sizeof(err))
              : NHID_ERR_INTERNAL;
    if (rc == NHID_OK)
        *text_out = strdup(text);
    json_decref(j);
    return rc;
}

/* Swap in a new set (and optionally schema) atomically; free the old ones. */
static void install(struct policy_state *st, struct cedar_policy_set *ps,
                    struct cedar_schema *schema, char *schema_text, bool set_schema)
{
    pthread_rwlock_wrlock(&st->lock);
    struct cedar_policy_set *old = st->active;
    struct cedar_schema *old_schema = set_schema ? st->schema : NULL;
    char *old_text = set_schema ? st->schema_text : NULL;
    st->active = ps;
    if (set_schema) {
        st->schema = schema;
        st->schema_text = schema_text;
    }
    st->generation++;
    pthread_rwlock_unlock(&st->lock);
    cedar_policy_set_free(old);
    cedar_schema_free(old_schema);
    free(old_text);
}

static int reload(struct nhid_core *core)
{
    struct policy_state *st = pstate(core);
    struct nhid_txn *txn = NULL;
    int rc = nhid_store_read_begin(core->store, &txn);
    if (rc < 0)
        return rc;
    struct cedar_policy_set *ps = NULL;
    struct cedar_schema *schema = NULL;
    char *schema_text = NULL;
    char err[512] = "";
    rc = build_set(core, txn, NULL, NULL, NULL, &ps, err, sizeof(err));
    if (rc == NHID_OK)
        rc = load_schema(core, txn, &schema, &schema_text);
    nhid_store_read_end(txn);
    if (rc < 0) {
        nhid_error(MOD, "cannot load the stored policies: %s", err[0] ? err : nhid_strerror(rc));
        cedar_policy_set_free(ps);
        return rc;
    }
    install(st, ps, schema, schema_text, true);
    nhid_info(MOD, "loaded %zu policies", ps->npolicies);
    return NHID_OK;
}

/* ---- authorization ------------------------------------------------------ */

static json_t *uid_json(const char *type, const char *id)
{
    return json_pack("{s:s, s:s}", "type", type, "id", id);
}

static json_t *extn(const char *fn, const char *arg)
{
    return json_pack("{s:{s:s, s:s}}", "__extn", "fn", fn, "arg", arg);
}

/* Role::"<p>" parents for each token policy. */
static void add_roles(json_t *entities, json_t *parents, json_t *policies)
{
    size_t i;
    json_t *p;
    json_array_foreach(policies, i, p)
    {
        if (!json_is_string(p))
            continue;
        json_array_append_new(parents, uid_json("Role", json_string_value(p)));
        json_array_append_new(entities, json_pack("{s:o, s:{}, s:[]}", "uid",
                                                  uid_json("Role", json_string_value(p)), "attrs",
                                                  "parents"));
    }
}

/* A uid whose strings live in es's arena (they must outlive the call). */
static int uid_in(struct cedar_entities *es, const char *type, const char *id,
                  struct cedar_uid *out)
{
    return cedar_uid_make(&es->arena, type, id, out);
}

/*
 * Path::"a/b/c" in Path::"a/b/" in Path::"a/" (folders end with '/'),
 * added natively: every request has them, and going through JSON cost
 * more than the evaluation itself.
 */
static int add_path_entities(struct cedar_entities *es, const char *path, const char *method)
{
    char buf[NHID_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    size_t len = strlen(buf);
    struct cedar_uid self, parent;
    const struct cedar_record *attrs;
    static const char *const self_keys[] = {"path", "method"};
    static const char *const folder_keys[] = {"path"};
    const char *self_vals[] = {buf, method};
    int rc = uid_in(es, "Path", buf, &self);
    if (rc == NHID_OK)
        rc = cedar_entities_string_record(es, self_keys, self_vals, 2, &attrs);
    /* Walk up: drop the last segment (and a trailing '/') each time. */
    while (rc == NHID_OK) {
        if (len > 0 && buf[len - 1] == '/')
            len--;
        while (len > 0 && buf[len - 1] != '/')
            len--;
        if (len == 0) {
            rc = cedar_entities_add_native(es, &self, attrs, NULL, NULL, 0);
            break;
        }
        buf[len] = '\0';
        rc = uid_in(es, "Path", buf, &parent);
        if (rc == NHID_OK)
            rc = cedar_entities_add_native(es, &self, attrs, NULL, &parent, 1);
        const char *folder_vals[] = {buf};
        if (rc == NHID_OK)
            rc = cedar_entities_string_record(es, folder_keys, folder_vals, 1, &attrs);
        self = parent;
    }
    return rc;
}

/* Token::"<accessor>" in Role::"<p>" for each token policy, added natively. */
static int add_token_principal(struct cedar_entities *es, const char *accessor, json_t *policies)
{
    struct cedar_uid me, roles[64];
    size_t n = 0, i;
    json_t *p;
    const struct cedar_record *attrs;
    static const char *const keys[] = {"accessor"};
    const char *vals[] = {accessor};
    int rc = uid_in(es, "Token", accessor, &me);
    json_array_foreach(policies, i, p)
    {
        if (rc < 0 || n == NHID_ARRAY_LEN(roles))
            break;
        if (!json_is_string(p))
            continue;
        rc = uid_in(es, "Role", json_string_value(p), &roles[n]);
        if (rc == NHID_OK)
            rc = cedar_entities_add_native(es, &roles[n], NULL, NULL, NULL, 0);
        if (rc == NHID_ERR_EXISTS)
            rc = NHID_OK; /* a policy named twice */
        else if (rc == NHID_OK)
            n++;
    }
    if (rc == NHID_OK)
        rc = cedar_entities_string_record(es, keys, vals, 1, &attrs);
    if (rc == NHID_OK)
        rc = cedar_entities_add_native(es, &me, attrs, NULL, roles, n);
    return rc;
}

/* The Cedar action of a request: the route's action, or one derived from the method. */
static const char *req_action(const struct nhid_request *req)
{
    return req->action ? req->action : nhid_method_action(req->method);
}

static int policy_authorize(struct nhid_core *core, struct nhid_request *req)
{
    struct policy_state *st = pstate(core);
    struct nhid_auth *a = &req->auth;
    struct nhid_decision *d = &req->decision;
    int rc = NHID_OK;
    json_t *entities = NULL;
    json_t *context = NULL;
    struct cedar_entities *es = NULL;
    struct cedar_arena arena;
    struct cedar_decision dec;
    cedar_arena_init(&arena);
    cedar_decision_init(&dec);
    char err[256] = "";
    char state[32] = "";
    const char *ptype, *pid;

    if (st == NULL || cedar_entities_new(&es) < 0) {
        snprintf(d->reason, sizeof(d->reason), "policy engine unavailable");
        rc = NHID_ERR_INTERNAL;
        goto out;
    }
    /* Principal and its ancestors. */
    if (a->identity[0]) {
        entities = json_array();
        if (entities == NULL) {
            rc = NHID_ERR_NOMEM;
            goto out;
        }
        ptype = "Machine";
        pid = a->identity;
        if (core->identity_entities) {
            rc = core->identity_entities(core, req->txn, a->identity, entities, state,
                                         sizeof(state));
            if (rc < 0)
                goto out;
        }
        json_t *me = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(entities, i, e)
        {
            json_t *uid = json_object_get(e, "uid");
            if (!strcmp(json_string_value(json_object_get(uid, "type")) ?: "", "Machine") &&
                !strcmp(json_string_value(json_object_get(uid, "id")) ?: "", a->identity))
                me = e;
        }
        if (me == NULL) {
            me = json_pack("{s:o, s:{s:s}, s:[]}", "uid", uid_json("Machine", a->identity), "attrs",
                           "name", a->identity, "parents");
            json_array_append_new(entities, me);
        }
        add_roles(entities, json_object_get(me, "parents"), a->policies);
        rc = cedar_entities_add_json(es, entities, err, sizeof(err));
    } else {
        ptype = "Token";
        pid = a->accessor;
        rc = add_token_principal(es, a->accessor, a->policies);
    }
    /*
     * Resource: the API path, whose parents are its folders, so
     * `resource in Path::"secret/data/payments/"` covers everything below.
     */
    if (rc == NHID_OK)
        rc = add_path_entities(es, req->path, req->method_name);
    if (rc == NHID_OK)
        rc = cedar_entities_finalize(es);
    if (rc < 0) {
        if (!err[0])
            snprintf(err, sizeof(err), "%s", nhid_strerror(rc));
        nhid_warn(MOD, "request %s: cannot build policy entities: %s", req->request_id, err);
        rc = NHID_ERR_INTERNAL;
        goto out;
    }
    char now[NHID_RFC3339_LEN];
    nhid_time_format(nhid_now(), now);
    const char *spiffe =
        a->metadata ? json_string_value(json_object_get(a->metadata, "spiffe_id")) : NULL;
    if (spiffe == NULL)
        spiffe = "";
    context = json_pack("{s:o, s:s, s:b, s:s, s:o, s:s, s:b, s:o}", "ip",
                        extn("ip", req->remote_addr), "auth_method", a->method ? a->method : "",
                        "mtls", req->mtls, "spiffe_id", spiffe, "time", extn("datetime", now),
                        "identity_state", state[0] ? state : (a->identity[0] ? "active" : "none"),
                        "own_token", a->method && !strcmp(a->method, "token"), "token_policies",
                        a->policies ? json_incref(a->policies) : json_array());
    struct cedar_uid pu, au, ru;
    struct cedar_request creq;
    if (context == NULL || cedar_uid_make(&arena, ptype, pid, &pu) < 0 ||
        cedar_uid_make(&arena, "Action", req_action(req), &au) < 0 ||
        cedar_uid_make(&arena, "Path", req->path, &ru) < 0 ||
        cedar_request_make(&arena, &pu, &au, &ru, context, &creq, err, sizeof(err)) < 0) {
        nhid_warn(MOD, "request %s: cannot build the policy request: %s", req->request_id, err);
        rc = NHID_ERR_INTERNAL;
        goto out;
    }
    pthread_rwlock_rdlock(&st->lock);
    rc = st->active ? cedar_authorize(st->active, es, &creq, &dec) : NHID_ERR_INTERNAL;
    if (rc == NHID_OK) {
        d->allowed = dec.allow;
        d->policies = json_array();
        for (size_t i = 0; i < dec.nreasons; i++)
            json_array_append_new(d->policies,
                                  json_stringn(dec.reasons[i]->id.ptr, dec.reasons[i]->id.len));
        if (dec.nerrors) {
            d->errors = json_array();
            for (size_t i = 0; i < dec.nerrors; i++)
                json_array_append_new(d->errors, json_pack("{s:s%, s:s}", "policy",
                                                           dec.errors[i].policy->id.ptr,
                                                           dec.errors[i].policy->id.len, "error",
                                                           dec.errors[i].message));
        }
    }
    pthread_rwlock_unlock(&st->lock);
    snprintf(d->reason, sizeof(d->reason), "%s",
             rc < 0 ? "policy evaluation failed"
                    : (d->allowed ? "policy permit"
                                  : (dec.nreasons ? "policy forbid" : "default deny")));
out:
    cedar_decision_free(&dec);
    cedar_entities_free(es);
    cedar_arena_free(&arena);
    json_decref(entities);
    json_decref(context);
    return rc;
}

/* ---- endpoints ---------------------------------------------------------- */

struct save_ctx {
    const char *key;
    json_t *val; /* NULL: delete */
};

static int save_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct save_ctx *c = arg;
    if (c->val == NULL)
        return nhid_txn_delete(txn, c->key);
    return nhid_core_save_json(core, txn, c->key, c->val);
}

struct list_ctx {
    json_t *keys;
};

static int list_cb(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct list_ctx *c = arg;
    json_array_append_new(c->keys, json_string(key + strlen(DOC_PREFIX)));
    return 0;
}

static int h_list(struct nhid_request *req, struct nhid_response *resp)
{
    struct list_ctx c = {json_array()};
    if (c.keys == NULL)
        return NHID_ERR_NOMEM;
    int rc = nhid_txn_scan_prefix(req->txn, DOC_PREFIX, NULL, POLICY_DOCS_MAX, true, list_cb, &c);
    if (rc < 0) {
        json_decref(c.keys);
        return rc;
    }
    resp->data = json_pack("{s:o}", "keys", c.keys);
    return NHID_OK;
}

static int h_read(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = nhid_req_param(req, "name");
    char key[POLICY_NAME_MAX + 32];
    if (!valid_name(name))
        return nhid_resp_error(resp, 404, "no policy named \"%.64s\"", name);
    snprintf(key, sizeof(key), DOC_PREFIX "%s", name);
    json_t *j = NULL;
    int rc = nhid_core_load_json(req->core, req->txn, key, &j);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no policy named \"%s\"", name);
    if (rc < 0)
        return nhid_resp_fail(resp, rc, NULL);
    resp->data = json_pack("{s:s, s:O}", "name", name, "policy", json_object_get(j, "policy"));
    json_decref(j);
    return NHID_OK;
}

/* Validate the candidate set (and schema), persist the change, swap the set in. */
static int apply_change(struct nhid_request *req, struct nhid_response *resp, const char *name,
                        const char *text)
{
    struct policy_state *st = pstate(req->core);
    char key[POLICY_NAME_MAX + 32];
    char err[1024] = "";
    struct cedar_policy_set *ps = NULL;
    int rc;
    snprintf(key, sizeof(key), DOC_PREFIX "%s", name);
    pthread_mutex_lock(&st->admin);
    rc = build_set(req->core, req->txn, name, name, text, &ps, err, sizeof(err));
    if (rc < 0) {
        pthread_mutex_unlock(&st->admin);
        /* err is "name:line:col: message" from the parser. */
        return nhid_resp_error(resp, 400, "policy \"%s\" is invalid: %s", name,
                               err[0] ? err : nhid_strerror(rc));
    }
    pthread_rwlock_rdlock(&st->lock);
    if (st->schema) {
        json_t *diags = json_array();
        rc = cedar_validate_policies(st->schema, ps, diags);
        if (rc < 0) {
            char *d = json_dumps(diags, JSON_COMPACT);
            nhid_resp_error(resp, 400, "policy \"%s\" does not validate against the schema: %s",
                            name, d ? d : "");
            free(d);
        }
        json_decref(diags);
    }
    pthread_rwlock_unlock(&st->lock);
    if (rc < 0) {
        pthread_mutex_unlock(&st->admin);
        cedar_policy_set_free(ps);
        return NHID_ERR_INVALID;
    }
    json_t *doc =
        text ? json_pack("{s:s, s:I}", "policy", text, "updated", (json_int_t)nhid_now()) : NULL;
    struct save_ctx c = {key, doc};
    rc = nhid_core_write(req->core, save_txn, &c);
    json_decref(doc);
    if (rc < 0) {
        pthread_mutex_unlock(&st->admin);
        cedar_policy_set_free(ps);
        return nhid_resp_fail(resp, rc, "cannot save the policy");
    }
    install(st, ps, NULL, NULL, false);
    pthread_mutex_unlock(&st->admin);
    nhid_info(MOD, "policy %s %s; %zu policies loaded", name, text ? "written" : "deleted",
              ps->npolicies);
    return NHID_OK;
}

static int h_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"policy", NULL};
    const char *name = nhid_req_param(req, "name");
    const char *text = NULL;
    int rc = nhid_body_only(req, resp, fields);
    if (rc < 0)
        return rc;
    if (!valid_name(name))
        return nhid_resp_error(resp, 400,
                               "policy name \"%.64s\": use 1-%d letters, digits, '-', '_' or '.'",
                               name, POLICY_NAME_MAX);
    rc = nhid_body_string(req, resp, "policy", NULL, &text);
    if (rc < 0)
        return rc;
    if (text == NULL || *text == '\0')
        return nhid_resp_error(resp, 400, "missing field \"policy\" (the Cedar policy text)");
    if (strlen(text) > POLICY_DOC_MAX)
        return nhid_resp_error(resp, 413, "field \"policy\": larger than %u bytes", POLICY_DOC_MAX);
    return apply_change(req, resp, name, text);
}

static int h_delete(struct nhid_request *req, struct nhid_response *resp)
{
    const char *name = nhid_req_param(req, "name");
    if (!valid_name(name))
        return NHID_OK;
    return apply_change(req, resp, name, NULL);
}

static int h_schema_read(struct nhid_request *req, struct nhid_response *resp)
{
    struct policy_state *st = pstate(req->core);
    pthread_rwlock_rdlock(&st->lock);
    if (st->schema_text)
        resp->data = json_pack("{s:s}", "schema", st->schema_text);
    pthread_rwlock_unlock(&st->lock);
    if (resp->data == NULL)
        return nhid_resp_error(resp, 404, "no policy schema is set");
    return NHID_OK;
}

static int h_schema_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"schema", "format", NULL};
    struct policy_state *st = pstate(req->core);
    const char *text = NULL, *format = NULL;
    int rc = nhid_body_only(req, resp, fields);
    if (rc == NHID_OK)
        rc = nhid_body_string(req, resp, "schema", NULL, &text);
    if (rc == NHID_OK)
        rc = nhid_body_string(req, resp, "format", "cedarschema", &format);
    if (rc < 0)
        return rc;
    if (text == NULL || *text == '\0')
        return nhid_resp_error(resp, 400, "missing field \"schema\"");
    if (strcmp(format, "cedarschema") && strcmp(format, "json"))
        return nhid_resp_error(resp, 400, "field \"format\": use \"cedarschema\" or \"json\"");
    if (strlen(text) > POLICY_DOC_MAX)
        return nhid_resp_error(resp, 413, "field \"schema\": larger than %u bytes", POLICY_DOC_MAX);
    bool is_json = strcmp(format, "json") == 0;
    char err[1024] = "";
    struct cedar_schema *schema = NULL;
    if (cedar_schema_parse(text, strlen(text), "schema", is_json, &schema, err, sizeof(err)) < 0)
        return nhid_resp_error(resp, 400, "schema is invalid: %s", err);
    pthread_mutex_lock(&st->admin);
    /* Every stored policy must validate against the new schema. */
    struct cedar_policy_set *ps = NULL;
    rc = build_set(req->core, req->txn, NULL, NULL, NULL, &ps, err, sizeof(err));
    json_t *diags = json_array();
    if (rc == NHID_OK && cedar_validate_policies(schema, ps, diags) < 0) {
        char *d = json_dumps(diags, JSON_COMPACT);
        nhid_resp_error(resp, 400, "stored policies do not validate against this schema: %s",
                        d ? d : "");
        free(d);
        rc = NHID_ERR_INVALID;
    } else if (rc < 0) {
        nhid_resp_fail(resp, rc, err[0] ? err : NULL);
    }
    json_decref(diags);
    if (rc == NHID_OK) {
        json_t *doc = json_pack("{s:s, s:b}", "schema", text, "json", is_json);
        struct save_ctx c = {SCHEMA_KEY, doc};
        rc = nhid_core_write(req->core, save_txn, &c);
        json_decref(doc);
        if (rc < 0)
            nhid_resp_fail(resp, rc, "cannot save the schema");
    }
    if (rc == NHID_OK) {
        install(st, ps, schema, strdup(text), true);
        ps = NULL;
        schema = NULL;
    }
    pthread_mutex_unlock(&st->admin);
    cedar_policy_set_free(ps);
    cedar_schema_free(schema);
    return rc;
}

static int h_schema_delete(struct nhid_request *req, struct nhid_response *resp)
{
    struct policy_state *st = pstate(req->core);
    struct save_ctx c = {SCHEMA_KEY, NULL};
    pthread_mutex_lock(&st->admin);
    int rc = nhid_core_write(req->core, save_txn, &c);
    if (rc == NHID_OK) {
        pthread_rwlock_wrlock(&st->lock);
        struct cedar_schema *old = st->schema;
        char *old_text = st->schema_text;
        st->schema = NULL;
        st->schema_text = NULL;
        pthread_rwlock_unlock(&st->lock);
        cedar_schema_free(old);
        free(old_text);
    }
    pthread_mutex_unlock(&st->admin);
    return rc < 0 ? nhid_resp_fail(resp, rc, NULL) : NHID_OK;
}

static int policy_on_unseal(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "policy");
    if (slot == NULL)
        return NHID_ERR_INTERNAL;
    if (*slot == NULL) {
        struct policy_state *st = calloc(1, sizeof(*st));
        if (st == NULL)
            return NHID_ERR_NOMEM;
        pthread_rwlock_init(&st->lock, NULL);
        pthread_mutex_init(&st->admin, NULL);
        *slot = st;
    }
    int rc = reload(core);
    if (rc == NHID_OK)
        core->authorize = policy_authorize;
    return rc;
}

static void policy_on_seal(struct nhid_core *core)
{
    struct policy_state *st = pstate(core);
    if (st)
        install(st, NULL, NULL, NULL, true);
}

static const struct nhid_route policy_routes[] = {
    {"sys/policies/cedar", NHID_M_LIST | NHID_M_GET, 0, h_list, "list"},
    {"sys/policies/cedar/:name", NHID_M_GET, 0, h_read, "read"},
    {"sys/policies/cedar/:name", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_write, "update"},
    {"sys/policies/cedar/:name", NHID_M_DELETE, NHID_ROUTE_ADMIN, h_delete, "delete"},
    {"sys/policies/cedar-schema", NHID_M_GET, 0, h_schema_read, "read"},
    {"sys/policies/cedar-schema", NHID_M_WRITE, NHID_ROUTE_ADMIN, h_schema_write, "update"},
    {"sys/policies/cedar-schema", NHID_M_DELETE, NHID_ROUTE_ADMIN, h_schema_delete, "delete"},
};

const struct nhid_engine nhid_policy_engine = {
    .name = "policy",
    .routes = policy_routes,
    .n_routes = NHID_ARRAY_LEN(policy_routes),
    .on_unseal = policy_on_unseal,
    .on_seal = policy_on_seal,
};
