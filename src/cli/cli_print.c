/* cli_print — tables, JSON output and Vault-style value formatting. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

struct cli_table {
    size_t ncols;
    size_t nrows; /* including the header row */
    size_t cap;
    char **cells; /* nrows * ncols */
};

static int table_push(struct cli_table *t, char **row)
{
    if (t->nrows >= CLI_TABLE_ROWS_MAX + 1)
        return NHID_ERR_TOO_LARGE;
    if (t->nrows == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 16;
        char **nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));
        if (nc == NULL)
            return NHID_ERR_NOMEM;
        t->cells = nc;
        t->cap = ncap;
    }
    memcpy(t->cells + t->nrows * t->ncols, row, t->ncols * sizeof(*row));
    t->nrows++;
    return NHID_OK;
}

/* Copy ncols strings from ap into a new row. */
static int table_vrow(struct cli_table *t, va_list ap)
{
    char *row[CLI_TABLE_COLS_MAX] = {0};
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        row[i] = nhid_strdup(s ? s : "n/a");
        if (row[i] == NULL)
            goto fail;
    }
    if (table_push(t, row) == NHID_OK)
        return NHID_OK;
fail:
    for (size_t i = 0; i < t->ncols; i++)
        nhid_free_secret_str(row[i]);
    return NHID_ERR_NOMEM;
}

struct cli_table *cli_table_new(size_t ncols, ...)
{
    if (ncols == 0 || ncols > CLI_TABLE_COLS_MAX)
        return NULL;
    struct cli_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    va_list ap;
    va_start(ap, ncols);
    int rc = table_vrow(t, ap);
    va_end(ap);
    if (rc < 0) {
        cli_table_free(t);
        return NULL;
    }
    return t;
}

struct cli_table *cli_table_kv(void)
{
    return cli_table_new(2, "Key", "Value");
}

int cli_table_row(struct cli_table *t, ...)
{
    va_list ap;
    va_start(ap, t);
    int rc = table_vrow(t, ap);
    va_end(ap);
    return rc;
}

int cli_table_add(struct cli_table *t, const char *key, const char *fmt, ...)
{
    char *val = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&val, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NHID_ERR_NOMEM;
    int rc = cli_table_row(t, key, val);
    nhid_free_secret_str(val);
    return rc;
}

int cli_table_add_json(struct cli_table *t, const char *key, const json_t *v)
{
    char *val = cli_json_to_text(key, v);
    if (val == NULL)
        return NHID_ERR_NOMEM;
    int rc = cli_table_row(t, key, val);
    nhid_free_secret_str(val);
    return rc;
}

/* Display width of a UTF-8 string (code points; good enough for aligned tables). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void cli_table_print(const struct cli_table *t, FILE *f)
{
    if (t == NULL)
        return;
    size_t width[CLI_TABLE_COLS_MAX] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t w = text_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t pass = 0; pass < (r == 0 ? 2u : 1u); pass++) {
            for (size_t c = 0; c < t->ncols; c++) {
                const char *cell = t->cells[r * t->ncols + c];
                size_t w = text_width(cell);
                if (pass == 1) { /* the "---" underline row under the headers */
                    for (size_t i = 0; i < w; i++)
                        fputc('-', f);
                } else {
                    /* Control characters from the server must not reach the terminal. */
                    for (const char *p = cell; *p; p++)
                        fputc((unsigned char)*p < 0x20 && *p != '\t' ? '?' : *p, f);
                }
                if (c + 1 < t->ncols)
                    for (size_t i = w; i < width[c] + 4; i++)
                        fputc(' ', f);
            }
            fputc('\n', f);
        }
    }
}

int cli_table_output(struct cli_ctx *ctx, const struct cli_table *t)
{
    if (ctx->opts.field == NULL) {
        cli_table_print(t, ctx->out);
        return CLI_EXIT_OK;
    }
    for (size_t r = 1; t->ncols == 2 && r < t->nrows; r++) {
        if (strcmp(t->cells[r * 2], ctx->opts.field) == 0) {
            fprintf(ctx->out, "%s\n", t->cells[r * 2 + 1]);
            return CLI_EXIT_OK;
        }
    }
    return cli_fail(ctx, CLI_EXIT_USAGE, "flag -field: \"%.64s\" is not in the response",
                    ctx->opts.field);
}

void cli_table_free(struct cli_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        nhid_free_secret_str(t->cells[i]);
    free(t->cells);
    free(t);
}

/* ---- value formatting ---------------------------------------------------- */

