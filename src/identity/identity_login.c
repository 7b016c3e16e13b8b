/*
 * identity_login — what every machine-authentication method does around
 * its own credential check: rate limiting of failures, uniform failure
 * responses, state checks, activation, token issue and the audit record.
 */
#include <stdlib.h>

#include "auth/token/token.h"
#include "identity/identity_internal.h"

static void ip_key(const struct nhid_request *req, char *out, size_t len)
{
    snprintf(out, len, "ip/%s", req->remote_addr ? req->remote_addr : "");
}

int nhid_identity_login_precheck(struct nhid_request *req, struct nhid_response *resp,
                                 const char *method, const char *rate_key)
{
    char ipk[96];
    int retry = 0;
    ip_key(req, ipk, sizeof(ipk));
    const char *which = NULL;
    if (nhid_identity_rate_check(ipk, &retry) < 0)
        which = "source address";
    else if (rate_key && nhid_identity_rate_check(rate_key, &retry) < 0)
        which = "role";
    if (which == NULL)
        return NHID_OK;
    json_decref(resp->audit_extra);
    resp->audit_extra = nhid_identity_audit_event(NULL, NULL, "login_rate_limited", method,
                                                  req->remote_addr, true, which);
    return nhid_resp_error(resp, 429,
                           "too many failed login attempts from this %s: retry after %d seconds",
                           which, retry);
}

int nhid_identity_login_fail(struct nhid_request *req, struct nhid_response *resp,
                             const char *method, const char *rate_key, const char *name,
                             const char *msg, const char *reason, bool anomaly)
{
    char ipk[96];
    ip_key(req, ipk, sizeof(ipk));
    nhid_identity_rate_fail(ipk);
    if (rate_key)
        nhid_identity_rate_fail(rate_key);
    nhid_identity_note_auth(req->core, name, method, req->remote_addr, false);
    json_decref(resp->audit_extra);
    resp->audit_extra = nhid_identity_audit_event(name, NULL, "login_failed", method,
                                                  req->remote_addr, anomaly, reason);
    nhid_resp_error(resp, 403, "%s", msg);
    return NHID_ERR_DENIED;
}

int nhid_identity_login_issue(struct nhid_request *req, struct nhid_response *resp, json_t *ident,
                              const struct nhid_identity_login *l, const char *rate_key)
{
    int rc = NHID_OK;
    char msg[256];
    char token[NHID_TOKEN_MAX] = "";
    json_t *meta = NULL, *pol = NULL, *auth = NULL, *own_ident = NULL;
    const char *name = idm_jstr(ident, "name");
    if (nhid_identity_may_authenticate(ident, msg, sizeof(msg)) < 0) {
        char full[300];
        snprintf(full, sizeof(full), "permission denied: %s", msg);
        return nhid_identity_login_fail(req, resp, l->method, rate_key, name, full, msg, false);
    }
    bool activated = false;
    if (strcmp(idm_jstr(ident, "state"), NHID_STATE_PENDING) == 0) {
        /* Activation changes the record, which the caller may share: change a copy. */
        own_ident = json_deep_copy(ident);
        NHID_CHECK_ALLOC(own_ident);
        ident = own_ident;
    }
    NHID_TRY(nhid_identity_activate(req->core, req->txn, ident, l->method, &activated));
    meta = l->meta ? json_deep_copy(l->meta) : json_object();
    NHID_CHECK_ALLOC(meta);
    json_object_set_new(meta, "identity", json_string(name));
    json_object_set_new(meta, "spiffe_id", json_string(idm_jstr(ident, "spiffe_id")));
    json_object_set_new(meta, "auth_method", json_string(l->method));
    if (l->role)
        json_object_set_new(meta, "role", json_string(l->role));
    pol = (l->policies && json_array_size(l->policies)) ? json_incref(l->policies)
                                                        : json_pack("[s]", "default");
    NHID_CHECK_ALLOC(pol);
    char display[200];
    snprintf(display, sizeof(display), "%s-%s", l->method, name);
    struct nhid_token_params p = {
        .policies = pol,
        .meta = meta,
        .ttl = l->ttl,
        .explicit_max_ttl = l->max_ttl,
        .period = l->period,
        .num_uses = l->num_uses,
        .renewable = true,
        .display_name = display,
        .path = l->path,
        .entity_id = idm_jstr(ident, "id"),
        .identity = name,
        .auth_method = l->method,
        .bound_cidrs = l->bound_cidrs,
    };
    NHID_TRY(nhid_token_create(req->core, req->txn, &p, token, &auth));
    resp->auth = auth;
    nhid_identity_note_auth(req->core, name, l->method, req->remote_addr, true);
    json_decref(resp->audit_extra);
    resp->audit_extra =
        nhid_identity_audit_event(name, idm_jstr(ident, "id"), "login", l->method, req->remote_addr,
                                  false, activated ? "activated (pending → active)" : NULL);
    snprintf(req->auth.entity_id, sizeof(req->auth.entity_id), "%s", idm_jstr(ident, "id"));
    snprintf(req->auth.identity, sizeof(req->auth.identity), "%s", name);
out:
    nhid_wipe(token, sizeof(token));
    json_decref(meta);
    json_decref(pol);
    json_decref(own_ident);
    return rc;
}
