/*
 * cli_auth — machine logins: `nhid approle login`, `nhid cert login`,
 * `nhid join login`. Each prints the token block (as `nhid token create`);
 * secrets are read from flags, or from stdin with "-", and wiped after use.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

int cli_cmd_approle_login(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_cert_login(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_join_login(struct cli_ctx *ctx, int argc, char **argv);

static int login(struct cli_ctx *ctx, const char *path, json_t *body)
{
    struct cli_client *c = cli_client_get(ctx);
    if (c == NULL) {
        cli_json_free(body);
        return CLI_EXIT_USAGE;
    }
    cli_client_send_token(c, false); /* a login carries its own credential */
    json_t *resp = NULL;
    int rc = cli_call(ctx, "POST", path, body, &resp);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    rc = cli_print_auth(ctx, resp);
    cli_json_free(resp);
    return rc;
}

/* A secret from a flag value, or stdin when the value is "-". */
static int secret_arg(struct cli_ctx *ctx, const char *flag, const char *val, char *buf, size_t len)
{
    if (val == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -%s is required (\"-\" reads it from stdin)",
                        flag),
               NHID_ERR_INVALID;
    if (strcmp(val, "-") == 0) {
        if (cli_read_secret(ctx, flag, buf, len) < 0)
            return cli_fail(ctx, CLI_EXIT_USAGE, "cannot read -%s from stdin", flag),
                   NHID_ERR_INVALID;
        return NHID_OK;
    }
    if (strlen(val) >= len)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -%s: too long", flag), NHID_ERR_INVALID;
    snprintf(buf, len, "%s", val);
    nhid_wipe((void *)val, strlen(val)); /* do not leave it in argv */
    return NHID_OK;
}

int cli_cmd_approle_login(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *role_id = NULL, *secret = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("role-id", CLI_FLAG_STR, &role_id, "ID", "the role ID"),
        CLI_FLAG("secret-id", CLI_FLAG_STR, &secret, "SECRET", "the secret ID (\"-\": stdin)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    if (role_id == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -role-id is required");
    char buf[512];
    if (secret_arg(ctx, "secret-id", secret, buf, sizeof(buf)) < 0)
        return CLI_EXIT_USAGE;
    json_t *body = json_pack("{s:s, s:s}", "role_id", role_id, "secret_id", buf);
    nhid_wipe(buf, sizeof(buf));
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    return login(ctx, "auth/approle/login", body);
}

int cli_cmd_cert_login(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("name", CLI_FLAG_STR, &name, "ROLE", "try only this certificate role"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    if (ctx->opts.client_cert == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE,
                        "a client certificate is needed: -client-cert and "
                        "-client-key (or NHID_CLIENT_CERT/NHID_CLIENT_KEY)");
    json_t *body = name ? json_pack("{s:s}", "name", name) : json_object();
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    return login(ctx, "auth/cert/login", body);
}

int cli_cmd_join_login(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char buf[512];
    if (secret_arg(ctx, "join-token", ctx->args[0], buf, sizeof(buf)) < 0)
        return CLI_EXIT_USAGE;
    json_t *body = json_pack("{s:s}", "join_token", buf);
    nhid_wipe(buf, sizeof(buf));
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    return login(ctx, "auth/join/login", body);
}
