/* cli_lease — `nhid lease lookup|renew|revoke` (Vault's `vault lease ...`), over sys/leases. */
#include <stdio.h>

#include "cli/cli_internal.h"

int cli_cmd_lease_lookup(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_lease_renew(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_lease_revoke(struct cli_ctx *ctx, int argc, char **argv);

/* nhid lease lookup LEASE_ID */
int cli_cmd_lease_lookup(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_flag flags[] = {CLI_FLAG_END};
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *body = json_pack("{s:s}", "lease_id", ctx->args[0]);
    json_t *resp = NULL;
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory (or the lease id is not UTF-8 text)");
    rc = cli_call(ctx, "PUT", "sys/leases/lookup", body, &resp);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    rc = cli_print_secret(ctx, resp);
    cli_json_free(resp);
    return rc;
}

/* nhid lease renew [-increment D] LEASE_ID */
int cli_cmd_lease_renew(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_duration inc = {NULL, 0};
    struct cli_flag flags[] = {
        CLI_FLAG("increment", CLI_FLAG_DURATION, &inc, "D",
                 "new TTL counted from now (default: the lease's TTL)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *body = json_pack("{s:s}", "lease_id", ctx->args[0]);
    json_t *resp = NULL;
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory (or the lease id is not UTF-8 text)");
    if (inc.text)
        json_object_set_new(body, "increment", json_integer(inc.seconds));
    rc = cli_call(ctx, "PUT", "sys/leases/renew", body, &resp);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    rc = cli_print_secret(ctx, resp);
    cli_json_free(resp);
    return rc;
}

/* nhid lease revoke [-prefix] [-force] LEASE_ID|PREFIX */
int cli_cmd_lease_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
    bool prefix = false, force = false;
    struct cli_flag flags[] = {
        CLI_FLAG("prefix", CLI_FLAG_BOOL, &prefix, NULL, "revoke every lease under a prefix"),
        CLI_FLAG("force", CLI_FLAG_BOOL, &force, NULL,
                 "with -prefix: forget the leases without revoking the credentials (recovery)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    if (force && !prefix)
        return cli_fail(ctx, CLI_EXIT_USAGE, "-force needs -prefix (see nhid lease revoke -h)");
    char path[1200];
    json_t *body = NULL;
    if (prefix) {
        snprintf(path, sizeof(path), "sys/leases/%s/%.1024s",
                 force ? "revoke-force" : "revoke-prefix", ctx->args[0]);
    } else {
        snprintf(path, sizeof(path), "sys/leases/revoke");
        body = json_pack("{s:s}", "lease_id", ctx->args[0]);
        if (body == NULL)
            return cli_fail(ctx, CLI_EXIT_USAGE,
                            "out of memory (or the lease id is not UTF-8 text)");
    }
    rc = cli_call(ctx, "PUT", path, body, NULL);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    fprintf(ctx->out, prefix ? "Success! Revoked every lease under %s\n"
                             : "Success! Revoked lease %s (if it existed)\n",
            ctx->args[0]);
    return CLI_EXIT_OK;
}
