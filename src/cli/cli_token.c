/* cli_token — `nhid token create|lookup|renew|revoke` and `nhid login`. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_internal.h"

/* Wipe a token given on the command line once it has been copied into a request. */
static void wipe_arg(char *arg)
{
    if (arg)
        nhid_wipe(arg, strlen(arg));
}

int cli_cmd_token_create(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_strv policies = {0}, metadata = {0};
    struct cli_duration ttl = {0}, max_ttl = {0}, period = {0};
    long long uses = 0;
    bool renewable = true, orphan = false;
    const char *display = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("policy", CLI_FLAG_STRS, &policies, "P", "policy to attach"),
        CLI_FLAG("ttl", CLI_FLAG_DURATION, &ttl, "D", "initial time to live, e.g. 15m"),
        CLI_FLAG("explicit-max-ttl", CLI_FLAG_DURATION, &max_ttl, "D",
                 "hard limit, renewals included"),
        CLI_FLAG("period", CLI_FLAG_DURATION, &period, "D",
                 "periodic token: renewable forever by D"),
        CLI_FLAG("use-limit", CLI_FLAG_INT, &uses, "N", "number of uses (0: unlimited)"),
        CLI_FLAG("renewable", CLI_FLAG_BOOL, &renewable, NULL,
                 "allow renewal (-renewable=false to deny)"),
        CLI_FLAG("orphan", CLI_FLAG_BOOL, &orphan, NULL, "create a token with no parent"),
        CLI_FLAG("display-name", CLI_FLAG_STR, &display, "S", "name shown in audit logs"),
        CLI_FLAG("metadata", CLI_FLAG_STRS, &metadata, "K=V", "metadata to attach"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    if (uses < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -use-limit: must be 0 or more");

    json_t *resp = NULL, *pol = NULL, *meta = NULL;
    json_t *body = json_object();
    if (body == NULL)
        goto nomem;
    if (policies.n) {
        pol = json_array();
        if (pol == NULL || json_object_set_new(body, "policies", pol) != 0)
            goto nomem;
        for (size_t i = 0; i < policies.n; i++)
            if (json_array_append_new(pol, json_string(policies.v[i])) != 0)
                goto nomem;
    }
    if (metadata.n) {
        meta = json_object();
        if (meta == NULL || json_object_set_new(body, "meta", meta) != 0)
            goto nomem;
        for (size_t i = 0; i < metadata.n; i++) {
            const char *kv = metadata.v[i];
            const char *eq = strchr(kv, '=');
            if (eq == NULL || eq == kv) {
                json_decref(body);
                return cli_fail(ctx, CLI_EXIT_USAGE, "flag -metadata: \"%.64s\" is not key=value",
                                kv);
            }
            char *k = strndup(kv, (size_t)(eq - kv));
            int r = k ? json_object_set_new(meta, k, json_string(eq + 1)) : -1;
            free(k);
            if (r != 0)
                goto nomem;
        }
    }
    if ((ttl.text && json_object_set_new(body, "ttl", json_string(ttl.text)) != 0) ||
        (max_ttl.text &&
         json_object_set_new(body, "explicit_max_ttl", json_string(max_ttl.text)) != 0) ||
        (period.text && json_object_set_new(body, "period", json_string(period.text)) != 0) ||
        (flags[4].seen && json_object_set_new(body, "num_uses", json_integer(uses)) != 0) ||
        (flags[5].seen && json_object_set_new(body, "renewable", json_boolean(renewable)) != 0) ||
        (orphan && json_object_set_new(body, "no_parent", json_true()) != 0) ||
        (display && json_object_set_new(body, "display_name", json_string(display)) != 0))
        goto nomem;

    rc = cli_call(ctx, "POST", orphan ? "auth/token/create-orphan" : "auth/token/create", body,
                  &resp);
    json_decref(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    rc = cli_print_auth(ctx, resp);
    cli_json_free(resp);
    return rc;
nomem:
    json_decref(body);
    return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory (or a value is not UTF-8 text)");
}

int cli_cmd_token_lookup(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *accessor = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("accessor", CLI_FLAG_STR, &accessor, "A", "look up the token with this accessor"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    if (accessor && ctx->nargs)
        return cli_fail(ctx, CLI_EXIT_USAGE, "give either TOKEN or -accessor, not both");
    json_t *body = NULL, *resp = NULL;
    if (accessor) {
        body = json_pack("{s:s}", "accessor", accessor);
        rc = body ? cli_call(ctx, "POST", "auth/token/lookup-accessor", body, &resp)
                  : NHID_ERR_NOMEM;
    } else if (ctx->nargs == 1) {
        body = json_pack("{s:s}", "token", ctx->args[0]);
        wipe_arg(ctx->args[0]);
        rc = body ? cli_call(ctx, "POST", "auth/token/lookup", body, &resp) : NHID_ERR_NOMEM;
    } else {
        rc = cli_call(ctx, "GET", "auth/token/lookup-self", NULL, &resp);
    }
    cli_json_free(body);
    if (rc == NHID_ERR_NOMEM && body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory (or a value is not UTF-8 text)");
    if (rc < 0)
        return CLI_EXIT_ERROR;
    rc = cli_print_secret(ctx, resp);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_token_renew(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_duration inc = {0};
    struct cli_flag flags[] = {
        CLI_FLAG("increment", CLI_FLAG_DURATION, &inc, "D",
                 "requested extension (default: the TTL)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    json_t *body = json_object();
    if (body == NULL ||
        (inc.text && json_object_set_new(body, "increment", json_string(inc.text)) != 0) ||
        (ctx->nargs == 1 && json_object_set_new(body, "token", json_string(ctx->args[0])) != 0)) {
        cli_json_free(body);
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory (or a value is not UTF-8 text)");
    }
    if (ctx->nargs == 1)
        wipe_arg(ctx->args[0]);
    rc = cli_call(ctx, "POST", ctx->nargs == 1 ? "auth/token/renew" : "auth/token/renew-self", body,
                  &resp);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    rc = cli_print_auth(ctx, resp);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_token_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
    bool self = false;
    const char *accessor = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("self", CLI_FLAG_BOOL, &self, NULL, "revoke the calling token"),
        CLI_FLAG("accessor", CLI_FLAG_STR, &accessor, "A", "revoke the token with this accessor"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    int given = (self ? 1 : 0) + (accessor ? 1 : 0) + (ctx->nargs ? 1 : 0);
    if (given != 1)
        return cli_fail(
            ctx, CLI_EXIT_USAGE,
            "give exactly one of TOKEN, -self or -accessor A (see nhid token revoke -h)");
    json_t *body = NULL;
    const char *path;
    if (self) {
        path = "auth/token/revoke-self";
    } else if (accessor) {
        path = "auth/token/revoke-accessor";
        body = json_pack("{s:s}", "accessor", accessor);
    } else {
        path = "auth/token/revoke";
        body = json_pack("{s:s}", "token", ctx->args[0]);
        wipe_arg(ctx->args[0]);
    }
    if (!self && body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory (or a value is not UTF-8 text)");
    rc = cli_call(ctx, "POST", path, body, NULL);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    fprintf(ctx->out, "Success! Revoked token (if it existed)\n");
    return CLI_EXIT_OK;
}

/* Write the token to ~/.nhid-token with mode 0600 (never following a symlink). */
static int save_token(struct cli_ctx *ctx, const char *token)
{
    const char *home = getenv("HOME");
    char path[1024];
    if (home == NULL || nhid_fmt(path, sizeof(path), "%s/%s", home, CLI_TOKEN_FILE) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "cannot find the home directory (set HOME)");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "cannot write %s: %s", path, strerror(errno));
    size_t len = strlen(token);
    bool ok =
        fchmod(fd, 0600) == 0 && write(fd, token, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
    ok = close(fd) == 0 && ok;
    if (!ok)
        return cli_fail(ctx, CLI_EXIT_USAGE, "cannot write %s: %s", path, strerror(errno));
    fprintf(ctx->out,
            "Success! Token saved to %s; later commands use it when NHID_TOKEN is "
            "not set.\n",
            path);
    return CLI_EXIT_OK;
}

int cli_cmd_login(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 0, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char token[CLI_TOKEN_MAX + 2];
    if (ctx->nargs == 1) {
        if (nhid_fmt(token, sizeof(token), "%s", ctx->args[0]) < 0)
            return cli_fail(ctx, CLI_EXIT_USAGE, "TOKEN is longer than %d bytes", CLI_TOKEN_MAX);
        wipe_arg(ctx->args[0]);
    } else {
        int r = cli_read_secret(ctx, "Token (will be hidden): ", token, sizeof(token));
        if (r < 0)
            return cli_fail(ctx, CLI_EXIT_USAGE, "%s",
                            r == NHID_ERR_TOO_LARGE ? "token is too long" : "no token given");
    }
    struct cli_client *c = cli_client_get(ctx);
    json_t *resp = NULL;
    if (c == NULL) {
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (cli_client_set_token(c, token) < 0) {
        rc = cli_fail(ctx, CLI_EXIT_USAGE, "the token has characters a token cannot have");
        goto out;
    }
    if (cli_call(ctx, "GET", "auth/token/lookup-self", NULL, &resp) < 0) {
        rc = CLI_EXIT_ERROR;
        goto out;
    }
    rc = save_token(ctx, token);
    if (rc == CLI_EXIT_OK && ctx->opts.format == CLI_FORMAT_TABLE) {
        json_t *d = cli_data(resp);
        char *pol = cli_json_to_text("policies", json_object_get(d, "policies"));
        char *ttl = cli_json_to_text("ttl", json_object_get(d, "ttl"));
        fprintf(ctx->out, "\npolicies    %s\nttl         %s\n", pol ? pol : "n/a",
                ttl ? ttl : "n/a");
        free(pol);
        free(ttl);
    }
out:
    nhid_wipe(token, sizeof(token));
    cli_json_free(resp);
    return rc;
}
