/*
 * http_pipeline — every request goes through the same steps, in order:
 *
 *   route → sealed check → decode body → authenticate → authorize
 *     → handler (inline in a read snapshot, or in a group-commit write txn)
 *     → audit record (durable before the reply) → reply
 *
 * Nothing skips a step: unauthenticated endpoints are flagged on their
 * route, and the only requests not audited are liveness probes
 * (NHID_ROUTE_NOT_AUDITED: sys/health, sys/seal-status).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "audit/audit.h"
#include "barrier/barrier.h"
#include "core/json_text.h"
#include "crypto/crypto.h"
#include "http/http_internal.h"
#include "store/store.h"

#define MOD "http"

static void pending_free(struct pending *p)
{
    nhid_request_clear_params(&p->req);
    json_decref(p->req.body);
    if (p->req.client_token)
        nhid_free_secret_str(p->req.client_token);
    nhid_auth_clear(&p->req.auth);
    nhid_decision_clear(&p->req.decision);
    nhid_response_clear(&p->resp);
    nhid_store_stage_free(p->staged);
    nhid_audit_builder_free(p->staged_audit);
    nhid_audit_builder_free(p->audit_rec);
    if (p->body)
        nhid_free_secret(p->body, p->req.body_len);
    free(p->query);
    free(p->out);
    free(p);
}

static enum nhid_method parse_method(const char *m)
{
    static const struct {
        const char *name;
        enum nhid_method m;
    } map[] = {{"GET", NHID_M_GET},       {"PUT", NHID_M_PUT},   {"POST", NHID_M_POST},
               {"DELETE", NHID_M_DELETE}, {"LIST", NHID_M_LIST}, {"PATCH", NHID_M_PATCH},
               {"HEAD", NHID_M_HEAD}};
    for (size_t i = 0; i < NHID_ARRAY_LEN(map); i++)
        if (strcmp(m, map[i].name) == 0)
            return map[i].m;
    return 0;
}

static void methods_list(unsigned bits, char *out, size_t outlen)
{
    static const enum nhid_method all[] = {NHID_M_GET,    NHID_M_PUT,  NHID_M_POST,
                                           NHID_M_DELETE, NHID_M_LIST, NHID_M_PATCH};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NHID_ARRAY_LEN(all); i++)
        if (bits & all[i])
            used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? ", " : "",
                                     nhid_method_name(all[i]));
}

/* ---- response serialisation --------------------------------------------- */

/*
 * Vault's response envelope, written directly: the same bytes as
 * json_dumps(json_pack(...), JSON_COMPACT) without building the object.
 */
static char *envelope(const struct pending *p, size_t *len)
{
    const struct nhid_response *r = &p->resp;
    struct nhid_text t = {0};
    char num[32];
    nhid_text_lit(&t, "{\"request_id\":");
    nhid_text_json_string(&t, p->req.request_id, strlen(p->req.request_id));
    nhid_text_lit(&t, ",\"lease_id\":");
    const char *lease = r->lease_id ? r->lease_id : "";
    nhid_text_json_string(&t, lease, strlen(lease));
    nhid_text_lit(&t, r->renewable ? ",\"renewable\":true" : ",\"renewable\":false");
    snprintf(num, sizeof(num), ",\"lease_duration\":%lld,\"data\":", (long long)r->lease_duration);
    nhid_text_lit(&t, num);
    nhid_text_json(&t, r->data);
    nhid_text_lit(&t, ",\"wrap_info\":null,\"warnings\":");
    nhid_text_json(&t, r->warnings);
    nhid_text_lit(&t, ",\"auth\":");
    nhid_text_json(&t, r->auth);
    nhid_text_lit(&t, ",\"mount_type\":\"\"}");
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    *len = t.len; /* NUL-terminated, not counted */
    return t.buf;
}

static void serialise(struct pending *p)
{
    struct nhid_response *r = &p->resp;
    json_t *j = NULL;
    if (p->serialised)
        return;
    p->serialised = true;
    if (r->location[0])
        snprintf(p->extra_headers, sizeof(p->extra_headers), "Location: %s\r\n", r->location);
    p->out_type = "application/json";
    if (r->errors && r->status < 400)
        r->status = 500;
    if (r->status == 0)
        r->status = (r->data || r->auth || r->raw || r->body || r->warnings) ? 200 : 204;
    if (r->body) {
        p->out = (char *)r->body;
        p->out_len = r->body_len;
        r->body = NULL;
        p->out_type = r->content_type[0] ? r->content_type : "application/octet-stream";
        return;
    }
    if (r->status == 204)
        return;
    if (!r->errors && !r->raw) {
        p->out = envelope(p, &p->out_len);
    } else {
        j = r->errors ? json_pack("{s:O}", "errors", r->errors) : json_incref(r->raw);
        p->out = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        p->out_len = p->out ? strlen(p->out) : 0;
    }
    if (p->out == NULL) {
        r->status = 500;
        p->out = strdup("{\"errors\":[\"internal error: cannot encode response\"]}");
        p->out_len = p->out ? strlen(p->out) : 0;
    }
}

