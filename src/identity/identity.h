/*
 * identity — machine identities, groups, the lifecycle state machine, the
 * credential registry, and the services auth methods (auth/approle,
 * auth/cert, auth/join) build on.
 *
 * Storage (values barrier-encrypted JSON unless said otherwise; index
 * values are empty):
 *   identity/machine/<name>                 the identity record
 *   identity/idx/id/<entity_id>             {"name": ...}
 *   identity/idx/owner/<owner>/<name>       index
 *   identity/idx/kind/<kind>/<name>         index
 *   identity/idx/state/<state>/<name>       index
 *   identity/idx/label/<k>=<v>/<name>       index
 *   identity/idx/spiffe/<spiffe-id>         {"name": ...}
 *   identity/idx/seen/<unix,20>/<name>      last-seen (or created) time index
 *   identity/seen/<name>                    {"last_seen", "auth_ok", "auth_failed", ...}
 *   identity/group/<name>                   group record
 *   identity/cred/<entity_id>/<type>/<id>   credential record
 *   identity/cred-expiry/<unix,20>/<entity_id>/<type>/<id>   expiry index
 *
 * A filtered list walks the most selective index and checks the other
 * filters with point lookups of index keys: it never scans all identities.
 *
 * Thread-safety: every function may be called from any thread. Functions
 * taking a txn follow the engine rules (writable only on WRITE routes).
 */
#ifndef NHID_IDENTITY_H
#define NHID_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"

extern const struct nhid_engine nhid_identity_engine;

#define NHID_IDENTITY_NAME_MAX                                                                     \
    127 /* bytes in an identity or group name (fits nhid_auth.identity) */
#define NHID_IDENTITY_SPIFFE_MAX 2048 /* SPIFFE ID spec: URI at most 2048 bytes */
#define NHID_IDENTITY_LABELS_MAX 32
#define NHID_IDENTITY_HISTORY_MAX 100 /* transitions kept in the record (all are audited) */

/* Lifecycle states. */
#define NHID_STATE_PENDING "pending"
#define NHID_STATE_ACTIVE "active"
#define NHID_STATE_SUSPENDED "suspended"
#define NHID_STATE_DECOMMISSIONED "decommissioned"

/*
 * Validate an identity/group/role name: 1..127 bytes of [A-Za-z0-9._-],
 * starting with a letter or digit. On error writes a message naming `what`
 * into msg, e.g. `identity name "a/b": character '/' is not allowed (use
 * letters, digits, '.', '_', '-')`.
 */
NHID_MUST_CHECK int nhid_identity_name_valid(const char *what, const char *name, char *msg,
                                             size_t msglen);

/*
 * Validate a SPIFFE ID (SPIFFE ID spec §2): "spiffe://" + trust domain of
 * [a-z0-9.-_] + optional path of segments of [A-Za-z0-9.-_], no empty,
 * "." or ".." segment, no trailing "/", no query or fragment, ≤ 2048 bytes.
 */
NHID_MUST_CHECK int nhid_identity_spiffe_valid(const char *id, char *msg, size_t msglen);

/* Load the identity record by name. *out new reference. NHID_ERR_NOT_FOUND. */
NHID_MUST_CHECK int nhid_identity_get(struct nhid_core *core, struct nhid_txn *txn,
                                      const char *name, json_t **out);
/*
 * As nhid_identity_get, for login paths: the record may be shared with
 * other callers on this thread (nhid_core_load_json_shared), so it must
 * not be modified (json_deep_copy first).
 */
NHID_MUST_CHECK int nhid_identity_get_shared(struct nhid_core *core, struct nhid_txn *txn,
                                             const char *name, json_t **out);
/* Name of the identity whose SPIFFE ID is spiffe_id. NHID_ERR_NOT_FOUND. */
NHID_MUST_CHECK int nhid_identity_by_spiffe(struct nhid_core *core, struct nhid_txn *txn,
                                            const char *spiffe_id,
                                            char name[NHID_IDENTITY_NAME_MAX + 1]);

/*
 * May this identity authenticate now? NHID_OK for pending and active;
 * NHID_ERR_DENIED (msg: "identity web-1 is suspended") otherwise.
 */
NHID_MUST_CHECK int nhid_identity_may_authenticate(const json_t *ident, char *msg, size_t msglen);

/*
 * After a successful enrollment or login: pending → active (recorded in
 * the history with who/why; no write for an already active identity).
 * txn must be writable. *activated (optional) tells whether it changed.
 */
NHID_MUST_CHECK int nhid_identity_activate(struct nhid_core *core, struct nhid_txn *txn,
                                           json_t *ident, const char *method, bool *activated);

/*
 * Record an authentication attempt in memory (last_seen, success/failure
 * counters, source networks), flushed to storage by a periodic job.
 * name may be NULL/"" for an attempt no identity could be tied to.
 */
void nhid_identity_note_auth(struct nhid_core *core, const char *name, const char *method,
                             const char *source, bool ok);

/*
 * The "identity" object for resp->audit_extra:
 * {"identity": {"name", "entity_id", "event", "method", "source", "anomaly", "reason"}}.
 * Fields that are NULL are left out. New reference (NULL on OOM).
 */
json_t *nhid_identity_audit_event(const char *name, const char *entity_id, const char *event,
                                  const char *method, const char *source, bool anomaly,
                                  const char *reason);

/* ---- failure rate limiting ------------------------------------------- */

/*
 * Token buckets of authentication failures per key (e.g. "approle/role/web"
 * or "ip/10.0.0.7"): NHID_OK while the bucket has room, NHID_ERR_RATE_LIMIT
 * (with *retry_after seconds) when it is empty. Successes cost nothing.
 */
