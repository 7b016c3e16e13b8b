/*
 * cli — `nhid <command>`: the command table, dispatch, help and version.
 * Each command lives in cli_<group>.c; helpers are in cli_internal.h.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"

/* PKI commands (cli_pki.c). */
int cli_cmd_pki_issue(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pki_sign(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pki_renew(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pki_revoke(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pki_list(struct cli_ctx *ctx, int argc, char **argv);

/* KV v2 commands (cli_kv.c). */
int cli_cmd_kv_put(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kv_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kv_patch(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kv_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kv_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kv_undelete(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kv_destroy(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kv_metadata(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_kv_rotate(struct cli_ctx *ctx, int argc, char **argv);

/* Identity commands (cli_identity.c) and machine logins (cli_auth.c). */
int cli_cmd_identity_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_read(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_update(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_suspend(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_resume(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_decommission(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_creds(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_report(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_identity_join_token(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_group_write(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_group_read(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_group_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_group_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_approle_login(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_cert_login(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_join_login(struct cli_ctx *ctx, int argc, char **argv);

/* Lease commands (cli_lease.c). */
int cli_cmd_lease_lookup(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_lease_renew(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_lease_revoke(struct cli_ctx *ctx, int argc, char **argv);

static const struct cli_command commands[] = {
    {"status", "Common commands", "Print the seal status of the server",
     "Usage: nhid status [options]\n\n"
     "  Prints whether the server is initialized and sealed, the unseal progress\n"
     "  and the server version. Exit code: 0 unsealed, 2 sealed, 1 error.\n\n"
     "Example:\n  $ nhid status",
     cli_cmd_status},
    {"read", "Common commands", "Read data from a path",
     "Usage: nhid read [options] PATH\n\n"
     "  GET /v1/PATH and print its data as a table (-format=json: the whole response).\n\n"
     "Example:\n  $ nhid read sys/mounts",
     cli_cmd_read},
    {"write", "Common commands", "Write data to a path",
     "Usage: nhid write [options] PATH [key=value ...] [-]\n\n"
     "  PUT /v1/PATH with a JSON body built from the arguments:\n"
     "    key=value   a string (a key given twice becomes an array)\n"
     "    key=@FILE   the contents of FILE\n"
     "    key=-       the contents of stdin\n"
     "    -           a JSON object read from stdin\n\n"
     "Example:\n  $ nhid write sys/audit/file type=file options=@opts.json\n"
     "  $ echo '{\"policies\":[\"web\"]}' | nhid write auth/token/create -",
     cli_cmd_write},
    {"delete", "Common commands", "Delete data at a path",
     "Usage: nhid delete [options] PATH\n\n  DELETE /v1/PATH.\n\n"
     "Example:\n  $ nhid delete sys/audit/file",
     cli_cmd_delete},
    {"list", "Common commands", "List the keys under a path",
     "Usage: nhid list [options] PATH\n\n"
     "  LIST /v1/PATH and print the keys (-format=json: the keys array).\n\n"
     "Example:\n  $ nhid list auth/token/accessors",
     cli_cmd_list},
    {"patch", "Common commands", "Update some fields at a path",
     "Usage: nhid patch [options] PATH key=value ... [-]\n\n"
     "  PATCH /v1/PATH with a JSON merge patch (RFC 7396) built like `nhid write`.\n\n"
     "Example:\n  $ nhid patch identity/entity/name/web owner=team-a",
     cli_cmd_patch},
    {"login", "Common commands", "Save a token for later commands",
     "Usage: nhid login [options] [TOKEN]\n\n"
     "  Checks TOKEN with auth/token/lookup-self and saves it to ~/" CLI_TOKEN_FILE
     " (mode 0600),\n"
     "  which later commands use when NHID_TOKEN is not set. Without TOKEN it is\n"
     "  read from the terminal without echo (or one line from stdin).\n\n"
     "Example:\n  $ nhid login",
     cli_cmd_login},
    {"operator init", "Operator commands", "Initialize a new server",
     "Usage: nhid operator init [options]\n\n"
     "  Generates the root key, splits it into key shares (Shamir) and prints the\n"
     "  unseal keys and the initial root token. Run once per cluster.\n\n"
     "Example:\n  $ nhid operator init -key-shares 5 -key-threshold 3",
     cli_cmd_operator_init},
    {"operator unseal", "Operator commands", "Provide an unseal key share",
     "Usage: nhid operator unseal [options] [KEY]\n\n"
     "  Sends one unseal key share. Without KEY it is read from the terminal\n"
     "  without echo (or one line from stdin when stdin is not a terminal), which\n"
     "  keeps it out of the shell history. -reset discards the shares given so far.\n\n"
     "Example:\n  $ nhid operator unseal",
     cli_cmd_operator_unseal},
    {"operator seal", "Operator commands", "Seal the server",
     "Usage: nhid operator seal [options]\n\n"
     "  Seals the server: it forgets the root key and answers 503 until unsealed.\n\n"
     "Example:\n  $ nhid operator seal",
     cli_cmd_operator_seal},
    {"operator rotate", "Operator commands", "Rotate the encryption key",
     "Usage: nhid operator rotate [options]\n\n"
     "  Adds a new encryption key to the keyring; new data is written with it.\n\n"
     "Example:\n  $ nhid operator rotate",
     cli_cmd_operator_rotate},
    {"operator key-status", "Operator commands", "Print the encryption key status",
     "Usage: nhid operator key-status [options]\n\n"
     "  Prints the active key term and when it was installed.\n\n"
     "Example:\n  $ nhid operator key-status",
     cli_cmd_operator_key_status},
    {"token create", "Token commands", "Create a token",
     "Usage: nhid token create [options]\n\n"
     "  Creates a child of the calling token (or an orphan with -orphan).\n\n"
     "Example:\n  $ nhid token create -policy web -policy db -ttl 15m -metadata team=a",
     cli_cmd_token_create},
    {"token lookup", "Token commands", "Print a token's properties",
     "Usage: nhid token lookup [options] [TOKEN]\n\n"
     "  Without TOKEN looks up the calling token; -accessor looks up by accessor.\n\n"
     "Example:\n  $ nhid token lookup\n  $ nhid token lookup -accessor 8609694a-...",
     cli_cmd_token_lookup},
    {"token renew", "Token commands", "Renew a token",
     "Usage: nhid token renew [options] [TOKEN]\n\n"
     "  Renews TOKEN (without it, the calling token) by -increment or its TTL.\n\n"
     "Example:\n  $ nhid token renew -increment 30m",
     cli_cmd_token_renew},
    {"token revoke", "Token commands", "Revoke a token and its children",
     "Usage: nhid token revoke [options] [TOKEN]\n\n"
     "  Revokes TOKEN, the calling token (-self) or the token with an accessor\n"
     "  (-accessor A, then the argument is the accessor).\n\n"
     "Example:\n  $ nhid token revoke -self\n  $ nhid token revoke -accessor 8609694a-...",
     cli_cmd_token_revoke},
    {"lease lookup", "Lease commands", "Print a lease's properties",
     "Usage: nhid lease lookup LEASE_ID\n\n"
     "  Looks up a lease of a dynamic credential (PUT sys/leases/lookup).\n\n"
     "Example:\n  $ nhid lease lookup database/creds/readonly/AbC...",
     cli_cmd_lease_lookup},
    {"lease renew", "Lease commands", "Renew a lease",
     "Usage: nhid lease renew [options] LEASE_ID\n\n"
     "  Extends a lease to now + -increment (default: its TTL), capped by its max TTL.\n\n"
     "Example:\n  $ nhid lease renew -increment 30m database/creds/readonly/AbC...",
     cli_cmd_lease_renew},
    {"lease revoke", "Lease commands", "Revoke a lease (and its credential)",
     "Usage: nhid lease revoke [options] LEASE_ID|PREFIX\n\n"
     "  Revokes the lease's credential now (e.g. drops the PostgreSQL login);\n"
     "  -prefix revokes every lease under PREFIX.\n\n"
     "Example:\n  $ nhid lease revoke -prefix database/creds/readonly",
     cli_cmd_lease_revoke},
    {"audit enable", "Audit commands", "Enable an audit device",
     "Usage: nhid audit enable [options] TYPE [key=value ...]\n\n"
     "  Enables an audit device of TYPE (\"file\") at -path (default: TYPE).\n"
     "  key=value arguments are the device options (file: file_path=PATH).\n\n"
     "Example:\n  $ nhid audit enable file file_path=/var/log/nhid/audit.log",
     cli_cmd_audit_enable},
    {"audit disable", "Audit commands", "Disable an audit device",
     "Usage: nhid audit disable [options] NAME\n\n"
     "Example:\n  $ nhid audit disable file",
     cli_cmd_audit_disable},
    {"audit list", "Audit commands", "List the enabled audit devices",
     "Usage: nhid audit list [options]\n\n"
     "Example:\n  $ nhid audit list -detailed",
     cli_cmd_audit_list},
    {"audit verify", "Audit commands", "Verify the hash chain of audit log files (offline)",
     "Usage: nhid audit verify [-format=json] FILE...\n\n"
     "  Checks every record's hash chain and sequence number and names the first\n"
     "  edited, missing, inserted or reordered record. Needs no server.\n\n"
     "Example:\n  $ nhid audit verify /var/log/nhid/audit.log",
     cli_cmd_audit_verify},
    {"kv put", "KV commands", "Write a new version of a KV v2 secret",
     "Usage: nhid kv put [options] MOUNT/PATH key=value ... [-]\n\n"
     "  POST /v1/MOUNT/data/PATH with the data built like `nhid write`.\n\n"
     "Example:\n  $ nhid kv put secret/app/db user=app password=@pw.txt\n"
     "  $ nhid kv put -cas=3 secret/app/db password=new",
     cli_cmd_kv_put},
    {"kv get", "KV commands", "Read a KV v2 secret",
     "Usage: nhid kv get [options] MOUNT/PATH\n\n"
     "  GET /v1/MOUNT/data/PATH and print its metadata and data.\n\n"
     "Example:\n  $ nhid kv get -version=2 secret/app/db\n"
     "  $ nhid kv get -field=password secret/app/db",
     cli_cmd_kv_get},
    {"kv patch", "KV commands", "Update some fields of a KV v2 secret",
     "Usage: nhid kv patch [options] MOUNT/PATH key=value ...\n\n"
     "  PATCH /v1/MOUNT/data/PATH with a JSON merge patch of the data.\n\n"
     "Example:\n  $ nhid kv patch secret/app/db password=rotated",
     cli_cmd_kv_patch},
    {"kv list", "KV commands", "List KV v2 secrets under a folder",
     "Usage: nhid kv list [options] MOUNT/FOLDER\n\n"
     "  LIST /v1/MOUNT/metadata/FOLDER/ (folders end with \"/\").\n\n"
     "Example:\n  $ nhid kv list secret/app",
     cli_cmd_kv_list},
    {"kv delete", "KV commands", "Soft-delete versions of a KV v2 secret",
     "Usage: nhid kv delete [options] MOUNT/PATH\n\n"
     "  Soft-deletes the latest version, or -versions=N,M (undelete restores them).\n\n"
     "Example:\n  $ nhid kv delete -versions=1,2 secret/app/db",
     cli_cmd_kv_delete},
    {"kv undelete", "KV commands", "Restore soft-deleted versions",
     "Usage: nhid kv undelete -versions=N,M [options] MOUNT/PATH\n\n"
     "Example:\n  $ nhid kv undelete -versions=3 secret/app/db",
     cli_cmd_kv_undelete},
    {"kv destroy", "KV commands", "Permanently destroy versions",
     "Usage: nhid kv destroy -versions=N,M [options] MOUNT/PATH\n\n"
     "Example:\n  $ nhid kv destroy -versions=1 secret/app/db",
     cli_cmd_kv_destroy},
    {"kv metadata", "KV commands", "Read, write or delete a secret's metadata",
     "Usage: nhid kv metadata get|put|delete [options] MOUNT/PATH\n\n"
     "  get: versions and settings; put: -max-versions, -cas-required,\n"
     "  -delete-version-after, -custom-metadata=K=V; delete: the secret and every version.\n\n"
     "Example:\n  $ nhid kv metadata put -max-versions=5 -custom-metadata=owner=team-a secret/app/db",
     cli_cmd_kv_metadata},
    {"kv rotate", "KV commands", "Rotate a secret now under its rotation policy",
     "Usage: nhid kv rotate [options] MOUNT/PATH\n\n"
     "  POST /v1/MOUNT/rotate/PATH: a new generated version now (policy at MOUNT/rotation/PATH).\n\n"
     "Example:\n  $ nhid kv rotate secret/app/api-key",
     cli_cmd_kv_rotate},
    {"metrics", "Other commands", "Print the server's metrics",
     "Usage: nhid metrics [options]\n\n"
     "  GET /v1/sys/metrics?format=prometheus and print the text (-format=json:\n"
     "  the JSON form).\n\n"
     "Example:\n  $ nhid metrics | grep nhid_requests",
     cli_cmd_metrics},
    {"version", "Other commands", "Print the version",
     "Usage: nhid version [-format=json]\n\nExample:\n  $ nhid version", cli_cmd_version},
    {"pki issue", "PKI commands", "Issue a certificate and key (written to -out DIR)",
     "Usage: nhid pki issue [options] ROLE -out DIR\n\n"
     "  POST /v1/pki/issue/ROLE: nhid generates the key. Writes DIR/cert.pem,\n"
     "  DIR/key.pem (mode 0600) and DIR/chain.pem.\n\n"
     "Example:\n  $ nhid pki issue web -spiffe-id spiffe://nhid.local/workload/web-1 -out ./tls",
     cli_cmd_pki_issue},
    {"pki sign", "PKI commands", "Sign a certificate request",
     "Usage: nhid pki sign [options] ROLE -csr FILE\n\n"
     "  POST /v1/pki/sign/ROLE with the CSR; prints the certificate (or writes -out DIR).\n\n"
     "Example:\n  $ nhid pki sign web -csr web.csr > web.pem",
     cli_cmd_pki_sign},
    {"pki renew", "PKI commands", "Renew a certificate with a new key (mTLS, no token)",
     "Usage: nhid pki renew [options] -cert FILE -key FILE\n\n"
     "  Generates a new key, authenticates with the current certificate and\n"
     "  replaces -cert/-key (or writes -out DIR).\n\n"
     "Example:\n  $ nhid pki renew -cert tls/cert.pem -key tls/key.pem",
     cli_cmd_pki_renew},
    {"pki revoke", "PKI commands", "Revoke a certificate",
     "Usage: nhid pki revoke [options] SERIAL\n\n"
     "  The revocation is in the CRL and OCSP within a second.\n\n"
     "Example:\n  $ nhid pki revoke 3a:bc:12:... -reason key_compromise",
     cli_cmd_pki_revoke},
    {"pki list", "PKI commands", "List issued certificates",
     "Usage: nhid pki list [options]\n\n"
     "  Lists certificates, optionally those expiring soon or of one identity.\n\n"
     "Example:\n  $ nhid pki list -expiring=24h -identity web-1",
     cli_cmd_pki_list},
    {"identity create", "Identity commands", "Register a machine identity",
     "Usage: nhid identity create [options] NAME -kind=KIND -owner=TEAM\n\n"
     "  POST /v1/identity/machine/NAME. The identity starts pending and becomes\n"
     "  active at its first login. The SPIFFE ID defaults to\n"
     "  spiffe://<trust-domain>/<kind>/<name>.\n\n"
     "Example:\n  $ nhid identity create web-1 -kind=workload -owner=payments -label env=prod",
     cli_cmd_identity_create},
    {"identity read", "Identity commands", "Print an identity, its state and history",
     "Usage: nhid identity read [options] NAME\n\nExample:\n  $ nhid identity read web-1",
     cli_cmd_identity_read},
    {"identity update", "Identity commands", "Change an identity's owner, labels or description",
     "Usage: nhid identity update [options] NAME\n\n"
     "Example:\n  $ nhid identity update web-1 -owner=platform -label env=staging",
     cli_cmd_identity_update},
    {"identity list", "Identity commands", "List identities (filtered, paged)",
     "Usage: nhid identity list [options]\n\n"
     "  Filters combine (AND). Pages of -limit names; continue with -after.\n\n"
     "Example:\n  $ nhid identity list -kind=device -state=active -label site=ber\n"
     "  $ nhid identity list -last-seen-before=720h",
     cli_cmd_identity_list},
    {"identity delete", "Identity commands", "Delete a decommissioned identity",
     "Usage: nhid identity delete [options] NAME\n\nExample:\n  $ nhid identity delete old-1",
     cli_cmd_identity_delete},
    {"identity suspend", "Identity commands", "Suspend an identity (its credentials stop at once)",
     "Usage: nhid identity suspend [options] NAME -reason=TEXT\n\n"
     "Example:\n  $ nhid identity suspend web-1 -reason=\"key leaked\"",
     cli_cmd_identity_suspend},
    {"identity resume", "Identity commands", "Resume a suspended identity",
     "Usage: nhid identity resume [options] NAME [-reason=TEXT]\n\n"
     "Example:\n  $ nhid identity resume web-1 -reason=\"host rebuilt\"",
     cli_cmd_identity_resume},
    {"identity decommission", "Identity commands",
     "Decommission an identity, revoking every credential (terminal)",
     "Usage: nhid identity decommission [options] NAME [-reason=TEXT]\n\n"
     "  Revokes every token, secret ID, join token (and later certificate) of\n"
     "  the identity in one transaction.\n\n"
     "Example:\n  $ nhid identity decommission web-1 -reason=retired",
     cli_cmd_identity_decommission},
    {"identity creds", "Identity commands", "List an identity's credentials",
     "Usage: nhid identity creds [options] NAME\n\nExample:\n  $ nhid identity creds web-1",
     cli_cmd_identity_creds},
    {"identity report", "Identity commands", "Hygiene report (orphans, stale, expiring, ...)",
     "Usage: nhid identity report [options]\n\n"
     "  With -fail-on the exit code is 2 when a listed section is not empty (CI).\n\n"
     "Example:\n  $ nhid identity report -stale-days=30 -fail-on=orphan,stale,expiring",
     cli_cmd_identity_report},
    {"identity join-token", "Identity commands", "Issue a one-time join token",
     "Usage: nhid identity join-token [options] NAME [-ttl=10m]\n\n"
     "  The device logs in once with `nhid join login TOKEN`.\n\n"
     "Example:\n  $ nhid identity join-token edge-7 -ttl=10m",
     cli_cmd_identity_join_token},
    {"group write", "Identity commands", "Create or update an identity group",
     "Usage: nhid group write [options] NAME [-member ID ...] [-group G ...]\n\n"
     "Example:\n  $ nhid group write fleet -member edge-1 -member edge-2",
     cli_cmd_group_write},
    {"group read", "Identity commands", "Print a group",
     "Usage: nhid group read [options] NAME", cli_cmd_group_read},
    {"group list", "Identity commands", "List groups", "Usage: nhid group list [options]",
     cli_cmd_group_list},
    {"group delete", "Identity commands", "Delete a group",
     "Usage: nhid group delete [options] NAME", cli_cmd_group_delete},
    {"approle login", "Auth commands", "Log in with an AppRole role ID and secret ID",
     "Usage: nhid approle login [options] -role-id=ID -secret-id=SECRET|-\n\n"
     "Example:\n  $ nhid approle login -role-id=$ROLE_ID -secret-id=- < secret",
     cli_cmd_approle_login},
    {"cert login", "Auth commands", "Log in with a client certificate (mTLS)",
     "Usage: nhid cert login [options] -client-cert FILE -client-key FILE [-name ROLE]\n\n"
     "Example:\n  $ nhid cert login -client-cert svid.pem -client-key svid-key.pem",
     cli_cmd_cert_login},
    {"join login", "Auth commands", "Log in once with a join token",
     "Usage: nhid join login [options] TOKEN|-\n\nExample:\n  $ nhid join login njt.AbC...",
     cli_cmd_join_login},
};

/* Groups in the order `nhid -h` prints them. */
static const char *const groups[] = {"Common commands", "Operator commands", "Token commands",
                                     "Audit commands", "KV commands", "Identity commands",
                                     "Auth commands", "Other commands"};

static void print_main_usage(FILE *f)
{
    fprintf(f, "Usage: nhid <command> [args] [options]\n");
    for (size_t g = 0; g < NHID_ARRAY_LEN(groups); g++) {
        fprintf(f, "\n%s:\n", groups[g]);
        for (size_t i = 0; i < NHID_ARRAY_LEN(commands); i++)
            if (strcmp(commands[i].group, groups[g]) == 0)
                fprintf(f, "    %-22s %s\n", commands[i].name, commands[i].synopsis);
    }
    fprintf(f,
            "\nServer and policy:\n"
            "    %-22s %s\n    %-22s %s\n",
            "server", "Start a server (nhid server -h)", "policy",
            "Check, evaluate and test Cedar policies (nhid policy -h)");
    fprintf(f, "\nEnvironment: NHID_ADDR, NHID_TOKEN, NHID_CACERT, NHID_CLIENT_CERT,\n"
               "NHID_CLIENT_KEY, NHID_SKIP_VERIFY, NHID_FORMAT, NHID_CLIENT_TIMEOUT.\n"
               "Run `nhid <command> -h` (or `nhid help <command>`) for a command's options.\n");
}

/* Print the subcommands of a group word such as "operator". */
static void print_group_usage(FILE *f, const char *word)
{
    size_t wl = strlen(word);
    fprintf(f, "Usage: nhid %s <subcommand> [args] [options]\n\nSubcommands:\n", word);
    for (size_t i = 0; i < NHID_ARRAY_LEN(commands); i++)
        if (strncmp(commands[i].name, word, wl) == 0 && commands[i].name[wl] == ' ')
            fprintf(f, "    %-14s %s\n", commands[i].name + wl + 1, commands[i].synopsis);
}

static bool is_group_word(const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i < NHID_ARRAY_LEN(commands); i++)
        if (strncmp(commands[i].name, word, wl) == 0 && commands[i].name[wl] == ' ')
            return true;
    return false;
}

/*
 * Find the command named by the leading words of argv; *nwords is how many
 * words it took (1 or 2). NULL if none.
 */
static const struct cli_command *find_command(int argc, char **argv, int *nwords)
{
    for (size_t i = 0; i < NHID_ARRAY_LEN(commands); i++) {
        const char *name = commands[i].name;
        const char *sp = strchr(name, ' ');
        if (sp == NULL) {
            if (argc >= 1 && strcmp(argv[0], name) == 0) {
                *nwords = 1;
                return &commands[i];
            }
        } else if (argc >= 2 && strncmp(argv[0], name, (size_t)(sp - name)) == 0 &&
                   argv[0][sp - name] == '\0' && strcmp(argv[1], sp + 1) == 0) {
            *nwords = 2;
            return &commands[i];
        }
    }
    return NULL;
}

int cli_ctx_init(struct cli_ctx *ctx, FILE *out, FILE *err, FILE *in)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->out = out;
    ctx->err = err;
    ctx->in = in;
    ctx->opts.addr = getenv("NHID_ADDR");
    ctx->opts.ca_cert = getenv("NHID_CACERT");
    ctx->opts.client_cert = getenv("NHID_CLIENT_CERT");
    ctx->opts.client_key = getenv("NHID_CLIENT_KEY");
    const char *v = getenv("NHID_SKIP_VERIFY");
    if (v && *v && cli_parse_bool(v, &ctx->opts.skip_verify) < 0) {
        fprintf(err, "Error: NHID_SKIP_VERIFY=\"%.32s\" is not true or false\n", v);
        return NHID_ERR_INVALID;
    }
    v = getenv("NHID_FORMAT");
    if (v && *v) {
        if (strcmp(v, "json") == 0) {
            ctx->opts.format = CLI_FORMAT_JSON;
        } else if (strcmp(v, "table") != 0) {
            fprintf(err, "Error: NHID_FORMAT=\"%.32s\" is not a format (use table or json)\n", v);
            return NHID_ERR_INVALID;
        }
    }
    v = getenv("NHID_CLIENT_TIMEOUT");
    if (v && *v) {
        int64_t secs;
        char msg[160];
        if (nhid_duration_parse(v, &secs, msg, sizeof(msg)) < 0 || secs <= 0 || secs > 86400) {
            fprintf(err, "Error: NHID_CLIENT_TIMEOUT: %s\n",
                    secs <= 0 || secs > 86400 ? "must be between 1s and 24h" : msg);
            return NHID_ERR_INVALID;
        }
        ctx->opts.timeout_s = (long)secs;
    }
    return NHID_OK;
}

void cli_ctx_cleanup(struct cli_ctx *ctx)
{
    cli_client_free(ctx->client);
    ctx->client = NULL;
    free(ctx->args);
    ctx->args = NULL;
    ctx->nargs = 0;
}

int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    if (ctx->opts.format == CLI_FORMAT_JSON)
        fprintf(ctx->out, "{\n  \"version\": \"%s\"\n}\n", NHID_VERSION);
    else
        fprintf(ctx->out, "nhid v%s\n", NHID_VERSION);
    return CLI_EXIT_OK;
}

/* `nhid help [CMD...]` */
static int run_help(struct cli_ctx *ctx, int argc, char **argv)
{
    int nwords = 0;
    if (argc == 0) {
        print_main_usage(ctx->out);
        return CLI_EXIT_OK;
    }
    const struct cli_command *cmd = find_command(argc, argv, &nwords);
    if (cmd == NULL && argc == 1 && is_group_word(argv[0])) {
        print_group_usage(ctx->out, argv[0]);
        return CLI_EXIT_OK;
    }
    if (cmd == NULL) {
        fprintf(ctx->err, "Error: unknown command \"%.64s\" (see nhid -h)\n", argv[0]);
        return CLI_EXIT_USAGE;
    }
    /* The command prints its own usage, with its flags, when given -h. */
    char *hargv[] = {(char *)"-h", NULL};
    ctx->cmd = cmd;
    return cmd->run(ctx, 1, hargv);
}

int nhid_cli_main(int argc, char **argv)
{
    struct cli_ctx ctx;
    int rc;
    if (cli_ctx_init(&ctx, stdout, stderr, stdin) < 0)
        return CLI_EXIT_USAGE;
    argc--;
    argv++;
    if (argc == 0) {
        print_main_usage(stderr);
        rc = CLI_EXIT_USAGE;
    } else if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "-help") == 0 ||
               strcmp(argv[0], "--help") == 0) {
        print_main_usage(stdout);
        rc = CLI_EXIT_OK;
    } else if (strcmp(argv[0], "help") == 0) {
        rc = run_help(&ctx, argc - 1, argv + 1);
    } else if (strcmp(argv[0], "-v") == 0 || strcmp(argv[0], "-version") == 0 ||
               strcmp(argv[0], "--version") == 0) {
        rc = cli_cmd_version(&ctx, 0, NULL);
    } else {
        int nwords = 0;
        const struct cli_command *cmd = find_command(argc, argv, &nwords);
        if (cmd) {
            ctx.cmd = cmd;
            rc = cmd->run(&ctx, argc - nwords, argv + nwords);
        } else if (is_group_word(argv[0])) {
            /* `nhid operator` or `nhid operator -h` or `nhid operator bogus` */
            bool help = argc == 1 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "-help") == 0 ||
                        strcmp(argv[1], "--help") == 0;
            if (!help)
                fprintf(stderr, "Error: unknown command \"%s %.64s\"\n\n", argv[0], argv[1]);
            print_group_usage(help && argc > 1 ? stdout : stderr, argv[0]);
            rc = help && argc > 1 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        } else {
            fprintf(stderr, "Error: unknown command \"%.64s\" (see nhid -h)\n", argv[0]);
            rc = CLI_EXIT_USAGE;
        }
    }
    fflush(stdout);
    cli_ctx_cleanup(&ctx);
    return rc;
}