/* ---- audit -------------------------------------------------------------- */

/* Top-level keys of the pipeline's record; a handler's audit_extra may not reuse them. */
static bool record_key_reserved(const char *k)
{
    static const char *const reserved[] = {"time", "type",     "request_id", "request",
                                           "auth", "decision", "response",   "duration_us",
                                           "seq",  "prev",     "chain"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(reserved); i++)
        if (strcmp(k, reserved[i]) == 0)
            return true;
    return false;
}

/*
 * The request's audit record (docs/audit.md): what was asked, by whom,
 * what was decided and answered. Request and response data and tokens are
 * HMAC'd per device when written.
 */
static struct nhid_audit_builder *audit_record(struct pending *p)
{
    struct nhid_request *q = &p->req;
    struct nhid_response *r = &p->resp;
    bool omit = p->route && (p->route->flags & NHID_ROUTE_NO_AUDIT_DATA);
    char ts[NHID_RFC3339_LEN];
    nhid_time_format_ns(nhid_now_ns(), ts);
    struct nhid_audit_builder *b = nhid_audit_builder_new();
    if (b == NULL)
        return NULL;
    nhid_audit_builder_str(b, "time", ts);
    nhid_audit_builder_str(b, "type", "response");
    nhid_audit_builder_str(b, "request_id", q->request_id);

    nhid_audit_builder_open(b, "request");
    nhid_audit_builder_str(b, "method", q->method_name);
    nhid_audit_builder_str(b, "path", p->path);
    nhid_audit_builder_str(b, "remote_address", q->remote_addr);
    nhid_audit_builder_int(b, "remote_port", q->remote_port);
    nhid_audit_builder_bool(b, "mtls", q->mtls);
    if (q->body && !omit && json_object_size(q->body) > 0)
        nhid_audit_builder_json(b, "data", q->body, NHID_AUDIT_HMAC_ALL);
    if (q->client_token)
        nhid_audit_builder_secret_str(b, "client_token", q->client_token);
    nhid_audit_builder_close(b);

    nhid_audit_builder_open(b, "auth");
    nhid_audit_builder_bool(b, "authenticated", q->auth.authenticated);
    if (q->auth.authenticated) {
        nhid_audit_builder_str(b, "method", q->auth.method ? q->auth.method : "");
        nhid_audit_builder_str(b, "accessor", q->auth.accessor);
        if (q->auth.identity[0])
            nhid_audit_builder_str(b, "identity", q->auth.identity);
        if (q->auth.entity_id[0])
            nhid_audit_builder_str(b, "entity_id", q->auth.entity_id);
        if (q->auth.policies)
            nhid_audit_builder_json(b, "policies", q->auth.policies, NHID_AUDIT_HMAC_NONE);
        nhid_audit_builder_bool(b, "root", q->auth.root);
    }
    nhid_audit_builder_close(b);

    nhid_audit_builder_open(b, "decision");
    nhid_audit_builder_bool(b, "allowed", q->decision.allowed);
    nhid_audit_builder_str(b, "reason", q->decision.reason);
    if (q->decision.policies)
        nhid_audit_builder_json(b, "policies", q->decision.policies, NHID_AUDIT_HMAC_NONE);
    if (q->decision.errors)
        nhid_audit_builder_json(b, "errors", q->decision.errors, NHID_AUDIT_HMAC_NONE);
    nhid_audit_builder_close(b);

    nhid_audit_builder_open(b, "response");
    nhid_audit_builder_int(b, "status", r->status);
    if (!omit && r->data)
        nhid_audit_builder_json(b, "data", r->data, NHID_AUDIT_HMAC_ALL);
    if (r->auth)
        nhid_audit_builder_json(b, "auth", r->auth, NHID_AUDIT_HMAC_AUTH);
    if (r->errors)
        nhid_audit_builder_json(b, "errors", r->errors, NHID_AUDIT_HMAC_NONE);
    nhid_audit_builder_close(b);

