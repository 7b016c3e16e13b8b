/*
 * engine — the interface through which engines (sys, auth/token, identity,
 * pki, kv, ...) plug into the server without knowing each other or the
 * HTTP transport.
 *
 * An engine is a static table: routes (method + path pattern → handler),
 * optional authenticators (resolve a caller from a token or a client
 * certificate), lifecycle hooks and periodic jobs. Handlers are plain
 * synchronous functions: they read a parsed request and fill a response;
 * they never touch libevent, sockets or threads.
 *
 * Where a handler runs (the pipeline decides, from the route's flags):
 *  - default: on the event-loop thread inside a read snapshot (req->txn is
 *    read-only); must not block.
 *  - NHID_ROUTE_WRITE: on the store's writer thread inside a group-commit
 *    transaction (req->txn writable); the response is sent only after the
 *    commit is durable.
 *
 * Pipeline for every request (see docs/dev/architecture.md):
 *   route → authenticate → authorize → handler → audit (durable) → reply
 */
#ifndef NHID_ENGINE_H
#define NHID_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

struct nhid_store;
struct nhid_txn;
struct nhid_barrier;
struct nhid_audit;
struct nhid_core;
struct nhid_request;
struct nhid_response;

/* HTTP methods as a bitmask, so a route can accept several. LIST is Vault's. */
enum nhid_method {
    NHID_M_GET = 1 << 0,
    NHID_M_PUT = 1 << 1,
    NHID_M_POST = 1 << 2,
    NHID_M_DELETE = 1 << 3,
    NHID_M_LIST = 1 << 4, /* LIST verb, or GET with ?list=true */
    NHID_M_PATCH = 1 << 5,
    NHID_M_HEAD = 1 << 6,
};
#define NHID_M_WRITE (NHID_M_PUT | NHID_M_POST)

enum nhid_route_flags {
    NHID_ROUTE_UNAUTH = 1 << 0,        /* no credential needed (health, unseal, login) */
    NHID_ROUTE_SEALED_OK = 1 << 1,     /* served while sealed (otherwise 503) */
    NHID_ROUTE_WRITE = 1 << 2,         /* handler runs in a group-commit write txn */
    NHID_ROUTE_SELF = 1 << 3,          /* acts only on the caller's own token (baseline allows) */
    NHID_ROUTE_RAW_BODY = 1 << 4,      /* body is not JSON; see req->body_raw */
    NHID_ROUTE_NO_AUDIT_DATA = 1 << 5, /* omit request/response data from audit entirely */
    NHID_ROUTE_NOT_AUDITED = 1 << 6,   /* liveness probes only: sys/health, sys/seal-status */
    /*
     * Administrative operation: the handler runs on the event loop but
     * OUTSIDE the request's read snapshot (req->txn is NULL), because it
     * commits through nhid_core_write() or the barrier and then reads
     * what it wrote. It opens its own read transactions if it needs any.
     */
    NHID_ROUTE_ADMIN = 1 << 7,
    /*
     * The path may carry an encoded "/" (%2F), left encoded in the route
     * parameter for the handler to decode (OCSP GET, RFC 6960 §A.1, puts
     * base64 in the path). Other routes refuse %2F with 400.
     */
    NHID_ROUTE_ENCODED_SLASH = 1 << 8,
    /*
     * With NHID_ROUTE_WRITE: run the handler first on the event loop
     * against a staged txn over the read snapshot (store.h, "optimistic
     * writes"), so its CPU work (signing, hashing, encrypting, encoding)
     * runs in parallel on every loop; the writer thread then only checks
     * that nothing the handler read has changed and applies its writes. On
     * a conflict, or when the handler needs what a staged txn cannot give
     * (a prefix delete), the handler runs again in the writer as a plain
     * WRITE route. So such a handler must keep its effects to its txn,
     * req->auth and the response; in-memory telemetry it updates (last
     * seen, use counters, login rate limits) may count a re-run twice.
     * A handler that fails on the snapshot is answered at once: it wrote
     * nothing.
     */
    NHID_ROUTE_OPTIMISTIC = 1 << 9,
};

