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

/*
 * Parse a CIDR ("10.0.0.0/8", "2001:db8::/32", or a bare address) and
 * test membership; shared with other auth methods.
 */
struct nhid_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
};
NHID_MUST_CHECK int nhid_cidr_parse(const char *s, struct nhid_cidr *out);
bool nhid_cidr_contains(const struct nhid_cidr *c, const char *addr);
/* true if addr is in any CIDR of the JSON array of strings (an empty array allows all). */
bool nhid_cidr_list_allows(const json_t *cidrs, const char *addr);

#endif /* NHID_AUTH_APPROLE_H */