    nhid_audit_builder_int(b, "duration_us", (nhid_mono_ns() - q->start_ns) / 1000);
    const char *k;
    json_t *v;
    json_object_foreach(r->audit_extra, k, v)
    {
        if (record_key_reserved(k))
            nhid_warn(MOD, "audit field \"%s\" of route %s is reserved; not recorded", k, p->path);
        else
            nhid_audit_builder_json(b, k, v, NHID_AUDIT_HMAC_NONE);
    }
    return b;
}

static void audit_done(int rc, void *arg)
{
    struct pending *p = arg;
    p->audit_rc = rc;
    p->stage = 2;
    http_loop_post(p->loop, p);
}

static void reply(struct pending *p)
{
    struct conn *c = p->conn;
    int status = p->resp.status;
    const char *type = p->out_type ? p->out_type : "application/json";
    http_metrics_record(p->loop, p->req.route_index, status, nhid_mono_ns() - p->req.start_ns);
    if (status == 204)
        http_conn_respond(c, 204, type, p->extra_headers, "", 0);
    else if (p->req.method == NHID_M_HEAD)
        /* RFC 9110 §9.3.2: the same header fields as GET, no content. */
        http_conn_respond(c, status, type, p->extra_headers, NULL, p->out_len);
    else
        http_conn_respond(c, status, type, p->extra_headers, p->out ? p->out : "", p->out_len);
    pending_free(p);
}

static bool audit_wanted(const struct pending *p)
{
    struct nhid_audit *audit = p->req.core->audit;
    bool audited = !(p->route && (p->route->flags & NHID_ROUTE_NOT_AUDITED));
    return audited && audit && nhid_audit_device_count(audit) > 0;
}

/* The handler has run: serialise, audit (durably), then reply. */
static void finish(struct pending *p)
{
    serialise(p);
    if (audit_wanted(p)) {
        struct nhid_audit *audit = p->req.core->audit;
        struct nhid_audit_builder *rec = audit_record(p);
        nhid_audit_builder_free(
            p->audit_rec); /* a corrected answer's earlier record, already durable */
        p->audit_rec = rec;
        if (rec == NULL || nhid_audit_submit_built(audit, rec, audit_done, p) < 0) {
            p->audit_rc = NHID_ERR_IO;
            p->stage = 2;
            http_pipeline_complete(p);
        }
        return;
    }
    reply(p);
}

/* Audit could not write: the response is withheld (fail closed). */
static void fail_closed(struct pending *p)
{
    nhid_error(MOD, "audit devices could not record request %s; refusing it (fail closed)",
               p->req.request_id);
    free(p->out);
    p->out = strdup("{\"errors\":[\"audit log unavailable: the request was refused "
                    "because it could not be recorded\"]}");
    p->out_len = p->out ? strlen(p->out) : 0;
    p->out_type = "application/json";
    p->resp.status = 500;
    p->extra_headers[0] = '\0';
    reply(p);
}

void http_pipeline_complete(struct pending *p)
{
    if (p->stage == 1) {
        if (p->store_rc < 0 && p->resp.status < 400) {
            /* The commit failed: whatever the handler produced never happened. */
            nhid_response_clear(&p->resp);
            nhid_resp_error(&p->resp, 500, "storage error: the change was not saved (%s)",
                            nhid_strerror(p->store_rc));
        }
        finish(p);
        return;
    }
    if (p->stage == 2) {
        if (p->audit_rc < 0) {
            fail_closed(p);
            return;
        }
        reply(p);
        return;
    }
    if (p->stage == 3) {
        if (p->store_rc < 0 && p->resp.status < 400) {
            /*
             * The audit log already holds the handler's answer, but the
             * commit failed: record what the client really gets, then send it.
             */
            nhid_response_clear(&p->resp);
            nhid_resp_error(&p->resp, 500, "storage error: the change was not saved (%s)",
                            nhid_strerror(p->store_rc));
            p->resp.audit_extra = json_pack("{s:s}", "correction", "commit failed");
            free(p->out);
            p->out = NULL;
            p->extra_headers[0] = '\0';
            p->serialised = false;
            finish(p);
            return;
        }
        if (p->audit_rc < 0) {
            fail_closed(p);
            return;
        }
        reply(p);
    }
}

/* One of {commit, early audit} finished; the second one hands the request back. */
static void part_done(struct pending *p)
{
    if (atomic_fetch_sub(&p->parts, 1) == 1) {
        p->stage = 3;
        http_loop_post(p->loop, p);
    }
}

static void early_audit_done(int rc, void *arg)
{
    struct pending *p = arg;
    p->audit_rc = rc;
    part_done(p);
}

/* ---- handler execution -------------------------------------------------- */

