/*
 * cli_identity — `nhid identity ...` (machine identities, lifecycle,
 * credential inventory, hygiene report, join tokens) and `nhid group ...`.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

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

#define PATH_LEN 1024

/* Percent-encode a query value (RFC 3986 unreserved characters pass). */
static void qenc(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < outlen; in++) {
        unsigned char c = (unsigned char)*in;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

static int add_query(char *path, size_t len, const char *key, const char *val)
{
    if (val == NULL)
        return NHID_OK;
    char enc[512];
    qenc(val, enc, sizeof(enc));
    size_t used = strlen(path);
    int n = snprintf(path + used, len - used, "%s%s=%s", strchr(path, '?') ? "&" : "?", key, enc);
    return (n < 0 || (size_t)n >= len - used) ? NHID_ERR_TOO_LARGE : NHID_OK;
}

/* -label k=v flags as an object. */
static int labels_object(struct cli_ctx *ctx, const struct cli_strv *labels, json_t *body)
{
    if (labels->n == 0)
        return NHID_OK;
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(body, "labels", o) != 0)
        return NHID_ERR_NOMEM;
    for (size_t i = 0; i < labels->n; i++) {
        const char *kv = labels->v[i];
        const char *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv) {
            cli_fail(ctx, CLI_EXIT_USAGE, "flag -label: \"%.64s\" is not key=value", kv);
            return NHID_ERR_INVALID;
        }
        char *k = strndup(kv, (size_t)(eq - kv));
        int r = k ? json_object_set_new(o, k, json_string(eq + 1)) : -1;
        free(k);
        if (r != 0)
            return NHID_ERR_NOMEM;
    }
    return NHID_OK;
}

