/*
 * auth/join — one-time join tokens for bootstrapping devices and nodes.
 *
 *   POST identity/machine/:name/join-token {"ttl": "10m"}  → {"join_token", "accessor", "expires"}
 *   POST auth/join/login {"join_token": "..."}             → a token for the identity
 *
 * A join token is "njt." + base64url(256 random bits); only its keyed hash
 * (HMAC-SHA256, barrier-derived key "join-token") is stored. The login
 * runs in the group-commit write transaction, where the check and the
 * delete happen together, so concurrent attempts serialise and exactly
 * one wins; a later use of a consumed token is refused (403) and audited
 * with "anomaly": true. Storage (barrier-encrypted JSON):
 *   join/tok/<hash>              {name, entity_id, accessor, created, expires}
 *   join/acc/<accessor>          {hash}
 *   join/used/<hash>             {name, used_at, source}  (kept 7 days)
 *   join/exp/<unix,20>/<hash>    expiry index of tokens and tombstones (empty value)
 */
#ifndef NHID_AUTH_JOIN_H
#define NHID_AUTH_JOIN_H

#include "engine/engine.h"

extern const struct nhid_engine nhid_join_engine;

#define NHID_JOIN_TTL_DEFAULT (10 * 60)
#define NHID_JOIN_TTL_MAX (7 * 24 * 3600)
#define NHID_JOIN_TOMBSTONE_S (7 * 24 * 3600)

#endif /* NHID_AUTH_JOIN_H */