static int write_job(struct nhid_txn *txn, void *arg)
{
    struct pending *p = arg;
    int rc;
    p->req.txn = txn;
    if (p->req.auth.consume) {
        rc = p->req.auth.consume(&p->req, &p->resp);
        if (rc < 0) {
            if (p->resp.status < 400)
                nhid_resp_error(&p->resp, 403, "permission denied");
            p->req.txn = NULL;
            return rc;
        }
    }
    rc = p->route->handler(&p->req, &p->resp);
    p->req.txn = NULL;
    if (rc < 0 && p->resp.status < 400)
        nhid_resp_fail(&p->resp, rc, NULL);
    /*
     * The answer is known now: start its audit record while the batch
     * commits, so the two fsyncs overlap. The reply still waits for both;
     * a failed commit is corrected in the log before the client hears.
     */
    if (rc >= 0 && audit_wanted(p)) {
        serialise(p);
        struct nhid_audit_builder *rec = audit_record(p);
        nhid_audit_builder_free(p->audit_rec);
        p->audit_rec = rec;
        atomic_store(&p->parts, 2);
        p->early_audit = rec != NULL && nhid_audit_submit_built(p->req.core->audit, rec,
                                                                early_audit_done, p) == NHID_OK;
    }
    return rc < 0 ? rc : NHID_OK;
}

/*
 * Forget what a handler run produced (response, serialised body, staged
 * writes, prepared audit record, identity it named), so that the handler
 * can run again from the start.
 */
static void reset_for_rerun(struct pending *p)
{
    nhid_response_clear(&p->resp);
    free(p->out);
    p->out = NULL;
    p->out_len = 0;
    p->serialised = false;
    p->extra_headers[0] = '\0';
    nhid_audit_builder_free(p->staged_audit);
    p->staged_audit = NULL;
    memcpy(p->req.auth.entity_id, p->saved_entity_id, sizeof(p->saved_entity_id));
    memcpy(p->req.auth.identity, p->saved_identity, sizeof(p->saved_identity));
}

/*
 * Writer job of an optimistic route: apply the writes its handler staged
 * on the event loop if nothing it read has changed since; otherwise run
 * the handler again here, as a plain write route.
 */
static int staged_job(struct nhid_txn *txn, void *arg)
{
    struct pending *p = arg;
    /* The stage is freed with the request, on its loop: the writer's time is the scarce one. */
    int rc = nhid_store_stage_apply(p->staged, txn);
    if (rc == NHID_ERR_CONFLICT) {
        atomic_fetch_add_explicit(&p->loop->srv->write_conflicts, 1, memory_order_relaxed);
        reset_for_rerun(p);
        /* Submitted lazily (no savepoint): the handler may fail after writing, so open one. */
        int sp = nhid_txn_savepoint(txn);
        if (sp < 0)
            return sp;
        return write_job(txn, arg);
    }
    if (rc < 0) {
        nhid_audit_builder_free(p->staged_audit);
        p->staged_audit = NULL;
        return rc;
    }
    /* As write_job: the audit record's fsync overlaps the commit's. */
    if (p->staged_audit) {
        nhid_audit_builder_free(p->audit_rec);
        p->audit_rec = p->staged_audit;
        p->staged_audit = NULL;
        atomic_store(&p->parts, 2);
        p->early_audit = nhid_audit_submit_built(p->req.core->audit, p->audit_rec, early_audit_done,
                                                 p) == NHID_OK;
    }
    return NHID_OK;
}

static void write_done(int rc, void *arg)
{
    struct pending *p = arg;
    /* A job that rolled itself back carries its own error response. */
    p->store_rc = (rc < 0 && p->resp.status >= 400) ? NHID_OK : rc;
    if (p->early_audit) {
        part_done(p);
        return;
    }
    p->stage = 1;
    http_loop_post(p->loop, p);
}

/* Authenticate with each engine's authenticator, in registration order. */
static int authenticate(struct pending *p)
{
    struct nhid_core *core = p->req.core;
    for (size_t i = 0; i < core->n_engines; i++) {
        const struct nhid_engine *e = core->engines[i];
        if (e->authenticate == NULL)
            continue;
        int rc = e->authenticate(&p->req, &p->resp);
        if (rc < 0) {
            if (p->resp.status < 400)
                nhid_resp_error(&p->resp, 403, "permission denied");
            return rc;
        }
        if (p->req.auth.authenticated)
            return NHID_OK;
    }
    return NHID_OK;
}