static bool is_duration_key(const char *key)
{
    static const char *const keys[] = {
        "ttl",     "creation_ttl",   "explicit_max_ttl", "period",
        "max_ttl", "lease_duration", "token_duration",   "refresh_interval"};
    if (key == NULL)
        return false;
    for (size_t i = 0; i < NHID_ARRAY_LEN(keys); i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

/* A growable string for the recursive formatter. */
struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *ns = malloc(ncap);
        if (ns == NULL) {
            b->failed = true;
            return;
        }
        if (b->s) {
            memcpy(ns, b->s, b->len);
            nhid_free_secret(b->s, b->cap);
        }
        b->s = ns;
        b->cap = ncap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void format_value(struct sbuf *b, const json_t *v, int depth)
{
    char num[64];
    if (depth > 32) { /* nesting limit: the server's JSON is untrusted */
        sb_str(b, "...");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        sb_put(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
        sb_str(b, num);
        break;
    case JSON_REAL:
        snprintf(num, sizeof(num), "%g", json_real_value(v));
        sb_str(b, num);
        break;
    case JSON_TRUE:
        sb_str(b, "true");
        break;
    case JSON_FALSE:
        sb_str(b, "false");
        break;
    case JSON_NULL:
        sb_str(b, "n/a");
        break;
    case JSON_ARRAY: {
        size_t i;
        const json_t *e;
        sb_str(b, "[");
        json_array_foreach((json_t *)v, i, e)
        {
            if (i)
                sb_str(b, " ");
            format_value(b, e, depth + 1);
        }
        sb_str(b, "]");
        break;
    }
    case JSON_OBJECT: {
        const char *k;
        const json_t *e;
        bool first = true;
        sb_str(b, "map[");
        json_object_foreach((json_t *)v, k, e)
        {
            if (!first)
                sb_str(b, " ");
            first = false;
            sb_str(b, k);
            sb_str(b, ":");
            format_value(b, e, depth + 1);
        }
        sb_str(b, "]");
        break;
    }
    }
}

char *cli_json_to_text(const char *key, const json_t *v)
{
    if (v == NULL)
        return nhid_strdup("n/a");
    if (json_is_integer(v) && is_duration_key(key)) {
        char d[64];
        nhid_duration_format((int64_t)json_integer_value(v), d, sizeof(d));
        return nhid_strdup(d);
    }
    struct sbuf b = {0};
    format_value(&b, v, 0);
    if (b.failed) {
        nhid_free_secret(b.s, b.cap);
        return NULL;
    }
    return b.s ? b.s : nhid_strdup("");
}

int cli_print_json(FILE *f, const json_t *j)
{
    if (j == NULL) {
        fputs("null\n", f);
        return NHID_OK;
    }
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s == NULL)
        return NHID_ERR_NOMEM;
    fprintf(f, "%s\n", s);
    nhid_free_secret_str(s);
    return NHID_OK;
}

json_t *cli_data(json_t *resp)
{
    json_t *d = json_object_get(resp, "data");
    return json_is_object(d) ? d : resp;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Add obj's members to t, keys sorted; prefix (may be NULL) is prepended to each key. */
static int table_add_object(struct cli_table *t, json_t *obj, const char *prefix)
{
    int rc = NHID_OK;
    size_t n = json_object_size(obj), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    const char *k;
    json_t *v;
    if (keys == NULL)
        return NHID_ERR_NOMEM;
    json_object_foreach(obj, k, v) keys[i++] = k;
    qsort(keys, n, sizeof(*keys), cmp_str);
    for (i = 0; i < n; i++) {
        char name[256];
        if (prefix)
            snprintf(name, sizeof(name), "%s%s", prefix, keys[i]);
        else
            snprintf(name, sizeof(name), "%s", keys[i]);
        char *val = cli_json_to_text(keys[i], json_object_get(obj, keys[i]));
        NHID_CHECK_ALLOC(val);
        rc = cli_table_row(t, name, val);
        nhid_free_secret_str(val);
        NHID_TRY(rc);
    }
out:
    free(keys);
    return rc;
}

int cli_print_object_table(FILE *f, json_t *obj)
{
    struct cli_table *t = cli_table_kv();
    if (t == NULL)
        return NHID_ERR_NOMEM;
    int rc = table_add_object(t, obj, NULL);
    if (rc == NHID_OK)
        cli_table_print(t, f);
    cli_table_free(t);
    return rc;
}

/* Compact JSON of v ("[\"default\"]"), as Vault prints policy lists in token tables. */
static char *json_compact(const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return nhid_strdup("[]");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Rows of Vault's token table for an auth block. */
static int table_add_auth(struct cli_table *t, json_t *auth)
{
    int rc = NHID_OK;
    char *pol = NULL, *tpol = NULL, *ipol = NULL;
    char dur[64];
    json_t *v;

    nhid_duration_format((int64_t)json_integer_value(json_object_get(auth, "lease_duration")), dur,
                         sizeof(dur));
    NHID_TRY(cli_table_add_json(t, "token", json_object_get(auth, "client_token")));
    NHID_TRY(cli_table_add_json(t, "token_accessor", json_object_get(auth, "accessor")));
    NHID_TRY(cli_table_add(t, "token_duration", "%s",
                           json_integer_value(json_object_get(auth, "lease_duration")) == 0 ? "∞"
                                                                                            : dur));
    v = json_object_get(auth, "renewable");
    NHID_TRY(cli_table_add(t, "token_renewable", "%s", json_is_true(v) ? "true" : "false"));
    tpol = json_compact(json_object_get(auth, "token_policies"));
    ipol = json_compact(json_object_get(auth, "identity_policies"));
    pol = json_compact(json_object_get(auth, "policies"));
    NHID_CHECK_ALLOC(tpol);
    NHID_CHECK_ALLOC(ipol);
    NHID_CHECK_ALLOC(pol);
    NHID_TRY(cli_table_add(t, "token_policies", "%s", tpol));
    NHID_TRY(cli_table_add(t, "identity_policies", "%s", ipol));
    NHID_TRY(cli_table_add(t, "policies", "%s", pol));
    json_t *meta = json_object_get(auth, "metadata");
    if (json_is_object(meta))
        NHID_TRY(table_add_object(t, meta, "token_meta_"));
out:
    free(pol);
    free(tpol);
    free(ipol);
    return rc;
}

int cli_print_auth(struct cli_ctx *ctx, json_t *resp)
{
    if (ctx->opts.format == CLI_FORMAT_JSON && ctx->opts.field == NULL)
        return cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    json_t *auth = json_object_get(resp, "auth");
    if (!json_is_object(auth))
        return cli_fail(ctx, CLI_EXIT_ERROR, "the server's response has no auth block");
    struct cli_table *t = cli_table_kv();
    if (t == NULL || table_add_auth(t, auth) < 0) {
        cli_table_free(t);
        return cli_fail(ctx, CLI_EXIT_USAGE, "out of memory");
    }
    int rc = cli_table_output(ctx, t);
    cli_table_free(t);
    return rc;
}

int cli_print_secret(struct cli_ctx *ctx, json_t *resp)
{
    int rc = NHID_OK;
    struct cli_table *t = NULL;
    if (ctx->opts.format == CLI_FORMAT_JSON && ctx->opts.field == NULL)
        return cli_print_json(ctx->out, resp) < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    if (resp == NULL)
        return CLI_EXIT_OK;
    t = cli_table_kv();
    NHID_CHECK_ALLOC(t);
    json_t *auth = json_object_get(resp, "auth");
    json_t *data = json_object_get(resp, "data");
    const char *lease_id = json_string_value(json_object_get(resp, "lease_id"));
    json_int_t lease = json_integer_value(json_object_get(resp, "lease_duration"));
    bool envelope = json_object_get(resp, "request_id") || json_object_get(resp, "lease_id") ||
                    json_object_get(resp, "auth");
    if (lease_id && *lease_id) {
        char d[64];
        nhid_duration_format(lease, d, sizeof(d));
        NHID_TRY(cli_table_add(t, "lease_id", "%s", lease_id));
        NHID_TRY(cli_table_add(t, "lease_duration", "%s", d));
        NHID_TRY(
            cli_table_add(t, "lease_renewable", "%s",
                          json_is_true(json_object_get(resp, "renewable")) ? "true" : "false"));
    } else if (lease > 0) {
        char d[64];
        nhid_duration_format(lease, d, sizeof(d));
        NHID_TRY(cli_table_add(t, "refresh_interval", "%s", d));
    }
    if (json_is_object(auth))
        NHID_TRY(table_add_auth(t, auth));
    if (json_is_object(data))
        NHID_TRY(table_add_object(t, data, NULL));
    else if (!envelope && json_is_object(resp))
        NHID_TRY(table_add_object(t, resp, NULL)); /* a sys endpoint without the envelope */
    if (ctx->opts.field) {
        int code = cli_table_output(ctx, t);
        cli_table_free(t);
        return code;
    }
    cli_table_print(t, ctx->out);
    json_t *warnings = json_object_get(resp, "warnings");
    if (json_is_array(warnings) && json_array_size(warnings) > 0) {
        size_t i;
        json_t *w;
        fprintf(ctx->out, "\nWARNING! The following warnings were returned from nhid:\n\n");
        json_array_foreach(warnings, i, w)
        {
            if (json_is_string(w)) {
                fputs("  * ", ctx->out);
                for (const char *p = json_string_value(w); *p; p++)
                    fputc((unsigned char)*p < 0x20 ? '?' : *p, ctx->out);
                fputc('\n', ctx->out);
            }
        }
    }
out:
    cli_table_free(t);
    if (rc < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "cannot print the response: %s", nhid_strerror(rc));
    return CLI_EXIT_OK;
}

int cli_fail(struct cli_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    fputs("Error: ", ctx->err);
    va_start(ap, fmt);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    fputc('\n', ctx->err);
    return code;
}

/* Wipe strings of j in place, unless a subtree is shared with another owner. */
static void wipe_json(json_t *j, int depth)
{
    if (j == NULL || j->refcount > 1 || depth > 64)
        return;
    if (json_is_string(j)) {
        /* jansson owns this heap buffer; only the pointer is const. */
        nhid_wipe((void *)json_string_value(j), json_string_length(j));
    } else if (json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) wipe_json(e, depth + 1);
    } else if (json_is_object(j)) {
        const char *k;
        json_t *e;
        json_object_foreach(j, k, e) wipe_json(e, depth + 1);
    }
}

void cli_json_free(json_t *j)
{
    if (j == NULL)
        return;
    wipe_json(j, 0);
    json_decref(j);
}