#define NHID_ROUTE_PARAMS_MAX 8
#define NHID_PATH_MAX 1024

/* Who is calling, filled by an authenticator. Strings are owned by the request. */
struct nhid_auth {
    bool authenticated;
    bool root;           /* the root policy: bypasses authorization */
    const char *method;  /* "token", "cert", "approle", "join", ... */
    char accessor[64];   /* token accessor ("" for tokenless mTLS) */
    char token_hash[65]; /* keyed hash of the presented token (hex) */
    char entity_id[64];  /* identity id, if bound to one */
    char identity[128];  /* identity name, if bound to one */
    /*
     * policies, metadata and token are owned references that may be shared
     * with other requests on the same thread (nhid_core_load_json_shared):
     * read them, never modify them.
     */
    json_t *policies;   /* array of policy names */
    json_t *metadata;   /* object */
    json_t *token;      /* the token entry as stored, for auth/token */
    int64_t expires_at; /* 0 = never */
    /*
     * Set by an authenticator whose credential has a use limit: the
     * pipeline then runs the handler in a write txn and calls consume()
     * first, in the same txn; a negative result denies the request (403).
     */
    int (*consume)(struct nhid_request *req, struct nhid_response *resp);
};

/* The decision taken by the authorizer, for the audit record. */
struct nhid_decision {
    bool allowed;
    char reason[128]; /* "root token", "policy", "baseline", "default deny", ... */
    json_t *policies; /* determining policy ids (owned), may be NULL */
    json_t *errors;   /* erroring policy ids (owned), may be NULL */
};

struct nhid_request {
    /* transport facts */
    enum nhid_method method;
    const char *method_name; /* "GET", "LIST", ... */
    const char *path;        /* after "/v1/", without query, e.g. "sys/health" */
    const char *query;       /* raw query string or NULL */
    const char *remote_addr; /* "127.0.0.1" */
    uint16_t remote_port;
    bool tls;
    /*
     * Client certificate. With a listener-wide client CA (tls_client_ca_file)
     * TLS verified it and mtls is true. Otherwise a certificate is optional,
     * peer_cert is whatever the client presented (possession of its key is
     * proven by the handshake) and an authenticator (auth/cert) decides
     * whether it is trusted, setting mtls when it is.
     */
    bool mtls;
    void *peer_cert;  /* X509 * of the client, borrowed, or NULL */
    void *peer_chain; /* STACK_OF(X509) * sent by the client, borrowed, or NULL */
    char request_id[37];
    int64_t start_ns;   /* monotonic */
    int route_index;    /* index in the routing table (metrics), -1 if none */
    const char *action; /* the route's Cedar action, or NULL (derive from method) */

    /* route match */
    const char *param_names[NHID_ROUTE_PARAMS_MAX];
    char *param_values[NHID_ROUTE_PARAMS_MAX];
    unsigned n_params;

    /* body */
    json_t *body;            /* parsed JSON object (never NULL for JSON routes: {}) */
    const uint8_t *body_raw; /* raw bytes (always set; NUL-terminated) */
    size_t body_len;

    /* credential presented (secret: never log; wiped after the request) */
    char *client_token; /* X-Vault-Token / Authorization: Bearer, or NULL */

    struct nhid_auth auth;
    struct nhid_decision decision;

    /* services */
    struct nhid_core *core;
    struct nhid_txn *txn; /* read snapshot, or writable for WRITE routes */
};

struct nhid_response {
    int status;       /* default 200 (204 when nothing was set) */
    json_t *data;     /* envelope "data" (owned) */
    json_t *auth;     /* envelope "auth" (owned) */
    json_t *warnings; /* array of strings (owned) */
    json_t *raw;      /* if set, the whole JSON body, no envelope (owned) */
    char *lease_id;   /* envelope lease fields (owned) */
    int64_t lease_duration;
    bool renewable;
    json_t *errors; /* array of strings; set by nhid_resp_error (owned) */
    uint8_t *body;  /* if set, raw body bytes (owned), sent as content_type */
    size_t body_len;
    char content_type[64];
    char location[256];  /* optional Location header */
    json_t *audit_extra; /* object merged into the audit record (owned), optional */
};

