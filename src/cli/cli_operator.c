/* cli_operator — `nhid status` and `nhid operator init|unseal|seal|rotate|key-status`. */
#include <string.h>

#include "cli/cli_internal.h"

#define CLI_SHARES_MAX 255      /* Shamir over GF(256): at most 255 shares */
#define CLI_UNSEAL_KEY_MAX 1024 /* longest unseal key accepted (base64 or hex) */

/* A status field, or "n/a" when absent or empty. */
static int add_field(struct cli_table *t, const char *label, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v) && json_string_length(v) == 0)
        v = NULL;
    return cli_table_add_json(t, label, v);
}

/*
 * The ctx's client with the token switched off: the seal endpoints need no
 * credential, and a sealed server cannot check one. NULL (error printed) on failure.
 */
static struct cli_client *unauth_client(struct cli_ctx *ctx)
{
    struct cli_client *c = cli_client_get(ctx);
    if (c)
        cli_client_send_token(c, false);
    return c;
}

int cli_print_seal_status(struct cli_ctx *ctx, json_t *resp)
{
    int rc = NHID_OK;
    json_t *st = cli_data(resp);
    bool sealed = !json_is_false(json_object_get(st, "sealed"));
    struct cli_table *t = NULL;

    if (ctx->opts.format == CLI_FORMAT_JSON) {
        if (cli_print_json(ctx->out, st) < 0)
            return CLI_EXIT_USAGE;
        return sealed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
    }
    t = cli_table_kv();
    NHID_CHECK_ALLOC(t);
    const char *type = json_string_value(json_object_get(st, "type"));
    NHID_TRY(cli_table_add(t, "Seal Type", "%s", type ? type : "shamir"));
    NHID_TRY(add_field(t, "Initialized", st, "initialized"));
    NHID_TRY(cli_table_add(t, "Sealed", "%s", sealed ? "true" : "false"));
    NHID_TRY(add_field(t, "Total Shares", st, "n"));
    NHID_TRY(add_field(t, "Threshold", st, "t"));
    if (sealed) {
        NHID_TRY(cli_table_add(t, "Unseal Progress", "%lld/%lld",
                               (long long)json_integer_value(json_object_get(st, "progress")),
                               (long long)json_integer_value(json_object_get(st, "t"))));
        const char *nonce = json_string_value(json_object_get(st, "nonce"));
        NHID_TRY(cli_table_add(t, "Unseal Nonce", "%s", nonce && *nonce ? nonce : "n/a"));
    }
    NHID_TRY(add_field(t, "Version", st, "version"));
    if (json_string_length(json_object_get(st, "build_date")) > 0)
        NHID_TRY(add_field(t, "Build Date", st, "build_date"));
    NHID_TRY(add_field(t, "Storage Type", st, "storage_type"));
    if (!sealed) {
        NHID_TRY(add_field(t, "Cluster Name", st, "cluster_name"));
        NHID_TRY(add_field(t, "Cluster ID", st, "cluster_id"));
    }
    if (json_object_get(st, "ha_enabled"))
        NHID_TRY(add_field(t, "HA Enabled", st, "ha_enabled"));
    cli_table_print(t, ctx->out);
out:
    cli_table_free(t);
    if (rc < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "cannot print the status: %s", nhid_strerror(rc));
    return sealed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (unauth_client(ctx) == NULL)
        return CLI_EXIT_USAGE;
    /* Vault's convention: 1 for an error, 2 for sealed. */
    if (cli_call(ctx, "GET", "sys/seal-status", NULL, &resp) < 0)
        return CLI_EXIT_USAGE;
    if (!json_is_object(resp)) {
        cli_json_free(resp);
        return cli_fail(ctx, CLI_EXIT_USAGE, "GET %s: the response is not a JSON object",
                        cli_client_last_url(ctx->client));
    }
    rc = cli_print_seal_status(ctx, resp);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_operator_init(struct cli_ctx *ctx, int argc, char **argv)
{
    long long shares = 5, threshold = 3;
    struct cli_flag flags[] = {
        CLI_FLAG("key-shares", CLI_FLAG_INT, &shares, "N",
                 "number of unseal key shares (default 5)"),
        CLI_FLAG("key-threshold", CLI_FLAG_INT, &threshold, "T",
                 "shares needed to unseal (default 3)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    if (shares < 1 || shares > CLI_SHARES_MAX)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -key-shares: must be between 1 and %d",
                        CLI_SHARES_MAX);
    if (threshold < 1 || threshold > shares)
        return cli_fail(ctx, CLI_EXIT_USAGE,
                        "flag -key-threshold: must be between 1 and -key-shares (%lld)", shares);
    if (shares > 1 && threshold < 2)
        return cli_fail(ctx, CLI_EXIT_USAGE,
                        "flag -key-threshold: must be at least 2 when -key-shares is more than 1");

    json_t *body = json_pack("{s:I,s:I}", "secret_shares", (json_int_t)shares, "secret_threshold",
                             (json_int_t)threshold);
    json_t *resp = NULL;
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    rc = unauth_client(ctx) ? cli_call(ctx, "PUT", "sys/init", body, &resp) : NHID_ERR_INVALID;
    json_decref(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        cli_json_free(resp);
        return rc;
    }
    json_t *keys = json_object_get(resp, "keys_base64");
    if (!json_is_array(keys))
        keys = json_object_get(resp, "keys");
    const char *root = json_string_value(json_object_get(resp, "root_token"));
    if (!json_is_array(keys) || root == NULL) {
        cli_json_free(resp);
        return cli_fail(ctx, CLI_EXIT_ERROR,
                        "the server's init response has no keys or root_token");
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        fprintf(ctx->out, "Unseal Key %zu: %s\n", i + 1,
                json_is_string(k) ? json_string_value(k) : "?");
    }
    fprintf(ctx->out, "\nInitial Root Token: %s\n\n", root);
    size_t n = json_array_size(keys);
    fprintf(ctx->out,
            "nhid initialized with %zu key share%s and a key threshold of %lld. Please\n"
            "securely distribute the key shares printed above. When the server is\n"
            "re-sealed, restarted, or stopped, you must supply at least %lld of these keys\n"
            "to unseal it before it can start servicing requests.\n\n"
            "nhid does not store the generated root key. Without at least %lld keys to\n"
            "reconstruct the root key, the server will remain permanently sealed!\n\n"
            "Revoke the initial root token (nhid token revoke -self) once you have set up\n"
            "other ways to authenticate; it never expires.\n",
            n, n == 1 ? "" : "s", threshold, threshold, threshold);
    cli_json_free(resp);
    return CLI_EXIT_OK;
}

int cli_cmd_operator_unseal(struct cli_ctx *ctx, int argc, char **argv)
{
    bool reset = false;
    struct cli_flag flags[] = {
        CLI_FLAG("reset", CLI_FLAG_BOOL, &reset, NULL, "discard the key shares given so far"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 1);
    if (rc != CLI_CONTINUE)
        return rc;

    char key[CLI_UNSEAL_KEY_MAX];
    json_t *body = NULL, *resp = NULL;
    key[0] = '\0';
    if (reset) {
        if (ctx->nargs > 0)
            return cli_fail(ctx, CLI_EXIT_USAGE, "-reset takes no KEY argument");
        body = json_pack("{s:b}", "reset", 1);
    } else {
        if (ctx->nargs == 1) {
            char *arg = ctx->args[0];
            if (nhid_fmt(key, sizeof(key), "%s", arg) < 0) {
                nhid_wipe(key, sizeof(key));
                return cli_fail(ctx, CLI_EXIT_USAGE, "KEY is longer than %d bytes",
                                CLI_UNSEAL_KEY_MAX - 1);
            }
            /* Hide the key from later readers of /proc/<pid>/cmdline. */
            nhid_wipe(arg, strlen(arg));
        } else {
            int r = cli_read_secret(ctx, "Unseal Key (will be hidden): ", key, sizeof(key));
            if (r < 0)
                return cli_fail(ctx, CLI_EXIT_USAGE, "%s",
                                r == NHID_ERR_TOO_LARGE ? "unseal key is too long"
                                                        : "no unseal key given");
        }
        body = json_pack("{s:s}", "key", key);
        nhid_wipe(key, sizeof(key));
    }
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory (or the key is not UTF-8 text)");
    rc = unauth_client(ctx) ? cli_call(ctx, "PUT", "sys/unseal", body, &resp) : NHID_ERR_INVALID;
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    (void)cli_print_seal_status(ctx, resp); /* still sealed is not an error here */
    cli_json_free(resp);
    return CLI_EXIT_OK;
}

int cli_cmd_operator_seal(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    if (cli_call(ctx, "PUT", "sys/seal", NULL, NULL) < 0)
        return CLI_EXIT_ERROR;
    fprintf(ctx->out, "Success! Sealed the server.\n");
    return CLI_EXIT_OK;
}

/* Print a sys/key-status response. */
static int print_key_status(struct cli_ctx *ctx, json_t *resp)
{
    if (ctx->opts.format == CLI_FORMAT_JSON)
        return cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    json_t *st = cli_data(resp);
    struct cli_table *t = cli_table_kv();
    if (t == NULL || add_field(t, "Key Term", st, "term") < 0 ||
        add_field(t, "Install Time", st, "install_time") < 0 ||
        (json_object_get(st, "encryptions") &&
         add_field(t, "Encryption Count", st, "encryptions") < 0)) {
        cli_table_free(t);
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    }
    cli_table_print(t, ctx->out);
    cli_table_free(t);
    return CLI_EXIT_OK;
}

int cli_cmd_operator_key_status(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (cli_call(ctx, "GET", "sys/key-status", NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    rc = print_key_status(ctx, resp);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_operator_rotate(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (cli_call(ctx, "PUT", "sys/rotate", NULL, NULL) < 0)
        return CLI_EXIT_ERROR;
    if (cli_call(ctx, "GET", "sys/key-status", NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    if (ctx->opts.format != CLI_FORMAT_JSON)
        fprintf(ctx->out, "Success! Rotated key\n\n");
    rc = print_key_status(ctx, resp);
    cli_json_free(resp);
    return rc;
}
