/*
 * cli_kv — `nhid kv put|get|patch|list|delete|undelete|destroy|metadata|rotate`,
 * the KV v2 commands (as `vault kv ...`). PATH is MOUNT/PATH ("secret/app/db"),
 * or a path inside the mount given with -mount=MOUNT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

#define KV_CLI_PATH_MAX 1024

/* Split the argument into mount and secret path (-mount wins). */
static int kv_target(struct cli_ctx *ctx, const char *mount_flag, const char *arg,
                     char mount[128], const char **path)
{
    if (mount_flag && *mount_flag) {
        if (strlen(mount_flag) >= 128)
            return cli_fail(ctx, CLI_EXIT_USAGE, "-mount is too long");
        snprintf(mount, 128, "%s", mount_flag);
        while (*arg == '/')
            arg++;
        *path = arg;
    } else {
        while (*arg == '/')
            arg++;
        const char *slash = strchr(arg, '/');
        if (slash == NULL || (size_t)(slash - arg) >= 128)
            return cli_fail(ctx, CLI_EXIT_USAGE,
                            "\"%.200s\": give MOUNT/PATH (e.g. secret/app/db) or -mount=MOUNT", arg);
        snprintf(mount, 128, "%.*s", (int)(slash - arg), arg);
        *path = slash + 1;
    }
    return CLI_CONTINUE;
}

static int api_path(struct cli_ctx *ctx, char *out, size_t len, const char *mount, const char *op,
                    const char *path, const char *query)
{
    if (nhid_fmt(out, len, "%s/%s%s%s%s", mount, op, *path ? "/" : "", path, query ? query : "") <
        0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "path is too long");
    return CLI_CONTINUE;
}

/* "1,2,3" → [1,2,3]. */
static json_t *parse_versions(struct cli_ctx *ctx, const char *s)
{
    json_t *a = json_array();
    if (a == NULL || s == NULL)
        return a;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v <= 0 || (*end && *end != ',')) {
            json_decref(a);
            cli_fail(ctx, CLI_EXIT_USAGE, "-versions: expected positive numbers separated by commas");
            return NULL;
        }
        json_array_append_new(a, json_integer(v));
        s = *end ? end + 1 : end;
    }
    return a;
}

