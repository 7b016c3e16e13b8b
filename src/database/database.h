/*
 * database — Vault's database secrets engine for PostgreSQL (libpq):
 * dynamic logins with leases, static roles whose password nhid rotates,
 * and root credential rotation.
 *
 * Endpoints (Vault's paths and wire format, see docs/database.md):
 *   database/config/:name          connection (URL template, root username/password held sealed)
 *   database/rotate-root/:name     new random root password nobody knows
 *   database/roles/:name           creation/revocation/renew SQL, default_ttl, max_ttl
 *   database/creds/:name           a new PostgreSQL login + a lease (lease.h)
 *   database/static-roles/:name    an existing user whose password nhid rotates on a schedule
 *   database/static-creds/:name    its current password
 *   database/rotate-role/:name     rotate a static role now
 *
 * Storage (barrier-encrypted JSON; index values empty):
 *   database/config/<name>, database/role/<name>, database/static-role/<name>,
 *   database/static-due/<unix seconds, 20 digits>/<name>   rotation schedule
 *
 * Threads: every call to PostgreSQL runs outside store transactions —
 * in NHID_ROUTE_ADMIN handlers or on the scheduler thread — through a
 * small per-config connection pool. Passwords are generated from an
 * alphabet without quotes or backslashes, so substituting them into the
 * SQL templates ('{{password}}') needs no escaping; they are wiped after
 * use and never logged.
 */
#ifndef NHID_DATABASE_H
#define NHID_DATABASE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

extern const struct nhid_engine nhid_database_engine;

#define NHID_DB_NAME_MAX 64        /* bytes in a config or role name */
#define NHID_DB_USERNAME_MAX 63    /* PostgreSQL's NAMEDATALEN - 1 */
#define NHID_DB_PASSWORD_LEN 32    /* generated passwords: [A-Za-z0-9], ~190 bits */
#define NHID_DB_STATEMENTS_MAX 32  /* statements in one list */
#define NHID_DB_STATEMENT_MAX 16384 /* bytes in one statement template */
#define NHID_DB_POOL_IDLE_MAX 16   /* idle connections kept per config */
#define NHID_DB_CONNECT_TIMEOUT_S 5

/* Template variables for nhid_database_render(); NULL fields are unknown variables. */
struct nhid_db_vars {
    const char *name;       /* {{name}} and {{username}} */
    const char *password;   /* {{password}} */
    const char *expiration; /* {{expiration}} */
};

/*
 * Substitute {{name}}/{{username}}, {{password}} and {{expiration}} in
 * tmpl. *out malloc'd (free with nhid_free_secret_str: it may hold a
 * password). NHID_ERR_INVALID with a message in err for an unknown or
 * unset variable or an unclosed "{{".
 */
NHID_MUST_CHECK int nhid_database_render(const char *tmpl, const struct nhid_db_vars *v,
                                         char **out, char *err, size_t errlen);

/* A new login name "v-<role>-<20 random>" (≤ 63 bytes of [a-z0-9_-]). */
NHID_MUST_CHECK int nhid_database_username(const char *role, char out[NHID_DB_USERNAME_MAX + 1]);

/* A new random password of NHID_DB_PASSWORD_LEN characters of [A-Za-z0-9]. */
NHID_MUST_CHECK int nhid_database_password(char out[NHID_DB_PASSWORD_LEN + 1]);

/* PostgreSQL timestamp "2026-11-23 10:00:00+00" for unix seconds. */
void nhid_database_expiration(int64_t unix_seconds, char out[32]);

#endif /* NHID_DATABASE_H */