typedef int (*nhid_handler_fn)(struct nhid_request *req, struct nhid_response *resp);

struct nhid_route {
    const char *pattern; /* "sys/audit/:name", or "secret/data/" then "*path" = rest of path */
    unsigned methods;    /* enum nhid_method bits */
    unsigned flags;      /* enum nhid_route_flags bits */
    nhid_handler_fn handler;
    /*
     * The Cedar action name for authorization ("read", "create", "update",
     * "delete", "list", "login", "issue", "sign", "revoke", "rotate", ...).
     * NULL: derived from the method (GET→read, LIST→list, POST/PUT→update,
     * DELETE→delete).
     */
    const char *action;
};

/*
 * An authenticator tries to establish who is calling. Return NHID_OK
 * having set req->auth.authenticated if it recognised a valid credential;
 * NHID_OK leaving it unset if the request carries nothing for it;
 * NHID_ERR_DENIED (message in resp via nhid_resp_error) if a credential
 * it owns is invalid, expired or revoked. Runs in the read snapshot.
 */
typedef int (*nhid_authenticate_fn)(struct nhid_request *req, struct nhid_response *resp);

/* A periodic job, run on the scheduler thread while unsealed. */
struct nhid_job {
    const char *name;
    int interval_seconds;
    int (*run)(struct nhid_core *core);
};

struct nhid_engine {
    const char *name; /* "sys", "token", ... */
    const struct nhid_route *routes;
    size_t n_routes;
    nhid_authenticate_fn authenticate; /* optional */
    const struct nhid_job *jobs;
    size_t n_jobs;
    /* Called after unseal (store readable/writable) and before seal. Optional. */
    int (*on_unseal)(struct nhid_core *core);
    void (*on_seal)(struct nhid_core *core);
    /* Contribute lines to /v1/sys/metrics?format=prometheus. Optional. */
    void (*metrics)(struct nhid_core *core, json_t *gauges);
};

/* Limits from the config file ("limits" section). */
struct nhid_limits {
    size_t max_request_body;  /* default 1 MiB */
    size_t max_header_count;  /* default 64 */
    size_t max_header_bytes;  /* default 16 KiB */
    size_t max_url_len;       /* default 4 KiB */
    unsigned max_connections; /* default 4096 */
    unsigned idle_timeout_s;  /* default 60 */
    unsigned read_timeout_s;  /* default 10 (slow clients) */
    size_t max_value_size;    /* default 1 MiB (KV etc.) */
};

/*
 * The services engines use. One per server; fields are set at start and
 * then only read (the pointed-to services are thread-safe).
 */
