/*
 * cedar/cedar_cli.c — `nhid policy check|eval|test`.
 *
 *   check [-schema F] FILE...     syntax (and, with -schema, validation)
 *   eval  -policies F ...         one authorization request, or -batch
 *   test  [-root DIR] FILE...     cedar-integration-tests JSON test files
 *
 * Flags accept `-flag value` and `-flag=value` (also with `--`).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cedar/internal.h"

#define MAX_FILE_SIZE (256u << 20)

/* ---- small helpers ---------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        if (n == cap) {
            if (cap >= MAX_FILE_SIZE) {
                snprintf(err, errlen, "%s: larger than %u bytes", path, MAX_FILE_SIZE);
                free(buf);
                buf = NULL;
                break;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: read error", path);
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    fclose(f);
    if (buf == NULL) {
        if (err[0] == '\0')
            snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

struct flag {
    const char *name;
    const char **value; /* string flag */
    bool *on;           /* boolean flag */
};

/* Parse flags; positional arguments are collected into pos (argv order).
 * Returns 0, 1 for -h, or -1 after printing an error. */
static int parse_flags(int argc, char **argv, struct flag *flags, size_t nflags, char **pos,
                       size_t *npos, const char *usage)
{
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                pos[(*npos)++] = argv[i];
            break;
        }
        const char *name = a + 1;
        if (*name == '-')
            name++;
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        struct flag *f = NULL;
        for (size_t k = 0; k < nflags; k++)
            if (strlen(flags[k].name) == nl && strncmp(flags[k].name, name, nl) == 0)
                f = &flags[k];
        if (f == NULL) {
            fprintf(stderr, "unknown flag -%.*s\n%s", (int)nl, name, usage);
            return -1;
        }
        if (f->on != NULL) {
            if (eq == NULL || strcmp(eq + 1, "true") == 0)
                *f->on = true;
            else if (strcmp(eq + 1, "false") == 0)
                *f->on = false;
            else {
                fprintf(stderr, "flag -%s takes true or false\n", f->name);
                return -1;
            }
            continue;
        }
        if (eq != NULL) {
            *f->value = eq + 1;
        } else if (i + 1 < argc) {
            *f->value = argv[++i];
        } else {
            fprintf(stderr, "flag -%s needs a value\n", f->name);
            return -1;
        }
    }
    return 0;
}

