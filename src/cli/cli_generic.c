/* cli_generic — `nhid read|write|delete|list|patch PATH` and `nhid metrics`. */
#include <string.h>

#include "cli/cli_internal.h"

int cli_cmd_read(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    struct cli_client *c = cli_client_get(ctx);
    if (c == NULL)
        return CLI_EXIT_USAGE;
    long status;
    json_t *resp = NULL;
    if (cli_request(c, "GET", ctx->args[0], NULL, &status, &resp) < 0)
        return CLI_EXIT_ERROR;
    if (status < 200 || status > 299) {
        /* Vault answers a missing secret with 404 and no messages. */
        if (status == 404 && json_array_size(json_object_get(resp, "errors")) == 0)
            fprintf(ctx->err, "No value found at %s\n", ctx->args[0]);
        else
            (void)cli_print_api_error(ctx->err, "GET", cli_client_last_url(c), status, resp, NULL);
        cli_json_free(resp);
        return CLI_EXIT_ERROR;
    }
    if (resp == NULL) {
        fprintf(ctx->err, "No value found at %s\n", ctx->args[0]);
        return CLI_EXIT_ERROR;
    }
    rc = cli_print_secret(ctx, resp);
    cli_json_free(resp);
    return rc;
}

/* write and patch: build the body from key=value arguments and send it. */
static int send_kv(struct cli_ctx *ctx, int argc, char **argv, bool patch)
{
    int rc = cli_begin(ctx, argc, argv, NULL, patch ? 2 : 1, -1);
    if (rc != CLI_CONTINUE)
        return rc;
    char err[256];
    json_t *body = NULL, *resp = NULL;
    if (cli_kv_parse(ctx->args + 1, ctx->nargs - 1, ctx->in, &body, err, sizeof(err)) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "%s (see nhid %s -h)", err, patch ? "patch" : "write");
    rc = patch ? cli_call_patch(ctx, ctx->args[0], body, &resp)
               : cli_call(ctx, "PUT", ctx->args[0], body, &resp);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    if (resp == NULL ||
        (json_object_get(resp, "data") == NULL && json_object_get(resp, "auth") == NULL &&
         json_object_get(resp, "warnings") == NULL)) {
        if (ctx->opts.format == CLI_FORMAT_JSON) {
            rc = cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        } else if (resp && json_object_get(resp, "request_id") == NULL &&
                   json_object_size(resp) > 0) {
            rc = cli_print_secret(ctx, resp); /* a sys endpoint without the envelope */
        } else {
            fprintf(ctx->out, "Success! Data written to: %s\n", ctx->args[0]);
            rc = CLI_EXIT_OK;
        }
    } else if (json_is_null(json_object_get(resp, "data")) &&
               json_is_null(json_object_get(resp, "auth")) &&
               json_array_size(json_object_get(resp, "warnings")) == 0 &&
               ctx->opts.format == CLI_FORMAT_TABLE) {
        fprintf(ctx->out, "Success! Data written to: %s\n", ctx->args[0]);
        rc = CLI_EXIT_OK;
    } else {
        rc = cli_print_secret(ctx, resp);
    }
    cli_json_free(resp);
    return rc;
}

int cli_cmd_write(struct cli_ctx *ctx, int argc, char **argv)
{
    return send_kv(ctx, argc, argv, false);
}

int cli_cmd_patch(struct cli_ctx *ctx, int argc, char **argv)
{
    return send_kv(ctx, argc, argv, true);
}

int cli_cmd_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (cli_call(ctx, "DELETE", ctx->args[0], NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    rc = CLI_EXIT_OK;
    if (ctx->opts.format == CLI_FORMAT_JSON && resp)
        rc = cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    else
        fprintf(ctx->out, "Success! Data deleted (if it existed) at: %s\n", ctx->args[0]);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_list(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    struct cli_client *c = cli_client_get(ctx);
    if (c == NULL)
        return CLI_EXIT_USAGE;
    long status;
    json_t *resp = NULL;
    if (cli_request(c, "LIST", ctx->args[0], NULL, &status, &resp) < 0)
        return CLI_EXIT_ERROR;
    json_t *keys = json_object_get(cli_data(resp), "keys");
    if (status == 404 && json_array_size(json_object_get(resp, "errors")) == 0) {
        /* Vault answers an empty listing with 404 and no error messages. */
        fprintf(ctx->err, "No value found at %s\n", ctx->args[0]);
        cli_json_free(resp);
        return CLI_EXIT_ERROR;
    }
    if (status < 200 || status > 299) {
        (void)cli_print_api_error(ctx->err, "LIST", cli_client_last_url(c), status, resp, NULL);
        cli_json_free(resp);
        return CLI_EXIT_ERROR;
    }
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, keys ? keys : resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        cli_json_free(resp);
        return rc;
    }
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        fprintf(ctx->err, "No value found at %s\n", ctx->args[0]);
        cli_json_free(resp);
        return CLI_EXIT_ERROR;
    }
    struct cli_table *t = cli_table_new(1, "Keys");
    size_t i;
    json_t *k;
    rc = CLI_EXIT_OK;
    if (t == NULL) {
        rc = cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
        goto out;
    }
    json_array_foreach(keys, i, k)
    {
        char *s = cli_json_to_text(NULL, k);
        int r = s ? cli_table_row(t, s) : NHID_ERR_NOMEM;
        free(s);
        if (r < 0) {
            rc = cli_fail(ctx, CLI_EXIT_USAGE, "cannot print the keys: %s", nhid_strerror(r));
            goto out;
        }
    }
    cli_table_print(t, ctx->out);
out:
    cli_table_free(t);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_metrics(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        json_t *resp = NULL;
        if (cli_call(ctx, "GET", "sys/metrics", NULL, &resp) < 0)
            return CLI_EXIT_ERROR;
        rc = cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        cli_json_free(resp);
        return rc;
    }
    struct cli_client *c = cli_client_get(ctx);
    if (c == NULL)
        return CLI_EXIT_USAGE;
    const char *text;
    size_t len;
    long status;
    if (cli_request_raw(c, "GET", "sys/metrics?format=prometheus", NULL, NULL, 0, &status, &text,
                        &len) < 0)
        return CLI_EXIT_ERROR;
    if (status < 200 || status > 299) {
        json_t *j = json_loadb(text, len, 0, NULL);
        (void)cli_print_api_error(ctx->err, "GET", cli_client_last_url(c), status, j, text);
        cli_json_free(j);
        return CLI_EXIT_ERROR;
    }
    fwrite(text, 1, len, ctx->out);
    return CLI_EXIT_OK;
}
