/*
 * lease — leases of dynamic credentials, their expiry index and the
 * sys/leases endpoints (Vault's wire format).
 *
 * Every dynamic credential an engine hands out (a PostgreSQL login, ...)
 * has a lease: an id ("database/creds/<role>/<random>"), a TTL, a max TTL,
 * whether it is renewable, and engine data needed to revoke it. When the
 * lease expires, is revoked, or the identity it was issued to is
 * decommissioned, the lease module calls the engine's revoke hook, which
 * performs the external revocation (DROP ROLE ...), then forgets it.
 *
 * Storage (values barrier-encrypted JSON; index values empty):
 *   lease/id/<lease_id>                          the lease record
 *   lease/expiry/<unix seconds, 20 digits>/<lease_id>   expiry index
 *
 * Expiry is driven by the ordered index only: the job walks it from the
 * start up to now in bounded batches. Nothing about leases is loaded at
 * start-up or unseal, so a million live leases cost nothing until they
 * are due (bench/lease_start_bench.c).
 *
 * Threads: revoke and renew hooks run outside every store transaction, on
 * the scheduler thread (expiry) or on an event-loop thread inside an
 * NHID_ROUTE_ADMIN handler (sys/leases/revoke, renew), so they may block
 * on the network for a bounded time. A failed revocation keeps the lease
 * and retries it with exponential back-off (at most every 5 minutes).
 */
#ifndef NHID_LEASE_H
#define NHID_LEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"

extern const struct nhid_engine nhid_lease_engine;

#define NHID_LEASE_ID_MAX 256       /* bytes in a lease id, with the NUL */
#define NHID_LEASE_TYPES_MAX 16     /* registered lease types */
#define NHID_LEASE_BATCH 256        /* index entries one expiry batch takes */
#define NHID_LEASE_RETRY_MAX_S 300  /* longest back-off between revocation attempts */

/*
 * A lease type's external revocation: undo the credential described by
 * `lease` (its "data" object holds what the engine stored at creation).
 * Return NHID_OK also when the credential is already gone; on failure a
 * message for the lease's last_error (never a secret) in err.
 */
typedef int (*nhid_lease_revoke_fn)(struct nhid_core *core, const json_t *lease, char *err,
                                    size_t errlen);
/* Optional: extend the external credential to new_expire (e.g. VALID UNTIL). */
typedef int (*nhid_lease_renew_fn)(struct nhid_core *core, const json_t *lease,
                                   int64_t new_expire, char *err, size_t errlen);

struct nhid_lease_type {
    const char *prefix;  /* lease ids starting with this, e.g. "database/creds/" */
    nhid_lease_revoke_fn revoke;
    nhid_lease_renew_fn renew; /* NULL: renewal only moves the expiry */
};

/*
 * Register (or replace) a lease type; the struct must outlive the process
 * (a static). Call from an engine's on_unseal. NHID_ERR_TOO_LARGE when
 * NHID_LEASE_TYPES_MAX types exist.
 */
NHID_MUST_CHECK int nhid_lease_register_type(const struct nhid_lease_type *t);

/*
 * A new lease id: prefix (must end with '/') + 24 random characters.
 * NHID_ERR_INVALID for a prefix that is not a valid lease id prefix.
 */
NHID_MUST_CHECK int nhid_lease_id_new(const char *prefix, char out[NHID_LEASE_ID_MAX]);

/* Validate a lease id or prefix from a request ([A-Za-z0-9._-] segments joined by '/'). */
bool nhid_lease_id_valid(const char *id, bool prefix);

struct nhid_lease_params {
    const char *id;        /* from nhid_lease_id_new() */
    const char *engine;    /* "database" */
    int64_t ttl;           /* seconds, > 0 */
    int64_t max_ttl;       /* seconds from issue; 0 = ttl (not extendable beyond it) */
    bool renewable;
    const json_t *data;    /* engine data for revocation (borrowed; stored encrypted) */
    const char *entity_id; /* caller's identity (may be NULL/""): recorded as a credential */
    const char *identity;
    const char *cred_type; /* identity credential type, e.g. "db-login" (NULL: not recorded) */
};

/*
 * Create the lease inside writable txn: record, expiry index and (with an
 * entity_id) the identity's credential record. *out (optional) gets a new
 * reference to the stored record.
 */
NHID_MUST_CHECK int nhid_lease_create(struct nhid_core *core, struct nhid_txn *txn,
                                      const struct nhid_lease_params *p, json_t **out);

/* Load a lease record. NHID_ERR_NOT_FOUND if absent. */
NHID_MUST_CHECK int nhid_lease_get(struct nhid_core *core, struct nhid_txn *txn, const char *id,
                                   json_t **out);

/*
 * Revoke now: call the type's revoke hook (blocking, outside any txn) and
 * delete the lease durably. NHID_OK if the lease does not exist. On a
 * hook failure returns its error (message in err) and keeps the lease,
 * scheduled for a retry. Must not be called inside a store transaction.
 */
NHID_MUST_CHECK int nhid_lease_revoke(struct nhid_core *core, const char *id, char *err,
                                      size_t errlen);

/*
 * Inside writable txn: make the lease due now (the expiry job revokes it
 * within a second) and refuse further renewals. Used by identity
 * decommissioning, which runs inside a transaction and so must not call
 * out to a database itself. NHID_OK if the lease is gone already.
 */
NHID_MUST_CHECK int nhid_lease_schedule_revoke(struct nhid_core *core, struct nhid_txn *txn,
                                               const char *id);

/*
 * The identity credential id of a lease ('/' → ':' since credential ids
 * are one path segment) and back. NHID_ERR_TOO_LARGE if it does not fit.
 */
NHID_MUST_CHECK int nhid_lease_cred_id(const char *lease_id, char *out, size_t outlen);
NHID_MUST_CHECK int nhid_lease_from_cred_id(const char *cred_id, char out[NHID_LEASE_ID_MAX]);

/*
 * An identity credential-registry revocation hook (nhid_cred_revoke_fn)
 * for lease-backed credentials: schedules the lease's revocation (see
 * nhid_lease_schedule_revoke). Engines register their credential type
 * with it: nhid_identity_cred_register_type("db-login", nhid_lease_cred_revoke_hook).
 */
NHID_MUST_CHECK int nhid_lease_cred_revoke_hook(struct nhid_core *core, struct nhid_txn *txn,
                                                const char *entity_id, const char *cred_id);

/*
 * One run of the expiry walk (what the job does every second): revoke
 * due leases in batches of NHID_LEASE_BATCH until none is due, max_batches
 * batches ran, or about half a second passed. *revoked (optional) gets
 * the count. Exposed for tests and benchmarks.
 */
NHID_MUST_CHECK int nhid_lease_expire_due(struct nhid_core *core, size_t max_batches,
                                          size_t *revoked);

#endif /* NHID_LEASE_H */