/* Print "file:line:col: message", the source line and a caret. */
static void print_diag(FILE *out, const char *msg, const char *src, size_t srclen)
{
    fprintf(out, "%s\n", msg);
    if (src == NULL)
        return;
    /* find ":line:col:" after the file name (file names may contain ':'
     * rarely; take the first ":<digits>:<digits>:" group) */
    const char *p = msg;
    unsigned line = 0, col = 0;
    while ((p = strchr(p, ':')) != NULL) {
        char *e1, *e2;
        unsigned long l = strtoul(p + 1, &e1, 10);
        if (e1 != p + 1 && *e1 == ':') {
            unsigned long c = strtoul(e1 + 1, &e2, 10);
            if (e2 != e1 + 1 && *e2 == ':') {
                line = (unsigned)l;
                col = (unsigned)c;
                break;
            }
        }
        p++;
    }
    if (line == 0)
        return;
    size_t off = 0;
    for (unsigned l = 1; l < line && off < srclen; off++)
        if (src[off] == '\n')
            l++;
    size_t end = off;
    while (end < srclen && src[end] != '\n')
        end++;
    fprintf(out, "  %.*s\n  ", (int)(end - off), src + off);
    /* caret under the column (columns count code points; tabs kept) */
    size_t i = off;
    for (unsigned c = 1; c < col && i < end; c++) {
        fputc(src[i] == '\t' ? '\t' : ' ', out);
        i++;
        while (i < end && ((unsigned char)src[i] & 0xc0) == 0x80)
            i++;
    }
    fputs("^\n", out);
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int load_schema(const char *path, struct cedar_schema **out, char *err, size_t errlen)
{
    size_t len;
    char *text = read_file(path, &len, err, errlen);
    if (text == NULL)
        return NHID_ERR_IO;
    int rc = cedar_schema_parse(text, len, path, has_suffix(path, ".json"), out, err, errlen);
    free(text);
    return rc;
}

/* ---- check ---------------------------------------------------------------------- */

static const char check_usage[] =
    "usage: nhid policy check [-schema FILE] FILE...\n"
    "  Parse Cedar policy files and report syntax errors as file:line:col.\n"
    "  -schema FILE   also validate the policies against a schema\n"
    "                 (Cedar schema syntax, or JSON when FILE ends in .json)\n";

static int cmd_check(int argc, char **argv)
{
    const char *schema_path = NULL;
    struct flag flags[] = {{"schema", &schema_path, NULL}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    size_t npos;
    int ret = 0;
    struct cedar_schema *schema = NULL;
    if (pos == NULL)
        return 2;
    int r = parse_flags(argc, argv, flags, NHID_ARRAY_LEN(flags), pos, &npos, check_usage);
    if (r != 0) {
        free(pos);
        return r > 0 ? 0 : 2;
    }
    if (npos == 0) {
        fputs(check_usage, stderr);
        free(pos);
        return 2;
    }
    char err[512] = "";
    if (schema_path != NULL) {
        int rc = load_schema(schema_path, &schema, err, sizeof(err));
        if (rc == NHID_ERR_UNSUPPORTED) {
            fprintf(stderr, "warning: schema validation is not available yet; checking syntax only\n");
        } else if (rc < 0) {
            size_t sl = 0;
            char e2[64] = "";
            char *st = read_file(schema_path, &sl, e2, sizeof(e2));
            print_diag(stdout, err, st, sl);
            free(st);
            free(pos);
            return 1;
        }
    }
    for (size_t i = 0; i < npos; i++) {
        size_t len;
        err[0] = '\0';
        char *text = read_file(pos[i], &len, err, sizeof(err));
        if (text == NULL) {
            fprintf(stdout, "%s\n", err);
            ret = 1;
            continue;
        }
        struct cedar_policy_set *ps = NULL;
        if (cedar_policy_set_parse(text, len, pos[i], &ps, err, sizeof(err)) < 0) {
            print_diag(stdout, err, text, len);
            ret = 1;
        } else if (schema != NULL) {
            json_t *diags = json_array();
            int rc = diags ? cedar_validate_policies(schema, ps, diags) : NHID_ERR_NOMEM;
            size_t k;
            json_t *d;
            json_array_foreach(diags, k, d) {
                if (json_is_string(d))
                    print_diag(stdout, json_string_value(d), text, len);
            }
            if (rc == NHID_ERR_UNSUPPORTED) {
                fprintf(stderr, "warning: schema validation is not available yet\n");
            } else if (rc < 0) {
                if (json_array_size(diags) == 0)
                    fprintf(stdout, "%s: validation failed: %s\n", pos[i], nhid_strerror(rc));
                ret = 1;
            }
            json_decref(diags);
        }
        cedar_policy_set_free(ps);
        free(text);
    }
    cedar_schema_free(schema);
    free(pos);
    return ret;
}

/* ---- eval ------------------------------------------------------------------------ */

static const char eval_usage[] =
    "usage: nhid policy eval -policies FILE [-entities FILE] -principal 'T::\"id\"'\n"
    "                        -action 'Action::\"x\"' -resource 'T::\"id\"' [-context JSON]\n"
    "                        [-schema FILE] [-format=text|json]\n"
    "       nhid policy eval -batch [FILE]   (JSON lines; see docs/policy-language.md)\n"
    "  Evaluate one authorization request and print ALLOW or DENY, the\n"
    "  determining policies and the policies that produced errors.\n"
    "  -context takes a JSON object, or @FILE to read it from a file.\n";

static void print_decision_text(const struct cedar_decision *d)
{
    printf("%s\n", d->allow ? "ALLOW" : "DENY");
    printf("reasons:");
    for (size_t i = 0; i < d->nreasons; i++)
        printf(" %.*s", (int)d->reasons[i]->id.len, d->reasons[i]->id.ptr);
    printf("\nerrors:");
    if (d->nerrors == 0)
        printf("\n");
    else
        printf("\n");
    for (size_t i = 0; i < d->nerrors; i++)
        printf("  %.*s: %s\n", (int)d->errors[i].policy->id.len, d->errors[i].policy->id.ptr,
               d->errors[i].message);
}

static json_t *decision_json(const struct cedar_decision *d)
{
    json_t *o = json_object(), *r = json_array(), *e = json_array();
    if (o == NULL || r == NULL || e == NULL) {
        json_decref(o);
        json_decref(r);
        json_decref(e);
        return NULL;
    }
    for (size_t i = 0; i < d->nreasons; i++)
        json_array_append_new(r, json_stringn(d->reasons[i]->id.ptr, d->reasons[i]->id.len));
    for (size_t i = 0; i < d->nerrors; i++)
        json_array_append_new(e, json_pack("{s:s%,s:s}", "policy", d->errors[i].policy->id.ptr,
                                           d->errors[i].policy->id.len, "message",
                                           d->errors[i].message));
    json_object_set_new(o, "decision", json_string(d->allow ? "allow" : "deny"));
    json_object_set_new(o, "reasons", r);
    json_object_set_new(o, "errors", e);
    return o;
}

static int uid_from_test_json(struct cedar_arena *a, const json_t *j, struct cedar_uid *out,
                              char *err, size_t errlen);

/* One batch line: {"policies": text, "entities": [...], "principal": uid,
 * "action": uid, "resource": uid, "context": {...}} -> decision JSON. */
static json_t *batch_one(const json_t *in)
{
    char err[512] = "";
    json_t *res = NULL;
    struct cedar_policy_set *ps = NULL;
    struct cedar_entities *es = NULL;
    struct cedar_arena a;
    struct cedar_decision d;
    cedar_arena_init(&a);
    cedar_decision_init(&d);
    const json_t *pt = json_object_get(in, "policies");
    if (!json_is_string(pt)) {
        snprintf(err, sizeof(err), "\"policies\" must be a string");
        goto fail;
    }
    if (cedar_policy_set_parse(json_string_value(pt), json_string_length(pt), "<batch>", &ps, err,
                               sizeof(err)) < 0)
        goto parse_fail;
    json_t *ej = json_object_get(in, "entities");
    if (ej == NULL) {
        if (cedar_entities_new(&es) < 0)
            goto fail;
    } else if (cedar_entities_from_json(ej, &es, err, sizeof(err)) < 0) {
        goto fail;
    }
    struct cedar_uid p, ac, r;
    struct cedar_request req;
    if (uid_from_test_json(&a, json_object_get(in, "principal"), &p, err, sizeof(err)) < 0 ||
        uid_from_test_json(&a, json_object_get(in, "action"), &ac, err, sizeof(err)) < 0 ||
        uid_from_test_json(&a, json_object_get(in, "resource"), &r, err, sizeof(err)) < 0 ||
        cedar_request_make(&a, &p, &ac, &r, json_object_get(in, "context"), &req, err,
                           sizeof(err)) < 0)
        goto fail;
    if (cedar_authorize(ps, es, &req, &d) < 0) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail;
    }
    res = decision_json(&d);
    goto out;
parse_fail:
    res = json_pack("{s:s,s:s}", "parse_error", err, "decision", "error");
    goto out;
fail:
    res = json_pack("{s:s,s:s}", "error", err, "decision", "error");
out:
    cedar_decision_free(&d);
    cedar_policy_set_free(ps);
    cedar_entities_free(es);
    cedar_arena_free(&a);
    return res;
}

static int eval_batch(const char *path)
{
    FILE *f = (path == NULL || strcmp(path, "-") == 0) ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (n <= 1)
            continue;
        json_error_t je;
        json_t *in = cedar_json_loadb(line, (size_t)n, 0, &je);
        json_t *res = in ? batch_one(in)
                         : json_pack("{s:s,s:s}", "error", je.text, "decision", "error");
        char *s = res ? json_dumps(res, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "{\"error\":\"out of memory\"}");
        fflush(stdout);
        free(s);
        json_decref(res);
        json_decref(in);
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return 0;
}

static int cmd_eval(int argc, char **argv)
{
    const char *policies = NULL, *entities = NULL, *principal = NULL, *action = NULL,
               *resource = NULL, *context = NULL, *schema_path = NULL, *format = "text";
    bool batch = false;
    struct flag flags[] = {
        {"policies", &policies, NULL},   {"entities", &entities, NULL},
        {"principal", &principal, NULL}, {"action", &action, NULL},
        {"resource", &resource, NULL},   {"context", &context, NULL},
        {"schema", &schema_path, NULL},  {"format", &format, NULL},
        {"batch", NULL, &batch},
    };
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    size_t npos;
    if (pos == NULL)
        return 2;
    int r = parse_flags(argc, argv, flags, NHID_ARRAY_LEN(flags), pos, &npos, eval_usage);
    if (r != 0) {
        free(pos);
        return r > 0 ? 0 : 2;
    }
    if (batch) {
        int rc = eval_batch(npos > 0 ? pos[0] : NULL);
        free(pos);
        return rc;
    }
    free(pos);
    if (policies == NULL || principal == NULL || action == NULL || resource == NULL) {
        fprintf(stderr, "nhid policy eval: -policies, -principal, -action and -resource are "
                        "required\n%s", eval_usage);
        return 2;
    }
    bool json_out = strcmp(format, "json") == 0;
    if (!json_out && strcmp(format, "text") != 0) {
        fprintf(stderr, "nhid policy eval: -format must be text or json\n");
        return 2;
    }
    int ret = 2;
    char err[512] = "";
    size_t len;
    char *ptext = NULL, *ctext = NULL;
    json_t *cj = NULL;
    struct cedar_policy_set *ps = NULL;
    struct cedar_entities *es = NULL;
    struct cedar_schema *schema = NULL;
    struct cedar_arena a;
    struct cedar_decision d;
    cedar_arena_init(&a);
    cedar_decision_init(&d);
    ptext = read_file(policies, &len, err, sizeof(err));
    if (ptext == NULL) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (cedar_policy_set_parse(ptext, len, policies, &ps, err, sizeof(err)) < 0) {
        print_diag(stderr, err, ptext, len);
        goto out;
    }
    if (entities != NULL) {
        char *etext = read_file(entities, &len, err, sizeof(err));
        if (etext == NULL) {
            fprintf(stderr, "%s\n", err);
            goto out;
        }
        int rc = cedar_entities_from_json_text(etext, len, &es, err, sizeof(err));
        free(etext);
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", entities, err);
            goto out;
        }
    } else if (cedar_entities_new(&es) < 0) {
        goto out;
    }
    struct cedar_uid pu, au, ru;
    const char *names[3] = {"principal", "action", "resource"};
    const char *vals[3] = {principal, action, resource};
    struct cedar_uid *outs[3] = {&pu, &au, &ru};
    for (int i = 0; i < 3; i++) {
        if (cedar_uid_parse(&a, vals[i], strlen(vals[i]), outs[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "-%s %s: %s\n", names[i], vals[i], err);
            goto out;
        }
    }
    if (context != NULL) {
        const char *ct = context;
        size_t cl = strlen(context);
        if (context[0] == '@') {
            ctext = read_file(context + 1, &cl, err, sizeof(err));
            if (ctext == NULL) {
                fprintf(stderr, "%s\n", err);
                goto out;
            }
            ct = ctext;
        }
        json_error_t je;
        cj = cedar_json_loadb(ct, cl, JSON_REJECT_DUPLICATES, &je);
        if (cj == NULL) {
            fprintf(stderr, "-context: invalid JSON at %d:%d: %s\n", je.line, je.column, je.text);
            goto out;
        }
    }
    struct cedar_request req;
    if (cedar_request_make(&a, &pu, &au, &ru, cj, &req, err, sizeof(err)) < 0) {
        fprintf(stderr, "-context: %s\n", err);
        goto out;
    }
    if (schema_path != NULL) {
        int rc = load_schema(schema_path, &schema, err, sizeof(err));
        if (rc == NHID_ERR_UNSUPPORTED) {
            fprintf(stderr, "warning: schema validation is not available yet\n");
        } else if (rc < 0) {
            fprintf(stderr, "%s\n", err);
            goto out;
        } else {
            rc = cedar_validate_request(schema, &req, err, sizeof(err));
            if (rc < 0 && rc != NHID_ERR_UNSUPPORTED) {
                fprintf(stderr, "request does not match the schema: %s\n", err);
                goto out;
            }
            rc = cedar_validate_entities(schema, es, err, sizeof(err));
            if (rc < 0 && rc != NHID_ERR_UNSUPPORTED) {
                fprintf(stderr, "entities do not match the schema: %s\n", err);
                goto out;
            }
        }
    }
    if (cedar_authorize(ps, es, &req, &d) < 0) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if (json_out) {
        json_t *o = decision_json(&d);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
    } else {
        print_decision_text(&d);
    }
    ret = 0;
out:
    cedar_decision_free(&d);
    cedar_arena_free(&a);
    cedar_schema_free(schema);
    cedar_entities_free(es);
    cedar_policy_set_free(ps);
    json_decref(cj);
    free(ctext);
    free(ptext);
    return ret;
}

/* ---- test ------------------------------------------------------------------------- */

static const char test_usage[] =
    "usage: nhid policy test [-root DIR] [-verbose] [-no-validate] FILE...\n"
    "  Run Cedar integration test files (cedar-integration-tests JSON format).\n"
    "  Paths inside test files are relative to -root (default: current dir).\n"
    "  Prints a diff for every failing request and ends with\n"
    "  \"N passed, M failed\"; exits 1 if anything failed.\n";

static int uid_from_test_json(struct cedar_arena *a, const json_t *j, struct cedar_uid *out,
                              char *err, size_t errlen)
{
    const struct cedar_uid *u;
    if (j == NULL) {
        snprintf(err, errlen, "missing principal/action/resource (unknowns are not supported)");
        return NHID_ERR_UNSUPPORTED;
    }
    int rc = cedar_uid_from_json(a, j, &u, err, errlen);
    if (rc < 0)
        return rc;
    *out = *u;
    return NHID_OK;
}

static char *join_path(const char *root, const char *rel)
{
    if (rel[0] == '/' || root == NULL || root[0] == '\0')
        return nhid_strdup(rel);
    size_t n = strlen(root) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", root, rel);
    return p;
}

static char *read_rel(const char *root, const char *rel, size_t *len, char *err, size_t errlen)
{
    char *p = join_path(root, rel);
    if (p == NULL)
        return NULL;
    char *t = read_file(p, len, err, errlen);
    free(p);
    return t;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Compare a JSON array of ids with a list; both treated as sets. */
static bool same_ids(const json_t *want, const char **got, size_t ngot)
{
    size_t nw = json_array_size(want);
    if (nw != ngot)
        return false;
    const char **w = calloc(nw ? nw : 1, sizeof(*w));
    if (w == NULL)
        return false;
    for (size_t i = 0; i < nw; i++) {
        json_t *x = json_array_get(want, i);
        w[i] = json_is_string(x) ? json_string_value(x) : (json_is_object(x) && json_is_string(json_object_get(x, "policyId")) ? json_string_value(json_object_get(x, "policyId")) : "");
    }
    qsort(w, nw, sizeof(*w), str_cmp);
    const char **g = calloc(ngot ? ngot : 1, sizeof(*g));
    if (g == NULL) {
        free(w);
        return false;
    }
    memcpy(g, got, ngot * sizeof(*g));
    qsort(g, ngot, sizeof(*g), str_cmp);
    bool ok = true;
    for (size_t i = 0; i < nw; i++)
        ok &= strcmp(w[i], g[i]) == 0;
    free(w);
    free(g);
    return ok;
}

struct test_totals {
    size_t passed, failed;
    bool verbose, validate;
};

static void fail_line(struct test_totals *t, const char *file, const char *fmt, ...)
    NHID_PRINTF(3, 4);
static void fail_line(struct test_totals *t, const char *file, const char *fmt, ...)
{
    va_list ap;
    printf("FAIL %s: ", file);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    t->failed++;
}

static void run_test_file(const char *root, const char *path, struct test_totals *tt)
{
    char err[512] = "";
    size_t len;
    json_error_t je;
    json_t *tj = NULL;
    char *ptext = NULL, *etext = NULL;
    struct cedar_policy_set *ps = NULL;
    struct cedar_entities *es = NULL;
    struct cedar_schema *schema = NULL;
    struct cedar_decision d;
    cedar_decision_init(&d);
    tj = cedar_json_load_file(path, 0, &je);
    if (tj == NULL) {
        fail_line(tt, path, "cannot load test file: %d:%d: %s", je.line, je.column, je.text);
        goto out;
    }
    const char *pol = json_string_value(json_object_get(tj, "policies"));
    const char *ent = json_string_value(json_object_get(tj, "entities"));
    const char *sch = json_string_value(json_object_get(tj, "schema"));
    json_t *reqs = json_object_get(tj, "requests");
    if (pol == NULL || !json_is_array(reqs)) {
        fail_line(tt, path, "test file lacks \"policies\" or \"requests\"");
        goto out;
    }
    ptext = read_rel(root, pol, &len, err, sizeof(err));
    if (ptext == NULL) {
        fail_line(tt, path, "%s", err);
        goto out;
    }
    if (cedar_policy_set_parse(ptext, len, pol, &ps, err, sizeof(err)) < 0) {
        fail_line(tt, path, "policies do not parse: %s", err);
        tt->failed += json_array_size(reqs) ? json_array_size(reqs) - 1 : 0;
        goto out;
    }
    if (ent != NULL) {
        etext = read_rel(root, ent, &len, err, sizeof(err));
        if (etext == NULL) {
            fail_line(tt, path, "%s", err);
            goto out;
        }
        if (cedar_entities_from_json_text(etext, len, &es, err, sizeof(err)) < 0) {
            fail_line(tt, path, "entities: %s", err);
            tt->failed += json_array_size(reqs) ? json_array_size(reqs) - 1 : 0;
            goto out;
        }
    } else if (cedar_entities_new(&es) < 0) {
        goto out;
    }
    /* shouldValidate, when a validator is available */
    json_t *sv = json_object_get(tj, "shouldValidate");
    if (tt->validate && sch != NULL && json_is_boolean(sv)) {
        char *stext = read_rel(root, sch, &len, err, sizeof(err));
        int rc = stext ? cedar_schema_parse(stext, len, sch, has_suffix(sch, ".json"), &schema,
                                            err, sizeof(err))
                       : NHID_ERR_IO;
        free(stext);
        if (rc == NHID_ERR_UNSUPPORTED) {
            schema = NULL; /* validator not available yet: skip */
        } else if (rc < 0) {
            fail_line(tt, path, "schema: %s", err);
        } else {
            json_t *diags = json_array();
            rc = cedar_validate_policies(schema, ps, diags);
            if (rc != NHID_ERR_UNSUPPORTED) {
                bool valid = rc == NHID_OK;
                if (valid != json_is_true(sv)) {
                    fail_line(tt, path, "shouldValidate: want %s, got %s",
                              json_is_true(sv) ? "true" : "false", valid ? "true" : "false");
                    size_t k;
                    json_t *dj;
                    json_array_foreach(diags, k, dj) {
                        if (k < 5 && json_is_string(dj))
                            printf("    %s\n", json_string_value(dj));
                    }
                } else {
                    tt->passed++;
                }
            }
            json_decref(diags);
        }
    }
    size_t ri;
    json_t *rj;
    json_array_foreach(reqs, ri, rj) {
        struct cedar_arena a;
        cedar_arena_init(&a);
        const char *desc = json_string_value(json_object_get(rj, "description"));
        struct cedar_uid p, ac, r;
        struct cedar_request req;
        int rc;
        if ((rc = uid_from_test_json(&a, json_object_get(rj, "principal"), &p, err, sizeof(err))) <
                0 ||
            (rc = uid_from_test_json(&a, json_object_get(rj, "action"), &ac, err, sizeof(err))) <
                0 ||
            (rc = uid_from_test_json(&a, json_object_get(rj, "resource"), &r, err, sizeof(err))) <
                0 ||
            (rc = cedar_request_make(&a, &p, &ac, &r, json_object_get(rj, "context"), &req, err,
                                     sizeof(err))) < 0) {
            fail_line(tt, path, "request %zu (%s): %s", ri, desc ? desc : "", err);
            cedar_arena_free(&a);
            continue;
        }
        if (cedar_authorize(ps, es, &req, &d) < 0) {
            fail_line(tt, path, "request %zu: out of memory", ri);
            cedar_arena_free(&a);
            continue;
        }
        const char *want = json_string_value(json_object_get(rj, "decision"));
        bool want_allow = want != NULL && strcasecmp(want, "allow") == 0;
        const char *got_r[1024], *got_e[1024];
        size_t nr = d.nreasons < 1024 ? d.nreasons : 1024, ne = d.nerrors < 1024 ? d.nerrors : 1024;
        for (size_t i = 0; i < nr; i++)
            got_r[i] = d.reasons[i]->id.ptr;
        for (size_t i = 0; i < ne; i++)
            got_e[i] = d.errors[i].policy->id.ptr;
        json_t *wr = json_object_get(rj, "reason"), *we = json_object_get(rj, "errors");
        bool ok = want != NULL && want_allow == d.allow && same_ids(wr, got_r, nr) &&
                  same_ids(we, got_e, ne);
        if (ok) {
            tt->passed++;
            if (tt->verbose)
                printf("ok   %s: request %zu (%s)\n", path, ri, desc ? desc : "");
        } else {
            fail_line(tt, path, "request %zu (%s)", ri, desc ? desc : "");
            char *ws = json_dumps(wr, JSON_COMPACT), *wes = json_dumps(we, JSON_COMPACT);
            printf("    - decision %s reason %s errors %s\n", want ? want : "?", ws ? ws : "[]",
                   wes ? wes : "[]");
            printf("    + decision %s reason [", d.allow ? "allow" : "deny");
            for (size_t i = 0; i < nr; i++)
                printf("%s\"%s\"", i ? "," : "", got_r[i]);
            printf("] errors [");
            for (size_t i = 0; i < ne; i++)
                printf("%s\"%s\"", i ? "," : "", got_e[i]);
            printf("]\n");
            for (size_t i = 0; i < ne; i++)
                printf("      %s: %s\n", got_e[i], d.errors[i].message);
            free(ws);
            free(wes);
        }
        cedar_arena_free(&a);
    }
out:
    cedar_decision_free(&d);
    cedar_schema_free(schema);
    cedar_entities_free(es);
    cedar_policy_set_free(ps);
    free(ptext);
    free(etext);
    json_decref(tj);
}

static int cmd_test(int argc, char **argv)
{
    const char *root = ".";
    bool verbose = false, novalidate = false;
    struct flag flags[] = {{"root", &root, NULL},
                           {"verbose", NULL, &verbose},
                           {"v", NULL, &verbose},
                           {"no-validate", NULL, &novalidate}};
    char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    size_t npos;
    if (pos == NULL)
        return 2;
    int r = parse_flags(argc, argv, flags, NHID_ARRAY_LEN(flags), pos, &npos, test_usage);
    if (r != 0) {
        free(pos);
        return r > 0 ? 0 : 2;
    }
    if (npos == 0) {
        fputs(test_usage, stderr);
        free(pos);
        return 2;
    }
    struct test_totals tt = {0, 0, verbose, !novalidate};
    for (size_t i = 0; i < npos; i++) {
        /* test files named relative to cwd, else to root */
        FILE *f = fopen(pos[i], "r");
        if (f != NULL) {
            fclose(f);
            run_test_file(root, pos[i], &tt);
        } else {
            char *p = join_path(root, pos[i]);
            run_test_file(root, p ? p : pos[i], &tt);
            free(p);
        }
    }
    printf("%zu passed, %zu failed\n", tt.passed, tt.failed);
    free(pos);
    return tt.failed ? 1 : 0;
}

/* ---- entry ------------------------------------------------------------------------ */

static const char policy_usage[] =
    "usage: nhid policy <command> [flags]\n"
    "commands:\n"
    "  check   check Cedar policy files for syntax (and schema) errors\n"
    "  eval    evaluate an authorization request\n"
    "  test    run Cedar integration test files\n"
    "Run `nhid policy <command> -h` for the flags of each command.\n";

int nhid_policy_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(policy_usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(policy_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "test") == 0)
        return cmd_test(argc - 1, argv + 1);
    fprintf(stderr, "nhid policy: unknown command \"%s\"\n%s", cmd, policy_usage);
    return 2;
}