struct nhid_core {
    struct nhid_store *store;
    struct nhid_barrier *barrier;
    struct nhid_audit *audit;
    char trust_domain[256];
    char api_addr[256]; /* externally reachable base URL, e.g. https://127.0.0.1:8200 */
    bool dev;
    struct nhid_limits limits;
    /* Prometheus text of the HTTP layer's counters (malloc'd), set by http. */
    char *(*http_metrics)(struct nhid_core *core);
    void *http;
    int64_t start_time; /* Unix seconds when the server started */
    /* Run every engine's on_unseal / on_seal (set by the server; used by sys). */
    int (*after_unseal)(struct nhid_core *core);
    void (*before_seal)(struct nhid_core *core);
    /*
     * Identity gate (set by the identity engine): may a credential bound to
     * identity `entity_id` act now? NHID_OK if its identity is active (or
     * pending), NHID_ERR_DENIED with a reason in msg if it is suspended or
     * decommissioned. Called by authenticators on every request, so it must
     * be O(1) and not touch storage. NULL: no identities exist yet.
     */
    int (*identity_gate)(struct nhid_core *core, const char *entity_id, char *msg, size_t msglen);
    /*
     * Identity entities for policy (set by the identity engine): append to
     * `entities` (a JSON array in Cedar's entity format) the entity
     * Machine::"<identity>" with its attributes (kind, owner, labels,
     * state, spiffe_id) and parents (Group::"<g>", Owner::"<owner>"), and
     * every ancestor entity (nested groups). state_out gets the identity's
     * lifecycle state. NULL: principals are bare Machine entities.
     */
    int (*identity_entities)(struct nhid_core *core, struct nhid_txn *txn, const char *identity,
                             json_t *entities, char *state_out, size_t statelen);
    /*
     * PKI hooks (set by the pki engine when it is unsealed):
     *  pki_trusted_cas: add every active nhid CA certificate to `x509_store`
     *    (an X509_STORE *), so the cert auth method trusts nhid's own CA.
     *  pki_issue_for_identity: sign a PEM CSR for identity `identity` with
     *    the default issuer and role "default" inside writable txn; *out
     *    gets Vault's issue response fields (certificate, issuing_ca,
     *    ca_chain, serial_number, expiration). Used by join-token login.
     */
    int (*pki_trusted_cas)(struct nhid_core *core, void *x509_store);
    int (*pki_issue_for_identity)(struct nhid_core *core, struct nhid_txn *txn,
                                  const char *identity, const char *spiffe_id, const char *csr_pem,
                                  json_t **out, char *err, size_t errlen);
    /* Audit devices from the config file: [{"name","path","description"}] (borrowed). */
    json_t *config_audit;
    const char *storage_type; /* "sqlite" */
    /* Authorization hook (Cedar once loaded). NULL: root-only + baseline. */
    int (*authorize)(struct nhid_core *core, struct nhid_request *req);
    void *authz_state;
    /* Per-engine private state, indexed by engine name (see nhid_core_state). */
    void *engine_state[32];
    const struct nhid_engine *const *engines;
    size_t n_engines;
};

/* ---- helpers for handlers (engine.c) ------------------------------------ */

/* Value of the route parameter `name` (":name" or "*name"), or NULL. */
const char *nhid_req_param(const struct nhid_request *req, const char *name);
/* Decoded value of a query parameter (malloc'd copy; caller frees), or NULL. */
char *nhid_req_query(const struct nhid_request *req, const char *name);

/* Set an error: status and one message for {"errors":[msg]}. Returns err. */
int nhid_resp_error(struct nhid_response *resp, int status, const char *fmt, ...) NHID_PRINTF(3, 4);
/* Map an nhid_err to its status and use msg (or nhid_strerror). Returns err. */
int nhid_resp_fail(struct nhid_response *resp, int err, const char *msg);

/*
 * Body field accessors with Vault's lenient typing and clear errors. Each
 * returns NHID_OK (value written, or default if absent), or
 * NHID_ERR_INVALID after setting a 400 error naming the field, e.g.
 * `field "ttl": "90x": unknown unit "x" (use s, m, h, d)`.
 */
NHID_MUST_CHECK int nhid_body_string(struct nhid_request *req, struct nhid_response *resp,
                                     const char *field, const char *def, const char **out);
NHID_MUST_CHECK int nhid_body_bool(struct nhid_request *req, struct nhid_response *resp,
                                   const char *field, bool def, bool *out);
NHID_MUST_CHECK int nhid_body_int(struct nhid_request *req, struct nhid_response *resp,
                                  const char *field, int64_t def, int64_t min, int64_t max,
                                  int64_t *out);
/* Accepts an integer (seconds) or a Go-style duration string. */
NHID_MUST_CHECK int nhid_body_duration(struct nhid_request *req, struct nhid_response *resp,
                                       const char *field, int64_t def, int64_t *out);
/* Accepts a JSON array of strings or a comma-separated string. New reference in *out. */
NHID_MUST_CHECK int nhid_body_string_list(struct nhid_request *req, struct nhid_response *resp,
                                          const char *field, json_t **out);
/* Refuse fields not in the NULL-terminated allowed list (400 naming the first unknown). */
NHID_MUST_CHECK int nhid_body_only(struct nhid_request *req, struct nhid_response *resp,
                                   const char *const *allowed);

/* ---- reading stored JSON -------------------------------------------------- */

