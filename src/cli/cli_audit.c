/* cli_audit — `nhid audit enable|disable|list|verify`. */
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "cli/cli_internal.h"

/* A device name: what the server accepts in sys/audit/NAME. */
static bool valid_device_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NHID_AUDIT_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

int cli_cmd_audit_enable(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *path = NULL, *description = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("path", CLI_FLAG_STR, &path, "NAME", "name of the device (default: the type)"),
        CLI_FLAG("description", CLI_FLAG_STR, &description, "S", "human-readable description"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, -1);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *type = ctx->args[0];
    char name[NHID_AUDIT_NAME_MAX + 2];
    if (nhid_fmt(name, sizeof(name), "%s", path ? path : type) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -path: longer than %d characters",
                        NHID_AUDIT_NAME_MAX);
    size_t nl = strlen(name);
    if (nl > 0 && name[nl - 1] == '/')
        name[nl - 1] = '\0';
    if (!valid_device_name(name))
        return cli_fail(ctx, CLI_EXIT_USAGE,
                        "flag -path: \"%s\" is not a device name (letters, digits, - _ .)", name);

    char err[256];
    json_t *options = NULL, *body = NULL;
    if (cli_kv_parse(ctx->args + 1, ctx->nargs - 1, ctx->in, &options, err, sizeof(err)) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "%s (see nhid audit enable -h)", err);
    if (strcmp(type, "file") == 0 && !json_is_string(json_object_get(options, "file_path"))) {
        cli_json_free(options);
        return cli_fail(ctx, CLI_EXIT_USAGE,
                        "a file device needs file_path=PATH (e.g. nhid audit enable file "
                        "file_path=/var/log/nhid/audit.log)");
    }
    body = json_pack("{s:s,s:s,s:o}", "type", type, "description", description ? description : "",
                     "options", options);
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory (or a value is not UTF-8 text)");
    char api[NHID_AUDIT_NAME_MAX + 16];
    if (nhid_fmt(api, sizeof(api), "sys/audit/%s", name) < 0) {
        cli_json_free(body);
        return cli_fail(ctx, CLI_EXIT_USAGE, "device name too long");
    }
    rc = cli_call(ctx, "PUT", api, body, NULL);
    cli_json_free(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    fprintf(ctx->out, "Success! Enabled the %s audit device at: %s/\n", type, name);
    return CLI_EXIT_OK;
}

int cli_cmd_audit_disable(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char name[NHID_AUDIT_NAME_MAX + 2];
    if (nhid_fmt(name, sizeof(name), "%s", ctx->args[0]) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "NAME: longer than %d characters",
                        NHID_AUDIT_NAME_MAX);
    size_t nl = strlen(name);
    if (nl > 0 && name[nl - 1] == '/')
        name[nl - 1] = '\0';
    if (!valid_device_name(name))
        return cli_fail(ctx, CLI_EXIT_USAGE, "\"%s\" is not a device name", name);
    char api[NHID_AUDIT_NAME_MAX + 16];
    if (nhid_fmt(api, sizeof(api), "sys/audit/%s", name) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "device name too long");
    if (cli_call(ctx, "DELETE", api, NULL, NULL) < 0)
        return CLI_EXIT_ERROR;
    fprintf(ctx->out, "Success! Disabled the audit device (if it was enabled) at: %s/\n", name);
    return CLI_EXIT_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int cli_cmd_audit_list(struct cli_ctx *ctx, int argc, char **argv)
{
    bool detailed = false;
    struct cli_flag flags[] = {
        CLI_FLAG("detailed", CLI_FLAG_BOOL, &detailed, NULL, "also print each device's options"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (cli_call(ctx, "GET", "sys/audit", NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    json_t *devs = cli_data(resp);
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, devs) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        cli_json_free(resp);
        return rc;
    }
    size_t n = json_object_size(devs), i = 0;
    if (n == 0) {
        fprintf(ctx->out, "No audit devices are enabled.\n");
        cli_json_free(resp);
        return CLI_EXIT_OK;
    }
    const char **names = calloc(n, sizeof(*names));
    struct cli_table *t = detailed ? cli_table_new(4, "Path", "Type", "Description", "Options")
                                   : cli_table_new(3, "Path", "Type", "Description");
    const char *k;
    json_t *v;
    rc = CLI_EXIT_OK;
    if (names == NULL || t == NULL) {
        rc = cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
        goto out;
    }
    json_object_foreach(devs, k, v) names[i++] = k;
    qsort(names, n, sizeof(*names), cmp_str);
    for (i = 0; i < n; i++) {
        json_t *d = json_object_get(devs, names[i]);
        if (!json_is_object(d))
            continue; /* Vault repeats the map at the top level next to request_id etc. */
        const char *desc = json_string_value(json_object_get(d, "description"));
        char *opts = detailed ? cli_json_to_text(NULL, json_object_get(d, "options")) : NULL;
        int r = cli_table_row(t, names[i], json_string_value(json_object_get(d, "type")),
                              desc && *desc ? desc : "n/a", opts);
        free(opts);
        if (r < 0) {
            rc = cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
            goto out;
        }
    }
    cli_table_print(t, ctx->out);
out:
    cli_table_free(t);
    free(names);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_audit_verify(struct cli_ctx *ctx, int argc, char **argv)
{
    /*
     * Verification is local and owned by the audit module; hand it argv with
     * argv[0] == "verify", normalising "-format json" to "-format=json" and
     * applying NHID_FORMAT=json when no -format flag is given.
     */
    char **v = calloc((size_t)argc + 3, sizeof(*v));
    int n = 0;
    bool has_format = false;
    if (v == NULL)
        return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
    v[n++] = (char *)"verify";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *f = a[0] == '-' && a[1] == '-' ? a + 1 : a;
        if (strcmp(a, "--") == 0) {
            for (; i < argc; i++)
                v[n++] = argv[i];
            break;
        }
        if (strcmp(f, "-format") == 0 && i + 1 < argc) {
            has_format = true;
            if (strcmp(argv[i + 1], "json") != 0 && strcmp(argv[i + 1], "table") != 0) {
                free(v);
                return cli_fail(ctx, CLI_EXIT_ERROR,
                                "flag -format: \"%.64s\" is not a format (use table or json)",
                                argv[i + 1]);
            }
            v[n++] =
                strcmp(argv[i + 1], "json") == 0 ? (char *)"-format=json" : (char *)"-format=table";
            i++;
            continue;
        }
        if (nhid_has_prefix(f, "-format="))
            has_format = true;
        v[n++] = argv[i];
    }
    if (!has_format && ctx->opts.format == CLI_FORMAT_JSON) {
        memmove(v + 2, v + 1, (size_t)(n - 1) * sizeof(*v));
        v[1] = (char *)"-format=json";
        n++;
    }
    v[n] = NULL;
    fflush(ctx->out);
    int rc = nhid_audit_verify_main(n, v);
    free(v);
    return rc;
}
