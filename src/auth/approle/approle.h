/*
 * auth/approle — Vault-compatible AppRole authentication for machines
 * (auth/approle/role/..., auth/approle/login), bound to nhid identities.
 *
 * Secret IDs are 256-bit random values ("nsi." + base64url); only their
 * keyed hash (HMAC-SHA256, key derived from the barrier for
 * "approle-secret-id") is stored. Storage (barrier-encrypted JSON):
 *   approle/role/<name>              the role (incl. role_id, identity)
 *   approle/role-id/<role_id>        {"role": name}
 *   approle/sid/<role>/<hash>        a secret ID entry
 *   approle/acc/<accessor>           {"role", "hash"}
 *   approle/sid-acc/<role>/<accessor>  index (empty value)
 * Every secret ID is recorded in the identity's credential inventory
 * (type "approle-secret-id", id = accessor) and has an expiry.
 */
#ifndef NHID_AUTH_APPROLE_H
#define NHID_AUTH_APPROLE_H

#include "engine/engine.h"

extern const struct nhid_engine nhid_approle_engine;

/* Default and bounds (seconds). secret_id_ttl 0 means this default: nothing lives forever. */
#define NHID_APPROLE_SECRET_ID_TTL_DEFAULT (30 * 24 * 3600)
#define NHID_APPROLE_CIDRS_MAX 32


#endif /* NHID_AUTH_APPROLE_H */