static int authorize(struct pending *p)
{
    struct nhid_request *q = &p->req;
    struct nhid_core *core = q->core;
    if (p->route->flags & NHID_ROUTE_UNAUTH) {
        q->decision.allowed = true;
        snprintf(q->decision.reason, sizeof(q->decision.reason), "unauthenticated endpoint");
        return NHID_OK;
    }
    if (!q->auth.authenticated) {
        snprintf(q->decision.reason, sizeof(q->decision.reason), "no credential");
        return nhid_resp_error(&p->resp, 403,
                               "permission denied: missing client token (send X-Vault-Token "
                               "or Authorization: Bearer, or a trusted client certificate)");
    }
    if (q->auth.root) {
        q->decision.allowed = true;
        snprintf(q->decision.reason, sizeof(q->decision.reason), "root token");
        return NHID_OK;
    }
    if (core->authorize) {
        int rc = core->authorize(core, q);
        if (rc < 0 || !q->decision.allowed)
            return nhid_resp_error(&p->resp, 403, "permission denied");
        return NHID_OK;
    }
    if (p->route->flags & NHID_ROUTE_SELF) {
        q->decision.allowed = true;
        snprintf(q->decision.reason, sizeof(q->decision.reason), "baseline: own token");
        return NHID_OK;
    }
    snprintf(q->decision.reason, sizeof(q->decision.reason), "default deny");
    return nhid_resp_error(&p->resp, 403, "permission denied");
}

/*
 * What is wrong with a JSON body, without quoting it: jansson's own text
 * cites the offending token, which may be a secret, and error messages
 * are not HMAC'd in audit records.
 */
static const char *json_problem(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_premature_end_of_input:
        return "unexpected end of input";
    case json_error_invalid_syntax:
        return "invalid syntax";
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_invalid_format:
        return "invalid value";
    case json_error_end_of_input_expected:
        return "unexpected data after the JSON value";
    case json_error_numeric_overflow:
        return "number out of range";
    case json_error_duplicate_key:
        return "duplicate key";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "NUL character";
    case json_error_item_not_found:
    case json_error_index_out_of_range:
    case json_error_wrong_type:
        return "unexpected value";
    default:
        return "invalid JSON";
    }
}

/*
 * NHID_ROUTE_OPTIMISTIC: run the handler here against a staged txn over
 * the request's snapshot `snap`. Returns true if it took the request over
 * (answered it, or queued its writes for the writer), false if the
 * handler must run in the writer instead (response reset). Either way
 * snap stays open for the caller to end.
 */
static bool run_staged(struct pending *p, struct nhid_txn *snap)
{
    struct nhid_request *q = &p->req;
    struct nhid_txn *stx = NULL;
    if (nhid_store_stage_begin(snap, &stx) < 0)
        return false;
    memcpy(p->saved_entity_id, q->auth.entity_id, sizeof(p->saved_entity_id));
    memcpy(p->saved_identity, q->auth.identity, sizeof(p->saved_identity));
    q->txn = stx;
    int rc = p->route->handler(q, &p->resp);
    q->txn = snap;
    if (!nhid_store_stage_usable(stx)) {
        nhid_store_stage_free(stx);
        reset_for_rerun(p);
        return false;
    }
    if (rc < 0 || p->resp.status >= 400 || nhid_store_stage_writes(stx) == 0) {
        /* Refused on the snapshot, or nothing to write: no writer round trip. */
        nhid_store_stage_free(stx);
        if (rc < 0 && p->resp.status < 400)
            nhid_resp_fail(&p->resp, rc, NULL);
        q->txn = NULL;
        nhid_store_read_end(snap);
        finish(p);
        return true;
    }
    q->txn = NULL;
    nhid_store_read_end(snap);
    p->staged = stx;
    serialise(p);
    if (audit_wanted(p))
        p->staged_audit = audit_record(p);
    /* Lazy: validation writes nothing, then the staged writes are replayed (store.h). */
    if (nhid_store_submit_lazy(q->core->store, staged_job, write_done, p) < 0) {
        nhid_store_stage_free(p->staged);
        p->staged = NULL;
        reset_for_rerun(p);
        nhid_resp_error(&p->resp, 503, "storage is shutting down");
        finish(p);
    }
    return true;
}