#define NHID_AUTH_FAIL_BURST 20   /* failures allowed at once (env NHID_AUTH_FAIL_BURST overrides) \
                                   */
#define NHID_AUTH_FAIL_REFILL_S 3 /* one more allowed every 3 s */
NHID_MUST_CHECK int nhid_identity_rate_check(const char *key, int *retry_after);
void nhid_identity_rate_fail(const char *key);
/* Forget every bucket (tests). */
void nhid_identity_rate_reset(void);

/* ---- credential registry ------------------------------------------------ */

/*
 * Revocation hook of a credential type: revoke credential `id` of identity
 * `entity_id` inside txn (writable). Return NHID_OK also when the
 * credential is already gone.
 */
typedef int (*nhid_cred_revoke_fn)(struct nhid_core *core, struct nhid_txn *txn,
                                   const char *entity_id, const char *id);

#define NHID_CRED_TYPES_MAX 16
/*
 * Register a credential type ("token", "approle-secret-id", "join",
 * "x509", "oauth-client", "db-login", ...) and its revocation hook. Call
 * at start-up (an engine's on_unseal); registering a type again replaces
 * its hook.
 */
NHID_MUST_CHECK int nhid_identity_cred_register_type(const char *type, nhid_cred_revoke_fn fn);

/*
 * Record a credential issued to an identity (txn writable). Every
 * credential has an expiry: expires <= issued is refused (NHID_ERR_INVALID).
 * id is the accessor or fingerprint (never the secret). meta (borrowed,
 * may be NULL) is stored with the record.
 */
NHID_MUST_CHECK int nhid_identity_cred_record(struct nhid_core *core, struct nhid_txn *txn,
                                              const char *entity_id, const char *type,
                                              const char *id, int64_t issued, int64_t expires,
                                              const json_t *meta);
/*
 * Mark a credential revoked (or consumed, for one-time credentials) when
 * its engine removes it (txn writable). A credential that already expired
 * keeps its record as expired. Unknown credentials are ignored.
 */
NHID_MUST_CHECK int nhid_identity_cred_revoked(struct nhid_core *core, struct nhid_txn *txn,
                                               const char *entity_id, const char *type,
                                               const char *id, const char *reason);
/* Count a use of a credential from source (in memory; flushed periodically). */
void nhid_identity_cred_used(struct nhid_core *core, const char *entity_id, const char *type,
                             const char *id, const char *source);
/*
 * Revoke every live credential of the identity through its type's hook,
 * in txn (one transaction). *revoked (optional) gets the count. Fails
 * (and the caller rolls back) if a credential's type has no hook.
 */
NHID_MUST_CHECK int nhid_identity_cred_revoke_all(struct nhid_core *core, struct nhid_txn *txn,
                                                  const char *entity_id, const char *reason,
                                                  unsigned *revoked);

/* The network of an address for the "used from several networks" check: IPv4 /24, IPv6 /64. */
void nhid_identity_source_network(const char *addr, char *out, size_t outlen);

/*
 * Register an identity directly in txn (writable), as POST
 * identity/machine/:name does but without the HTTP layer: for bulk
 * imports and benchmarks. kind must be valid; labels (borrowed) may be
 * NULL; state is NHID_STATE_PENDING or NHID_STATE_ACTIVE. Names and
 * values are validated; NHID_ERR_EXISTS if the name is taken.
 */
NHID_MUST_CHECK int nhid_identity_import(struct nhid_core *core, struct nhid_txn *txn,
                                         const char *name, const char *kind, const char *owner,
                                         const json_t *labels, const char *state);

/* ---- helpers for machine-authentication engines -------------------------- */

/* What a login issues (token parameters from the auth method's role). */
struct nhid_identity_login {
    const char *method; /* "approle", "cert", "join" */
    const char *path;   /* "auth/approle/login" */
    const char *role;   /* role name for metadata, may be NULL */
    json_t *policies;   /* array (borrowed), may be NULL (["default"]) */
    json_t *meta;       /* extra metadata (borrowed), may be NULL */
    int64_t ttl;        /* 0: 15 minutes */
    int64_t max_ttl;    /* 0: none */
    int64_t period;
    int64_t num_uses;
    json_t *bound_cidrs; /* token_bound_cidrs (borrowed), may be NULL */
};

/*
 * Before checking a credential: refuse with 429 (and an audit record)
 * when the failure buckets of the source address or of rate_key (e.g.
 * "approle/<role_id>") are empty.
 */
NHID_MUST_CHECK int nhid_identity_login_precheck(struct nhid_request *req,
                                                 struct nhid_response *resp, const char *method,
                                                 const char *rate_key);

/*
 * A failed login: counts the failure against the source address and
 * rate_key, notes it on the identity (if known), sets 403 with msg (a
 * uniform message: it must not say which part was wrong) and the audit
 * record's "identity" object (reason is for the audit record only).
 * Returns NHID_ERR_DENIED.
 */
int nhid_identity_login_fail(struct nhid_request *req, struct nhid_response *resp,
                             const char *method, const char *rate_key, const char *name,
                             const char *msg, const char *reason, bool anomaly);

/*
 * A successful credential check for identity ident (a record from
 * nhid_identity_get or _get_shared; never modified): refuses a suspended/decommissioned identity (403),
 * activates a pending one, creates the token (bound to the identity,
 * with metadata identity/spiffe_id/role/method), sets resp->auth and the
 * audit "identity" object. txn must be writable.
 */
NHID_MUST_CHECK int nhid_identity_login_issue(struct nhid_request *req, struct nhid_response *resp,
                                              json_t *ident, const struct nhid_identity_login *l,
                                              const char *rate_key);

#endif /* NHID_IDENTITY_H */
