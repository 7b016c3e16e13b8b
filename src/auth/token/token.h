/*
 * auth/token — Vault-compatible tokens (the auth/token/... endpoints).
 *
 * A token is "nhs." + base64url(256 random bits). Only its keyed hash
 * (HMAC-SHA256 with a barrier-derived key) is stored, so neither the
 * database nor a backup reveals usable tokens. Storage keys (values are
 * barrier-encrypted JSON):
 *   token/id/<hash>                 the token entry
 *   token/accessor/<accessor>       {"hash": "<hash>"}
 *   token/parent/<parent>/<child>   child link, for revoking a tree
 *   token/expiry/<unix, 20 digits>/<hash>   ordered expiry index (sweeper)
 */
#ifndef NHID_AUTH_TOKEN_H
#define NHID_AUTH_TOKEN_H

#include <jansson.h>

#include "crypto/crypto.h"
#include "engine/engine.h"

extern const struct nhid_engine nhid_token_engine;

/* Parameters of a token to create (auth methods use this too). */
struct nhid_token_params {
    json_t *policies;        /* array of strings (borrowed) */
    json_t *meta;            /* object of strings (borrowed), may be NULL */
    int64_t ttl;             /* seconds; 0 = default (15 min) */
    int64_t explicit_max_ttl;/* seconds; 0 = none */
    int64_t period;          /* seconds; 0 = none */
    int64_t num_uses;        /* 0 = unlimited */
    bool renewable;
    bool no_expiry;          /* root token only */
    const char *parent_hash; /* NULL = orphan */
    const char *display_name;
    const char *path;        /* "auth/token/create", "auth/approle/login", ... */
    const char *entity_id;   /* identity binding, may be NULL */
    const char *identity;    /* identity name, may be NULL */
    const char *auth_method; /* "token", "approle", ... */
    json_t *bound_cidrs;     /* array of CIDRs (borrowed), may be NULL: usable only from these */
};

/*
 * Create a token inside a writable txn. token_out gets the secret (wipe
 * it after use); *auth_out (optional) gets Vault's "auth" response block.
 */
NHID_MUST_CHECK int nhid_token_create(struct nhid_core *core, struct nhid_txn *txn,
                                      const struct nhid_token_params *p,
                                      char token_out[NHID_TOKEN_MAX], json_t **auth_out);

/* Create the initial root token (policies ["root"], no expiry). */
NHID_MUST_CHECK int nhid_token_create_root(struct nhid_core *core, struct nhid_txn *txn,
                                           char token_out[NHID_TOKEN_MAX]);

/* Revoke the token with this hash and all its descendants. */
NHID_MUST_CHECK int nhid_token_revoke_hash(struct nhid_core *core, struct nhid_txn *txn,
                                           const char *hash, unsigned *revoked);

/* Revoke every token bound to an identity (entity_id); for lifecycle hooks. */
NHID_MUST_CHECK int nhid_token_revoke_by_accessor(struct nhid_core *core, struct nhid_txn *txn,
                                                  const char *accessor, unsigned *revoked);

/* Number of live tokens (O(tokens) index count; for metrics). */
NHID_MUST_CHECK int nhid_token_count(struct nhid_core *core, struct nhid_txn *txn,
                                     uint64_t *count);

#endif /* NHID_AUTH_TOKEN_H */