static void run(struct pending *p)
{
    struct nhid_request *q = &p->req;
    struct nhid_core *core = q->core;
    const struct nhid_route *rt = p->route;
    q->action = rt->action;

    if (nhid_barrier_sealed(core->barrier) && !(rt->flags & NHID_ROUTE_SEALED_OK)) {
        nhid_resp_error(&p->resp, 503, "nhid is sealed: unseal it with `nhid operator unseal`");
        finish(p);
        return;
    }
    /* Body: a JSON object (empty body = {}) unless the route takes raw bytes. */
    if (!(rt->flags & NHID_ROUTE_RAW_BODY)) {
        if (q->body_len == 0) {
            q->body = json_object();
        } else {
            json_error_t jerr;
            q->body = json_loadb((const char *)q->body_raw, q->body_len, 0, &jerr);
            if (q->body == NULL) {
                nhid_resp_error(&p->resp, 400, "malformed JSON body: %s at line %d, column %d",
                                json_problem(&jerr), jerr.line, jerr.column);
                finish(p);
                return;
            }
            if (!json_is_object(q->body)) {
                nhid_resp_error(&p->resp, 400, "request body must be a JSON object");
                finish(p);
                return;
            }
        }
    }
    /* Liveness probes answer from memory: no snapshot, no credential. */
    if (rt->flags & NHID_ROUTE_NOT_AUDITED) {
        q->decision.allowed = true;
        snprintf(q->decision.reason, sizeof(q->decision.reason), "liveness probe");
        int prc = rt->handler(q, &p->resp);
        if (prc < 0 && p->resp.status < 400)
            nhid_resp_fail(&p->resp, prc, NULL);
        finish(p);
        return;
    }
    struct nhid_txn *txn = NULL;
    if (nhid_store_read_begin(core->store, &txn) < 0) {
        nhid_resp_error(&p->resp, 500, "storage unavailable");
        finish(p);
        return;
    }
    q->txn = txn;
    if (authenticate(p) < 0 && (rt->flags & NHID_ROUTE_UNAUTH)) {
        /* Unauthenticated endpoints ignore a bad or unusable credential (as Vault). */
        nhid_response_clear(&p->resp);
        nhid_auth_clear(&q->auth);
    } else if (p->resp.status >= 400) {
        q->txn = NULL;
        nhid_store_read_end(txn);
        finish(p);
        return;
    }
    if (authorize(p) < 0) {
        q->txn = NULL;
        nhid_store_read_end(txn);
        finish(p);
        return;
    }
    if ((rt->flags & NHID_ROUTE_WRITE) || q->auth.consume) {
        /* Fail closed early: do not change state that could not be audited. */
        if (core->audit && nhid_audit_device_count(core->audit) > 0 &&
            !nhid_audit_healthy(core->audit)) {
            q->txn = NULL;
            nhid_store_read_end(txn);
            nhid_resp_error(&p->resp, 503,
                            "audit log unavailable: changes are refused until an audit "
                            "device can write again");
            finish(p);
            return;
        }
        if ((rt->flags & NHID_ROUTE_OPTIMISTIC) && !q->auth.consume && run_staged(p, txn))
            return;
        q->txn = NULL;
        nhid_store_read_end(txn);
        if (nhid_store_submit(core->store, write_job, write_done, p) < 0) {
            nhid_resp_error(&p->resp, 503, "storage is shutting down");
            finish(p);
        }
        return;
    }
    if (rt->flags & NHID_ROUTE_ADMIN) {
        /* May block (fsync, external systems): run it on the worker pool. */
        q->txn = NULL;
        nhid_store_read_end(txn);
        http_pool_submit(p->loop->srv, p);
        return;
    }
    int rc = rt->handler(q, &p->resp);
    if (rc < 0 && p->resp.status < 400)
        nhid_resp_fail(&p->resp, rc, NULL);
    q->txn = NULL;
    nhid_store_read_end(txn);
    finish(p);
}

/* Worker thread: run a blocking handler outside any snapshot, then complete on the loop. */
void http_pool_run(struct pending *p)
{
    int rc = p->route->handler(&p->req, &p->resp);
    if (rc < 0 && p->resp.status < 400)
        nhid_resp_fail(&p->resp, rc, NULL);
    p->store_rc = NHID_OK;
    p->stage = 1;
    http_loop_post(p->loop, p);
}

/*
 * Request ids need to be unique, not secret: a random per-loop prefix
 * drawn once plus a counter, in UUID form (version 4 bits set), costs no
 * call into the random generator per request.
 */