/* String member of a JSON object, or "" if absent or not a string. */
const char *nhid_json_str(const json_t *o, const char *key);
/* Integer member of a JSON object, or 0 if absent or not an integer. */
int64_t nhid_json_int(const json_t *o, const char *key);

/* ---- encrypted JSON storage for engines --------------------------------- */

/* Load a JSON value stored through the barrier. NHID_ERR_NOT_FOUND if absent. */
NHID_MUST_CHECK int nhid_core_load_json(struct nhid_core *core, struct nhid_txn *txn,
                                        const char *key, json_t **out);
/*
 * As nhid_core_load_json, for hot read paths (token authentication): the
 * value may be shared with earlier and later callers on this thread, so the
 * caller must not modify it (json_deep_copy first) and releases it with
 * json_decref. The entry is read from txn every time; only the decryption
 * and the parse are skipped when the stored bytes are unchanged
 * (src/engine/entry_cache.c).
 */
NHID_MUST_CHECK int nhid_core_load_json_shared(struct nhid_core *core, struct nhid_txn *txn,
                                               const char *key, json_t **out);
/* Store a JSON value through the barrier (txn must be writable). */
NHID_MUST_CHECK int nhid_core_save_json(struct nhid_core *core, struct nhid_txn *txn,
                                        const char *key, const json_t *val);

/* Run fn in a durable write transaction from a non-request context (jobs, CLI init). */
NHID_MUST_CHECK int
nhid_core_write(struct nhid_core *core,
                int (*fn)(struct nhid_core *core, struct nhid_txn *txn, void *arg), void *arg);

/* The engine's private state slot (by engine name; registered order). */
void **nhid_core_state(struct nhid_core *core, const char *engine_name);

#endif /* NHID_ENGINE_H */

/* ---- routing (used by the HTTP pipeline) -------------------------------- */

struct nhid_router;

/* Build the routing table from the engines (patterns are validated). */
NHID_MUST_CHECK int nhid_router_new(const struct nhid_engine *const *engines, size_t n,
                                    struct nhid_router **out);
void nhid_router_free(struct nhid_router *r);

/*
 * Match path (already validated, without "/v1/") and method. On a match
 * returns the route, sets *engine and fills req's params (malloc'd copies,
 * freed by nhid_request_clear_params). If the path matches but not the
 * method, returns NULL with *allowed set to the accepted methods (→ 405);
 * no match at all: NULL with *allowed == 0 (→ 404).
 */
size_t nhid_router_count(const struct nhid_router *r);
/* Pattern and methods of route i (for metrics labels). */
const struct nhid_route *nhid_router_route(const struct nhid_router *r, size_t i);

const struct nhid_route *nhid_router_match(const struct nhid_router *r, const char *path,
                                           enum nhid_method method, struct nhid_request *req,
                                           const struct nhid_engine **engine, unsigned *allowed);
void nhid_request_clear_params(struct nhid_request *req);

/*
 * Validate and normalise a request path (after "/v1/"): percent-decoding
 * (except %2F, which stays encoded so it never becomes a separator; see
 * NHID_ROUTE_ENCODED_SLASH), no control characters, no "." or ".."
 * segments, no empty segments (a single trailing "/" is kept: Vault uses
 * it for LIST). Writes the decoded path to out. On error a message naming
 * the problem.
 */
NHID_MUST_CHECK int nhid_path_normalize(const char *raw, size_t rawlen, char *out, size_t outlen,
                                        char *errbuf, size_t errlen);

/* "GET"/"LIST"/... for a method bit. */
const char *nhid_method_name(enum nhid_method m);
/* Default Cedar action for a method (GET→read, LIST→list, PUT/POST/PATCH→update, DELETE→delete). */
const char *nhid_method_action(enum nhid_method m);

/* Free everything a response owns and reset it. Safe on a zeroed response. */
void nhid_response_clear(struct nhid_response *resp);
/* Free everything the auth/decision own and reset them. */
void nhid_auth_clear(struct nhid_auth *auth);
void nhid_decision_clear(struct nhid_decision *d);