/* Send and print a response like `nhid read` does. */
static int call_print(struct cli_ctx *ctx, const char *method, const char *path, json_t *body)
{
    json_t *resp = NULL;
    int rc = cli_call(ctx, method, path, body, &resp);
    json_decref(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    if (resp == NULL) {
        fprintf(ctx->out, "Success! %s %s\n", method, path);
        return CLI_EXIT_OK;
    }
    rc = cli_print_secret(ctx, resp);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_identity_create(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *kind = NULL, *owner = NULL, *spiffe = NULL, *desc = NULL;
    struct cli_strv labels = {0};
    struct cli_flag flags[] = {
        CLI_FLAG("kind", CLI_FLAG_STR, &kind, "K",
                 "workload, device, service, pipeline, bot, agent"),
        CLI_FLAG("owner", CLI_FLAG_STR, &owner, "TEAM", "owning team or person"),
        CLI_FLAG("label", CLI_FLAG_STRS, &labels, "K=V", "label (repeatable)"),
        CLI_FLAG("spiffe-id", CLI_FLAG_STR, &spiffe, "URI",
                 "SPIFFE ID (default spiffe://<trust-domain>/<kind>/<name>)"),
        CLI_FLAG("description", CLI_FLAG_STR, &desc, "TEXT", "free text"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    if (kind == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE,
                        "flag -kind is required (workload, device, service, "
                        "pipeline, bot, agent)");
    json_t *body = json_pack("{s:s}", "kind", kind);
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    if ((owner && json_object_set_new(body, "owner", json_string(owner))) ||
        (spiffe && json_object_set_new(body, "spiffe_id", json_string(spiffe))) ||
        (desc && json_object_set_new(body, "description", json_string(desc))) ||
        labels_object(ctx, &labels, body) < 0) {
        json_decref(body);
        return CLI_EXIT_USAGE;
    }
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "identity/machine/%s", ctx->args[0]);
    return call_print(ctx, "POST", path, body);
}

int cli_cmd_identity_update(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *owner = NULL, *desc = NULL;
    struct cli_strv labels = {0};
    struct cli_flag flags[] = {
        CLI_FLAG("owner", CLI_FLAG_STR, &owner, "TEAM", "new owner (\"\" makes it an orphan)"),
        CLI_FLAG("label", CLI_FLAG_STRS, &labels, "K=V", "labels (replace all; repeatable)"),
        CLI_FLAG("description", CLI_FLAG_STR, &desc, "TEXT", "free text"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *body = json_object();
    if (body == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    if ((owner && json_object_set_new(body, "owner", json_string(owner))) ||
        (desc && json_object_set_new(body, "description", json_string(desc))) ||
        labels_object(ctx, &labels, body) < 0) {
        json_decref(body);
        return CLI_EXIT_USAGE;
    }
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "identity/machine/%s", ctx->args[0]);
    return call_print(ctx, "PATCH", path, body);
}

/* METHOD <prefix>/NAME with no body. */
static int simple(struct cli_ctx *ctx, int argc, char **argv, const char *method,
                  const char *prefix)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "%s/%s", prefix, ctx->args[0]);
    return call_print(ctx, method, path, NULL);
}

int cli_cmd_identity_read(struct cli_ctx *ctx, int argc, char **argv)
{
    return simple(ctx, argc, argv, "GET", "identity/machine");
}

int cli_cmd_identity_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    return simple(ctx, argc, argv, "DELETE", "identity/machine");
}

static int transition(struct cli_ctx *ctx, int argc, char **argv, const char *op)
{
    const char *reason = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("reason", CLI_FLAG_STR, &reason, "TEXT", "why (recorded and audited)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *body = reason ? json_pack("{s:s}", "reason", reason) : json_object();
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "identity/machine/%s/%s", ctx->args[0], op);
    json_t *resp = NULL;
    rc = cli_call(ctx, "POST", path, body, &resp);
    json_decref(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    } else {
        json_t *d = cli_data(resp);
        fprintf(ctx->out, "Success! Identity %s is now %s", ctx->args[0],
                json_string_value(json_object_get(d, "state")) ?: "?");
        if (json_object_get(d, "credentials_revoked"))
            fprintf(ctx->out, " (%lld credentials revoked)",
                    (long long)json_integer_value(json_object_get(d, "credentials_revoked")));
        fprintf(ctx->out, ".\n");
        rc = CLI_EXIT_OK;
    }
    cli_json_free(resp);
    return rc;
}

int cli_cmd_identity_suspend(struct cli_ctx *ctx, int argc, char **argv)
{
    return transition(ctx, argc, argv, "suspend");
}

int cli_cmd_identity_resume(struct cli_ctx *ctx, int argc, char **argv)
{
    return transition(ctx, argc, argv, "resume");
}

int cli_cmd_identity_decommission(struct cli_ctx *ctx, int argc, char **argv)
{
    return transition(ctx, argc, argv, "decommission");
}

int cli_cmd_identity_list(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *owner = NULL, *kind = NULL, *state = NULL, *label = NULL, *seen = NULL,
               *expiring = NULL, *after = NULL;
    long long limit = 0;
    struct cli_flag flags[] = {
        CLI_FLAG("owner", CLI_FLAG_STR, &owner, "TEAM", "owned by TEAM (\"\": orphans)"),
        CLI_FLAG("kind", CLI_FLAG_STR, &kind, "K", "of kind K"),
        CLI_FLAG("state", CLI_FLAG_STR, &state, "S", "pending, active, suspended, decommissioned"),
        CLI_FLAG("label", CLI_FLAG_STR, &label, "K=V", "carrying label K=V"),
        CLI_FLAG("last-seen-before", CLI_FLAG_STR, &seen, "T",
                 "last seen before T (RFC 3339) or longer ago than a duration (720h)"),
        CLI_FLAG("credential-expiring-within", CLI_FLAG_STR, &expiring, "D",
                 "holding a credential expiring within D (e.g. 24h)"),
        CLI_FLAG("after", CLI_FLAG_STR, &after, "NAME", "page: names after NAME"),
        CLI_FLAG("limit", CLI_FLAG_INT, &limit, "N", "page size (default 100, at most 1000)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    char path[PATH_LEN] = "identity/machine";
    char lim[32];
    snprintf(lim, sizeof(lim), "%lld", limit);
    if (add_query(path, sizeof(path), "owner", owner) < 0 ||
        add_query(path, sizeof(path), "kind", kind) < 0 ||
        add_query(path, sizeof(path), "state", state) < 0 ||
        add_query(path, sizeof(path), "label", label) < 0 ||
        add_query(path, sizeof(path), "last_seen_before", seen) < 0 ||
        add_query(path, sizeof(path), "credential_expiring_within", expiring) < 0 ||
        add_query(path, sizeof(path), "after", after) < 0 ||
        add_query(path, sizeof(path), "limit", limit ? lim : NULL) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "filters too long");
    json_t *resp = NULL;
    if (cli_call(ctx, "LIST", path, NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    json_t *d = cli_data(resp);
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, d) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        cli_json_free(resp);
        return rc;
    }
    struct cli_table *t = cli_table_new(5, "Name", "Kind", "Owner", "State", "SPIFFE ID");
    json_t *info = json_object_get(d, "key_info");
    size_t i;
    json_t *k;
    rc = t ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    json_array_foreach(json_object_get(d, "keys"), i, k)
    {
        if (rc != CLI_EXIT_OK)
            break;
        json_t *e = json_object_get(info, json_string_value(k));
        const char *owner_s = json_string_value(json_object_get(e, "owner"));
        if (cli_table_row(t, json_string_value(k), json_string_value(json_object_get(e, "kind")),
                          owner_s && *owner_s ? owner_s : "(none)",
                          json_string_value(json_object_get(e, "state")),
                          json_string_value(json_object_get(e, "spiffe_id"))) < 0)
            rc = CLI_EXIT_USAGE;
    }
    if (rc == CLI_EXIT_OK) {
        cli_table_print(t, ctx->out);
        const char *next = json_string_value(json_object_get(d, "next_after"));
        if (next)
            fprintf(ctx->out, "\nMore results: -after=%s\n", next);
    }
    cli_table_free(t);
    cli_json_free(resp);
    return rc;
}

static const char *time_or_dash(json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "-";
}

int cli_cmd_identity_creds(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "identity/machine/%s/creds", ctx->args[0]);
    json_t *resp = NULL;
    if (cli_call(ctx, "GET", path, NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    json_t *d = cli_data(resp);
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, d) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        cli_json_free(resp);
        return rc;
    }
    struct cli_table *t = cli_table_new(6, "Type", "Accessor/Fingerprint", "Issued", "Expires",
                                        "Last used", "Uses/Status");
    size_t i;
    json_t *c;
    rc = t ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    json_array_foreach(json_object_get(d, "credentials"), i, c)
    {
        char us[64];
        snprintf(us, sizeof(us), "%lld %s",
                 (long long)json_integer_value(json_object_get(c, "use_count")),
                 json_string_value(json_object_get(c, "status")) ?: "");
        if (rc == CLI_EXIT_OK &&
            cli_table_row(t, json_string_value(json_object_get(c, "type")),
                          json_string_value(json_object_get(c, "id")),
                          time_or_dash(json_object_get(c, "issued")),
                          time_or_dash(json_object_get(c, "expires")),
                          time_or_dash(json_object_get(c, "last_used")), us) < 0)
            rc = CLI_EXIT_USAGE;
    }
    if (rc == CLI_EXIT_OK) {
        fprintf(ctx->out, "Identity %s (%s)\n\n", ctx->args[0],
                json_string_value(json_object_get(d, "state")) ?: "?");
        cli_table_print(t, ctx->out);
    }
    cli_table_free(t);
    cli_json_free(resp);
    return rc;
}

static const char *const report_sections[] = {"orphans", "stale", "expiring", "multi_network",
                                              "suspended"};

int cli_cmd_identity_report(struct cli_ctx *ctx, int argc, char **argv)
{
    long long stale = 30, expiring = 7;
    const char *fail_on = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("stale-days", CLI_FLAG_INT, &stale, "N", "stale: unused for N days (default 30)"),
        CLI_FLAG("expiring-days", CLI_FLAG_INT, &expiring, "N",
                 "credentials expiring within N days (default 7)"),
        CLI_FLAG("fail-on", CLI_FLAG_STR, &fail_on, "LIST",
                 "exit 2 if any of: orphan,stale,expiring,multi-network,suspended"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    bool fail[5] = {false};
    if (fail_on) {
        char *copy = strdup(fail_on), *save = NULL;
        if (copy == NULL)
            return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
        for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
            static const char *const names[] = {"orphan", "stale", "expiring", "multi-network",
                                                "suspended"};
            bool known = false;
            for (size_t i = 0; i < 5; i++)
                if (strcmp(w, names[i]) == 0)
                    fail[i] = known = true;
            if (!known) {
                rc = cli_fail(ctx, CLI_EXIT_USAGE,
                              "flag -fail-on: \"%.32s\" is not one of orphan, stale, expiring, "
                              "multi-network, suspended",
                              w);
                free(copy);
                return rc;
            }
        }
        free(copy);
    }
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "identity/report?stale_days=%lld&expiring_days=%lld", stale,
             expiring);
    json_t *resp = NULL;
    if (cli_call(ctx, "GET", path, NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    json_t *d = cli_data(resp);
    rc = CLI_EXIT_OK;
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        if (cli_print_json(ctx->out, d) < 0)
            rc = CLI_EXIT_USAGE;
    } else {
        static const char *const titles[] = {
            "Orphans (no owner)", "Stale (not seen within the window)", "Credentials expiring soon",
            "Credentials used from more than one network", "Suspended identities"};
        for (size_t s = 0; s < 5; s++) {
            json_t *arr = json_object_get(d, report_sections[s]);
            fprintf(ctx->out, "%s: %zu\n", titles[s], json_array_size(arr));
            size_t i;
            json_t *v;
            json_array_foreach(arr, i, v)
            {
                if (json_is_string(v)) {
                    fprintf(ctx->out, "  %s\n", json_string_value(v));
                } else {
                    char *txt = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
                    fprintf(ctx->out, "  %s\n", txt ? txt : "");
                    free(txt);
                }
            }
        }
    }
    for (size_t s = 0; s < 5; s++) {
        if (fail[s] && json_array_size(json_object_get(d, report_sections[s])) > 0) {
            fprintf(ctx->err, "Report check failed: %zu %s\n",
                    json_array_size(json_object_get(d, report_sections[s])), report_sections[s]);
            rc = CLI_EXIT_ERROR;
        }
    }
    cli_json_free(resp);
    return rc;
}

int cli_cmd_identity_join_token(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_duration ttl = {0};
    struct cli_flag flags[] = {
        CLI_FLAG("ttl", CLI_FLAG_DURATION, &ttl, "D", "lifetime (default 10m, at most 168h)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *body = ttl.text ? json_pack("{s:s}", "ttl", ttl.text) : json_object();
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "identity/machine/%s/join-token", ctx->args[0]);
    return call_print(ctx, "POST", path, body);
}

/* ---- groups ---------------------------------------------------------------------- */

int cli_cmd_group_write(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_strv members = {0}, groups = {0};
    const char *desc = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("member", CLI_FLAG_STRS, &members, "IDENTITY", "member identity (repeatable)"),
        CLI_FLAG("group", CLI_FLAG_STRS, &groups, "GROUP", "nested member group (repeatable)"),
        CLI_FLAG("description", CLI_FLAG_STR, &desc, "TEXT", "free text"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *body = json_object(), *m = json_array(), *g = json_array();
    if (body == NULL || m == NULL || g == NULL) {
        json_decref(body);
        json_decref(m);
        json_decref(g);
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    }
    for (size_t i = 0; i < members.n; i++)
        json_array_append_new(m, json_string(members.v[i]));
    for (size_t i = 0; i < groups.n; i++)
        json_array_append_new(g, json_string(groups.v[i]));
    if (members.n)
        json_object_set(body, "member_identities", m);
    if (groups.n)
        json_object_set(body, "member_groups", g);
    json_decref(m);
    json_decref(g);
    if (desc)
        json_object_set_new(body, "description", json_string(desc));
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "identity/group/%s", ctx->args[0]);
    return call_print(ctx, "POST", path, body);
}

int cli_cmd_group_read(struct cli_ctx *ctx, int argc, char **argv)
{
    return simple(ctx, argc, argv, "GET", "identity/group");
}

int cli_cmd_group_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    return simple(ctx, argc, argv, "DELETE", "identity/group");
}

int cli_cmd_group_list(struct cli_ctx *ctx, int argc, char **argv)
{
    int rc = cli_begin(ctx, argc, argv, NULL, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *resp = NULL;
    if (cli_call(ctx, "LIST", "identity/group", NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    json_t *keys = json_object_get(cli_data(resp), "keys");
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        rc = cli_print_json(ctx->out, keys) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    } else {
        size_t i;
        json_t *k;
        json_array_foreach(keys, i, k) fprintf(ctx->out, "%s\n", json_string_value(k));
        rc = CLI_EXIT_OK;
    }
    cli_json_free(resp);
    return rc;
}