static void request_id(struct http_loop *l, char out[37])
{
    if (!l->id_ready) {
        if (nhid_random_bytes(l->id_prefix, sizeof(l->id_prefix)) < 0)
            memset(l->id_prefix, 0x5a, sizeof(l->id_prefix));
        l->id_ready = true;
    }
    uint8_t b[16];
    memcpy(b, l->id_prefix, 8);
    uint64_t n = ++l->id_counter;
    for (int i = 0; i < 8; i++)
        b[8 + i] = l->id_prefix[8 + i] ^ (uint8_t)(n >> (56 - 8 * i));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void http_pipeline_dispatch(struct conn *c, char *body, size_t body_len)
{
    struct nhid_http *srv = c->loop->srv;
    struct pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        nhid_free_secret(body, body_len);
        http_conn_respond(c, 500, "application/json", NULL, "{\"errors\":[\"out of memory\"]}", 28);
        return;
    }
    p->loop = c->loop;
    p->conn = c;
    p->body = body;
    struct nhid_request *q = &p->req;
    q->core = srv->core;
    q->start_ns = nhid_mono_ns();
    q->route_index = -1;
    q->remote_addr = c->remote;
    q->remote_port = c->remote_port;
    q->tls = true;
    q->mtls = c->mtls;
    q->peer_cert = c->peer;
    q->peer_chain = c->peer_chain;
    q->body_raw = (const uint8_t *)body;
    q->body_len = body_len;
    q->method_name = c->head.method;
    q->path = p->path;
    request_id(c->loop, q->request_id);

    /* Credential: X-Vault-Token, or Authorization: Bearer (RFC 6750 §2.1). */
    const char *tok = nhid_http_header(&c->head, "X-Vault-Token");
    const char *authz = nhid_http_header(&c->head, "Authorization");
    if ((tok == NULL || *tok == '\0') && authz && strncasecmp(authz, "Bearer ", 7) == 0)
        tok = authz + 7;
    if (tok && *tok)
        q->client_token = strdup(tok);

    enum nhid_method m = parse_method(c->head.method);
    /* Target: "/v1/<path>[?query]" */
    const char *target = c->head.target;
    const char *qmark = strchr(target, '?');
    size_t tlen = qmark ? (size_t)(qmark - target) : strlen(target);
    if (qmark) {
        p->query = strdup(qmark + 1);
        q->query = p->query;
    }
    char err[256];
    if (m == 0) {
        q->method_name = c->head.method;
        snprintf(p->extra_headers, sizeof(p->extra_headers),
                 "Allow: GET, HEAD, PUT, POST, PATCH, DELETE, LIST\r\n");
        nhid_resp_error(&p->resp, 405, "method %.16s is not supported", c->head.method);
        snprintf(p->path, sizeof(p->path), "%.*s", (int)(tlen < 200 ? tlen : 200), target);
        finish(p);
        return;
    }
    if (tlen < 4 || strncmp(target, "/v1/", 4) != 0) {
        snprintf(p->path, sizeof(p->path), "%.*s", (int)(tlen < 200 ? tlen : 200), target);
        nhid_resp_error(&p->resp, 404, "no handler for \"%s\": API paths start with /v1/", p->path);
        finish(p);
        return;
    }
    if (nhid_path_normalize(target + 4, tlen - 4, p->path, sizeof(p->path), err, sizeof(err)) < 0) {
        snprintf(p->path, sizeof(p->path), "(invalid)");
        nhid_resp_error(&p->resp, 400, "%s", err);
        finish(p);
        return;
    }
    /* Vault: GET with ?list=true is a LIST. */
    if (m == NHID_M_GET && q->query) {
        char *lv = nhid_req_query(q, "list");
        if (lv && (strcmp(lv, "true") == 0 || strcmp(lv, "1") == 0))
            m = NHID_M_LIST;
        free(lv);
    }
    q->method = m;
    q->method_name = nhid_method_name(m);
    unsigned allowed = 0;
    p->route = nhid_router_match(srv->router, p->path, m == NHID_M_HEAD ? NHID_M_GET : m, q,
                                 &p->engine, &allowed);
    if (p->route == NULL) {
        if (allowed) {
            char list[96];
            methods_list(allowed, list, sizeof(list));
            snprintf(p->extra_headers, sizeof(p->extra_headers), "Allow: %s\r\n", list);
            nhid_resp_error(&p->resp, 405, "method %s is not allowed on %s (allowed: %s)",
                            q->method_name, p->path, list);
        } else {
            nhid_resp_error(&p->resp, 404, "no handler for route \"%s\"", p->path);
        }
        finish(p);
        return;
    }
    if (!(p->route->flags & NHID_ROUTE_ENCODED_SLASH) && strstr(p->path, "%2F") != NULL) {
        nhid_resp_error(&p->resp, 400, "path: encoded \"/\" (%%2F) is not allowed");
        finish(p);
        return;
    }
    run(p);
}

/* ---- metrics ------------------------------------------------------------ */