/* Vault's version metadata as a table, then the data. */
static int print_kv_secret(struct cli_ctx *ctx, json_t *resp, const char *title)
{
    json_t *d = cli_data(resp);
    json_t *data = json_object_get(d, "data");
    json_t *meta = json_object_get(d, "metadata");
    if (ctx->opts.format == CLI_FORMAT_JSON)
        return cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    if (ctx->opts.field) {
        struct cli_table *t = cli_table_kv();
        const char *k;
        json_t *v;
        int rc = t ? CLI_EXIT_OK : CLI_EXIT_USAGE;
        json_object_foreach(json_is_object(data) ? data : d, k, v)
        {
            if (cli_table_add_json(t, k, v) < 0)
                rc = CLI_EXIT_USAGE;
        }
        if (rc == CLI_EXIT_OK)
            rc = cli_table_output(ctx, t);
        cli_table_free(t);
        return rc;
    }
    fprintf(ctx->out, "======= %s =======\n", title);
    if (cli_print_object_table(ctx->out, json_is_object(meta) ? meta : d) < 0)
        return CLI_EXIT_USAGE;
    if (json_is_object(data)) {
        fprintf(ctx->out, "\n====== Data ======\n");
        if (cli_print_object_table(ctx->out, data) < 0)
            return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Print a response (table of data, or JSON), or "Success! ..." when it has none. */
static int print_result(struct cli_ctx *ctx, json_t *resp, const char *done)
{
    int rc;
    if (ctx->opts.format == CLI_FORMAT_JSON)
        rc = cli_print_json(ctx->out, resp ? resp : json_null()) < 0 ? CLI_EXIT_USAGE
                                                                     : CLI_EXIT_OK;
    else if (resp && json_is_object(json_object_get(resp, "data")))
        rc = cli_print_secret(ctx, resp);
    else {
        fprintf(ctx->out, "Success! %s\n", done);
        rc = CLI_EXIT_OK;
    }
    cli_json_free(resp);
    return rc;
}

/* put and patch */
static int kv_write(struct cli_ctx *ctx, int argc, char **argv, bool patch)
{
    const char *mount_flag = NULL;
    long long cas = -1;
    struct cli_flag flags[] = {
        CLI_FLAG("mount", CLI_FLAG_STR, &mount_flag, "MOUNT", "the KV mount (default: PATH's first segment)"),
        CLI_FLAG("cas", CLI_FLAG_INT, &cas, "N", "check-and-set: write only if the current version is N (0: only if absent)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 2, -1);
    if (rc != CLI_CONTINUE)
        return rc;
    char mount[128], p[KV_CLI_PATH_MAX], err[256];
    const char *path;
    if ((rc = kv_target(ctx, mount_flag, ctx->args[0], mount, &path)) != CLI_CONTINUE)
        return rc;
    if ((rc = api_path(ctx, p, sizeof(p), mount, "data", path, NULL)) != CLI_CONTINUE)
        return rc;
    json_t *data = NULL, *resp = NULL;
    if (cli_kv_parse(ctx->args + 1, ctx->nargs - 1, ctx->in, &data, err, sizeof(err)) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "%s (see nhid kv %s -h)", err, patch ? "patch" : "put");
    json_t *body = json_pack("{s:o}", "data", data);
    if (body && flags[1].seen)
        json_object_set_new(body, "options", json_pack("{s:I}", "cas", (json_int_t)cas));
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    rc = patch ? cli_call_patch(ctx, p, body, &resp) : cli_call(ctx, "POST", p, body, &resp);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    } else {
        fprintf(ctx->out, "====== Secret Path ======\n%s/data/%s\n\n", mount, path);
        rc = cli_print_secret(ctx, resp);
    }
    cli_json_free(resp);
    return rc;
}

int cli_cmd_kv_put(struct cli_ctx *ctx, int argc, char **argv)
{
    return kv_write(ctx, argc, argv, false);
}

int cli_cmd_kv_patch(struct cli_ctx *ctx, int argc, char **argv)
{
    return kv_write(ctx, argc, argv, true);
}

int cli_cmd_kv_get(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *mount_flag = NULL;
    long long version = 0;
    struct cli_flag flags[] = {
        CLI_FLAG("mount", CLI_FLAG_STR, &mount_flag, "MOUNT", "the KV mount (default: PATH's first segment)"),
        CLI_FLAG("version", CLI_FLAG_INT, &version, "N", "read version N (default: the current one)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char mount[128], p[KV_CLI_PATH_MAX], q[40] = "";
    const char *path;
    if ((rc = kv_target(ctx, mount_flag, ctx->args[0], mount, &path)) != CLI_CONTINUE)
        return rc;
    if (version < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "-version must be a positive number");
    if (version > 0)
        snprintf(q, sizeof(q), "?version=%lld", version);
    if ((rc = api_path(ctx, p, sizeof(p), mount, "data", path, q)) != CLI_CONTINUE)
        return rc;
    struct cli_client *c = cli_client_get(ctx);
    if (c == NULL)
        return CLI_EXIT_USAGE;
    long status;
    json_t *resp = NULL;
    if (cli_request(c, "GET", p, NULL, &status, &resp) < 0)
        return CLI_EXIT_ERROR;
    if (status == 404 && json_array_size(json_object_get(resp, "errors")) == 0) {
        json_t *m = json_object_get(cli_data(resp), "metadata");
        if (json_is_true(json_object_get(m, "destroyed")))
            fprintf(ctx->err, "Version %lld of %s/%s is destroyed\n",
                    (long long)json_integer_value(json_object_get(m, "version")), mount, path);
        else if (m)
            fprintf(ctx->err, "Version %lld of %s/%s is deleted (nhid kv undelete restores it)\n",
                    (long long)json_integer_value(json_object_get(m, "version")), mount, path);
        else
            fprintf(ctx->err, "No value found at %s/data/%s\n", mount, path);
        cli_json_free(resp);
        return CLI_EXIT_ERROR;
    }
    if (status < 200 || status > 299) {
        (void)cli_print_api_error(ctx->err, "GET", cli_client_last_url(c), status, resp, NULL);
        cli_json_free(resp);
        return CLI_EXIT_ERROR;
    }
    rc = print_kv_secret(ctx, resp, "Metadata");
    cli_json_free(resp);
    return rc;
}

int cli_cmd_kv_list(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *mount_flag = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("mount", CLI_FLAG_STR, &mount_flag, "MOUNT", "the KV mount (default: PATH's first segment)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char mount[128], p[KV_CLI_PATH_MAX], arg[KV_CLI_PATH_MAX];
    const char *path;
    /* "secret" alone lists the mount's root. */
    snprintf(arg, sizeof(arg), "%s%s", ctx->args[0],
             (!mount_flag && !strchr(ctx->args[0], '/')) ? "/" : "");
    if ((rc = kv_target(ctx, mount_flag, arg, mount, &path)) != CLI_CONTINUE)
        return rc;
    if ((rc = api_path(ctx, p, sizeof(p), mount, "metadata", path, NULL)) != CLI_CONTINUE)
        return rc;
    if (p[strlen(p) - 1] != '/' && strlen(p) + 1 < sizeof(p))
        strcat(p, "/");
    json_t *resp = NULL;
    rc = cli_call(ctx, "LIST", p, NULL, &resp);
    if (rc == NHID_ERR_NOT_FOUND) {
        fprintf(ctx->err, "No value found at %s\n", p);
        return CLI_EXIT_ERROR;
    }
    if (rc < 0)
        return CLI_EXIT_ERROR;
    json_t *keys = json_object_get(cli_data(resp), "keys");
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, keys ? keys : resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    } else {
        fprintf(ctx->out, "Keys\n----\n");
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k) fprintf(ctx->out, "%s\n", json_string_value(k));
        rc = CLI_EXIT_OK;
    }
    cli_json_free(resp);
    return rc;
}

/* delete (latest or -versions), undelete, destroy */
static int kv_versions_cmd(struct cli_ctx *ctx, int argc, char **argv, const char *op)
{
    const char *mount_flag = NULL, *versions = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("mount", CLI_FLAG_STR, &mount_flag, "MOUNT", "the KV mount (default: PATH's first segment)"),
        CLI_FLAG("versions", CLI_FLAG_STR, &versions, "N,M", "the versions (delete: default the latest)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char mount[128], p[KV_CLI_PATH_MAX], done[KV_CLI_PATH_MAX + 64];
    const char *path;
    if ((rc = kv_target(ctx, mount_flag, ctx->args[0], mount, &path)) != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (strcmp(op, "delete") == 0 && versions == NULL) {
        if ((rc = api_path(ctx, p, sizeof(p), mount, "data", path, NULL)) != CLI_CONTINUE)
            return rc;
        if (cli_call(ctx, "DELETE", p, NULL, &resp) < 0)
            return CLI_EXIT_ERROR;
    } else {
        if (versions == NULL)
            return cli_fail(ctx, CLI_EXIT_USAGE, "-versions is required (e.g. -versions=1,2)");
        json_t *vs = parse_versions(ctx, versions);
        if (vs == NULL)
            return CLI_EXIT_USAGE;
        if ((rc = api_path(ctx, p, sizeof(p), mount, op, path, NULL)) != CLI_CONTINUE) {
            json_decref(vs);
            return rc;
        }
        json_t *body = json_pack("{s:o}", "versions", vs);
        rc = cli_call(ctx, "POST", p, body, &resp);
        json_decref(body);
        if (rc < 0)
            return CLI_EXIT_ERROR;
    }
    snprintf(done, sizeof(done), "Data %s at: %s/%s",
             !strcmp(op, "destroy") ? "destroyed" : !strcmp(op, "delete") ? "deleted" : "undeleted",
             mount, path);
    return print_result(ctx, resp, done);
}

int cli_cmd_kv_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    return kv_versions_cmd(ctx, argc, argv, "delete");
}

int cli_cmd_kv_undelete(struct cli_ctx *ctx, int argc, char **argv)
{
    return kv_versions_cmd(ctx, argc, argv, "undelete");
}

int cli_cmd_kv_destroy(struct cli_ctx *ctx, int argc, char **argv)
{
    return kv_versions_cmd(ctx, argc, argv, "destroy");
}

/* kv metadata get|put|delete PATH */
int cli_cmd_kv_metadata(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *mount_flag = NULL, *dva = NULL, *cas_req = NULL;
    long long maxv = 0;
    struct cli_strv custom = {0};
    struct cli_flag flags[] = {
        CLI_FLAG("mount", CLI_FLAG_STR, &mount_flag, "MOUNT", "the KV mount (default: PATH's first segment)"),
        CLI_FLAG("max-versions", CLI_FLAG_INT, &maxv, "N", "put: versions kept (0: the mount's setting)"),
        CLI_FLAG("cas-required", CLI_FLAG_STR, &cas_req, "BOOL", "put: require -cas on every write"),
        CLI_FLAG("delete-version-after", CLI_FLAG_STR, &dva, "DURATION", "put: soft-delete versions after this long"),
        CLI_FLAG("custom-metadata", CLI_FLAG_STRS, &custom, "K=V", "put: a custom metadata entry (repeatable)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 2, 2);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *action = ctx->args[0];
    char mount[128], p[KV_CLI_PATH_MAX];
    const char *path;
    if ((rc = kv_target(ctx, mount_flag, ctx->args[1], mount, &path)) != CLI_CONTINUE)
        return rc;
    if ((rc = api_path(ctx, p, sizeof(p), mount, "metadata", path, NULL)) != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (strcmp(action, "get") == 0) {
        if (cli_call(ctx, "GET", p, NULL, &resp) < 0)
            return CLI_EXIT_ERROR;
        if (ctx->opts.format == CLI_FORMAT_JSON)
            rc = cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        else
            rc = cli_print_secret(ctx, resp);
        cli_json_free(resp);
        return rc;
    }
    if (strcmp(action, "delete") == 0) {
        if (cli_call(ctx, "DELETE", p, NULL, &resp) < 0)
            return CLI_EXIT_ERROR;
        return print_result(ctx, resp, "Metadata and every version deleted");
    }
    if (strcmp(action, "put") != 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "unknown action \"%.32s\" (use get, put or delete)",
                        action);
    json_t *body = json_object();
    if (body == NULL)
        return CLI_EXIT_USAGE;
    if (flags[1].seen)
        json_object_set_new(body, "max_versions", json_integer(maxv));
    if (cas_req) {
        bool b;
        if (cli_parse_bool(cas_req, &b) < 0) {
            json_decref(body);
            return cli_fail(ctx, CLI_EXIT_USAGE, "-cas-required: expected true or false");
        }
        json_object_set_new(body, "cas_required", json_boolean(b));
    }
    if (dva)
        json_object_set_new(body, "delete_version_after", json_string(dva));
    if (custom.n) {
        json_t *cm = json_object();
        for (size_t i = 0; i < custom.n; i++) {
            const char *eq = strchr(custom.v[i], '=');
            if (eq == NULL || eq == custom.v[i]) {
                json_decref(cm);
                json_decref(body);
                return cli_fail(ctx, CLI_EXIT_USAGE, "-custom-metadata: expected KEY=VALUE");
            }
            char k[256];
            snprintf(k, sizeof(k), "%.*s", (int)(eq - custom.v[i]), custom.v[i]);
            json_object_set_new(cm, k, json_string(eq + 1));
        }
        json_object_set_new(body, "custom_metadata", cm);
    }
    rc = cli_call(ctx, "POST", p, body, &resp);
    json_decref(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    return print_result(ctx, resp, "Metadata written");
}

/* kv rotate PATH: rotate now under the secret's rotation policy. */
int cli_cmd_kv_rotate(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *mount_flag = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("mount", CLI_FLAG_STR, &mount_flag, "MOUNT", "the KV mount (default: PATH's first segment)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char mount[128], p[KV_CLI_PATH_MAX];
    const char *path;
    if ((rc = kv_target(ctx, mount_flag, ctx->args[0], mount, &path)) != CLI_CONTINUE)
        return rc;
    if ((rc = api_path(ctx, p, sizeof(p), mount, "rotate", path, NULL)) != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (cli_call(ctx, "POST", p, NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    return print_result(ctx, resp, "Rotated");
}