static const double latency_bounds[HTTP_LATENCY_BUCKETS - 1] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

void http_metrics_record(struct http_loop *l, int route_index, int status, int64_t dur_ns)
{
    size_t idx = route_index < 0 ? nhid_router_count(l->srv->router) : (size_t)route_index;
    struct route_metrics *m = &l->metrics[idx];
    int cls = status / 100;
    if (cls < 1 || cls > 5)
        cls = 5;
    atomic_fetch_add_explicit(&m->by_class[cls], 1, memory_order_relaxed);
    double secs = (double)dur_ns / 1e9;
    size_t b = 0;
    while (b < HTTP_LATENCY_BUCKETS - 1 && secs > latency_bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->latency[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->latency_sum_us, (uint64_t)(dur_ns / 1000), memory_order_relaxed);
}

char *http_metrics_render(struct nhid_core *core)
{
    struct nhid_http *h = core->http;
    if (h == NULL)
        return strdup("");
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        return NULL;
    size_t n = nhid_router_count(h->router) + 1;
    evbuffer_add_printf(b, "# HELP nhid_http_requests_total HTTP requests by route and "
                           "status class.\n# TYPE nhid_http_requests_total counter\n");
    for (size_t r = 0; r < n; r++) {
        const struct nhid_route *rt = nhid_router_route(h->router, r);
        const char *label = rt ? rt->pattern : "unrouted";
        for (int cls = 1; cls <= 5; cls++) {
            uint64_t total = 0;
            for (unsigned l = 0; l < h->n_loops; l++)
                total += atomic_load_explicit(&h->loops[l].metrics[r].by_class[cls],
                                              memory_order_relaxed);
            if (total)
                evbuffer_add_printf(b,
                                    "nhid_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
                                    label, cls, (unsigned long long)total);
        }
    }
    evbuffer_add_printf(b, "# HELP nhid_http_request_duration_seconds Request latency by route.\n"
                           "# TYPE nhid_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r < n; r++) {
        const struct nhid_route *rt = nhid_router_route(h->router, r);
        const char *label = rt ? rt->pattern : "unrouted";
        uint64_t buckets[HTTP_LATENCY_BUCKETS] = {0}, sum_us = 0, count = 0;
        for (unsigned l = 0; l < h->n_loops; l++) {
            for (size_t k = 0; k < HTTP_LATENCY_BUCKETS; k++)
                buckets[k] +=
                    atomic_load_explicit(&h->loops[l].metrics[r].latency[k], memory_order_relaxed);
            sum_us +=
                atomic_load_explicit(&h->loops[l].metrics[r].latency_sum_us, memory_order_relaxed);
        }
        for (size_t k = 0; k < HTTP_LATENCY_BUCKETS; k++)
            count += buckets[k];
        if (count == 0)
            continue;
        uint64_t cum = 0;
        for (size_t k = 0; k < HTTP_LATENCY_BUCKETS - 1; k++) {
            cum += buckets[k];
            evbuffer_add_printf(
                b, "nhid_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                label, latency_bounds[k], (unsigned long long)cum);
        }
        evbuffer_add_printf(
            b,
            "nhid_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
            "nhid_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
            "nhid_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
            label, (unsigned long long)count, label, (double)sum_us / 1e6, label,
            (unsigned long long)count);
    }
    evbuffer_add_printf(
        b,
        "# HELP nhid_http_connections_open Open client connections.\n"
        "# TYPE nhid_http_connections_open gauge\nnhid_http_connections_open %u\n"
        "# HELP nhid_http_connections_refused_total Connections refused at the limit.\n"
        "# TYPE nhid_http_connections_refused_total counter\n"
        "nhid_http_connections_refused_total %llu\n"
        "# HELP nhid_tls_handshake_failures_total Failed TLS handshakes.\n"
        "# TYPE nhid_tls_handshake_failures_total counter\n"
        "nhid_tls_handshake_failures_total %llu\n"
        "# HELP nhid_write_conflicts_total Optimistic writes whose reads had "
        "changed, re-run in the writer.\n"
        "# TYPE nhid_write_conflicts_total counter\n"
        "nhid_write_conflicts_total %llu\n",
        atomic_load(&h->open_conns), (unsigned long long)atomic_load(&h->conns_refused),
        (unsigned long long)atomic_load(&h->tls_failures),
        (unsigned long long)atomic_load(&h->write_conflicts));
    size_t len = evbuffer_get_length(b);
    char *out = malloc(len + 1);
    if (out) {
        evbuffer_remove(b, out, len);
        out[len] = '\0';
    }
    evbuffer_free(b);
    return out;
}
