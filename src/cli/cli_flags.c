/* cli_flags — flag parsing, `key=value` arguments and small input helpers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli_internal.h"

int cli_parse_bool(const char *s, bool *out)
{
    if (s == NULL)
        return NHID_ERR_INVALID;
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcasecmp(s, "yes") == 0 ||
        strcasecmp(s, "t") == 0) {
        *out = true;
        return NHID_OK;
    }
    if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcasecmp(s, "no") == 0 ||
        strcasecmp(s, "f") == 0) {
        *out = false;
        return NHID_OK;
    }
    return NHID_ERR_INVALID;
}

/* The flags every command accepts, handled into ctx->opts. */
enum global_flag {
    G_FIELD,
    G_ADDRESS,
    G_CA_CERT,
    G_CLIENT_CERT,
    G_CLIENT_KEY,
    G_SKIP_VERIFY,
    G_FORMAT,
    G_HELP
};
static const struct {
    const char *name;
    enum global_flag id;
    bool takes_value;
} global_flags[] = {
    {"address", G_ADDRESS, true},
    {"ca-cert", G_CA_CERT, true},
    {"client-cert", G_CLIENT_CERT, true},
    {"client-key", G_CLIENT_KEY, true},
    {"tls-skip-verify", G_SKIP_VERIFY, false},
    {"format", G_FORMAT, true},
    {"field", G_FIELD, true},
    {"h", G_HELP, false},
    {"help", G_HELP, false},
};

/* Apply one value to a command flag. */
static int set_flag(struct cli_flag *f, const char *value, char *err, size_t errlen)
{
    switch (f->type) {
    case CLI_FLAG_STR:
        *(const char **)f->dst = value;
        break;
    case CLI_FLAG_BOOL: {
        bool b;
        if (cli_parse_bool(value, &b) < 0) {
            snprintf(err, errlen, "flag -%s: \"%.64s\" is not true or false", f->name, value);
            return NHID_ERR_INVALID;
        }
        *(bool *)f->dst = b;
        break;
    }
    case CLI_FLAG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (*value == '\0' || *end != '\0' || errno != 0) {
            snprintf(err, errlen, "flag -%s: \"%.64s\" is not a number", f->name, value);
            return NHID_ERR_INVALID;
        }
        *(long long *)f->dst = v;
        break;
    }
    case CLI_FLAG_DURATION: {
        char msg[160];
        int64_t secs;
        if (nhid_duration_parse(value, &secs, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "flag -%s: %s", f->name, msg);
            return NHID_ERR_INVALID;
        }
        struct cli_duration *d = f->dst;
        d->text = value;
        d->seconds = secs;
        break;
    }
    case CLI_FLAG_STRS: {
        struct cli_strv *sv = f->dst;
        if (sv->n >= CLI_STRV_MAX) {
            snprintf(err, errlen, "flag -%s given more than %d times", f->name, CLI_STRV_MAX);
            return NHID_ERR_TOO_LARGE;
        }
        sv->v[sv->n++] = value;
        break;
    }
    }
    f->seen = true;
    return NHID_OK;
}

static int set_global(struct cli_ctx *ctx, enum global_flag id, const char *value, char *err,
                      size_t errlen)
{
    switch (id) {
    case G_ADDRESS:
        ctx->opts.addr = value;
        break;
    case G_FIELD:
        ctx->opts.field = value;
        break;
    case G_CA_CERT:
        ctx->opts.ca_cert = value;
        break;
    case G_CLIENT_CERT:
        ctx->opts.client_cert = value;
        break;
    case G_CLIENT_KEY:
        ctx->opts.client_key = value;
        break;
    case G_SKIP_VERIFY:
        if (value && cli_parse_bool(value, &ctx->opts.skip_verify) < 0) {
            snprintf(err, errlen, "flag -tls-skip-verify: \"%.64s\" is not true or false", value);
            return NHID_ERR_INVALID;
        }
        if (value == NULL)
            ctx->opts.skip_verify = true;
        break;
    case G_FORMAT:
        if (strcmp(value, "table") == 0) {
            ctx->opts.format = CLI_FORMAT_TABLE;
        } else if (strcmp(value, "json") == 0) {
            ctx->opts.format = CLI_FORMAT_JSON;
        } else {
            snprintf(err, errlen, "flag -format: \"%.64s\" is not a format (use table or json)",
                     value);
            return NHID_ERR_INVALID;
        }
        break;
    case G_HELP:
        if (value && cli_parse_bool(value, &ctx->help) < 0) {
            snprintf(err, errlen, "flag -help: \"%.64s\" is not true or false", value);
            return NHID_ERR_INVALID;
        }
        if (value == NULL)
            ctx->help = true;
        break;
    }
    return NHID_OK;
}

int cli_parse_flags(struct cli_ctx *ctx, int argc, char **argv, struct cli_flag *flags, char *err,
                    size_t errlen)
{
    /* Positional args are collected into a new array; argv is never modified. */
    char **pos = calloc((size_t)(argc > 0 ? argc : 1), sizeof(*pos));
    size_t npos = 0;
    bool flags_done = false;
    int rc = NHID_OK;

    if (pos == NULL) {
        snprintf(err, errlen, "out of memory");
        return NHID_ERR_NOMEM;
    }
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (flags_done || a[0] != '-' || a[1] == '\0') {
            if (npos >= CLI_ARGS_MAX) {
                snprintf(err, errlen, "too many arguments (at most %d)", CLI_ARGS_MAX);
                NHID_FAIL(NHID_ERR_TOO_LARGE);
            }
            pos[npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        const char *name = a + 1;
        if (*name == '-')
            name++;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *inline_val = eq ? eq + 1 : NULL;
        if (nlen == 0) {
            snprintf(err, errlen, "malformed flag %.64s", a);
            NHID_FAIL(NHID_ERR_INVALID);
        }

        /* Command flags first, so a command may reuse a global name on purpose. */
        struct cli_flag *f = NULL;
        for (struct cli_flag *c = flags; c && c->name; c++) {
            if (strlen(c->name) == nlen && strncmp(c->name, name, nlen) == 0) {
                f = c;
                break;
            }
        }
        if (f) {
            const char *val = inline_val;
            if (val == NULL && f->type == CLI_FLAG_BOOL) {
                val = "true";
            } else if (val == NULL) {
                if (i + 1 >= argc) {
                    snprintf(err, errlen, "flag -%s needs a value (-%s %s)", f->name, f->name,
                             f->arg ? f->arg : "VALUE");
                    NHID_FAIL(NHID_ERR_INVALID);
                }
                val = argv[++i];
            }
            NHID_TRY(set_flag(f, val, err, errlen));
            continue;
        }
        size_t g;
        for (g = 0; g < NHID_ARRAY_LEN(global_flags); g++) {
            if (strlen(global_flags[g].name) == nlen &&
                strncmp(global_flags[g].name, name, nlen) == 0)
                break;
        }
        if (g == NHID_ARRAY_LEN(global_flags)) {
            snprintf(err, errlen, "unknown flag -%.*s", (int)(nlen > 64 ? 64 : nlen), name);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        const char *val = inline_val;
        if (val == NULL && global_flags[g].takes_value) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "flag -%s needs a value", global_flags[g].name);
                NHID_FAIL(NHID_ERR_INVALID);
            }
            val = argv[++i];
        }
        NHID_TRY(set_global(ctx, global_flags[g].id, val, err, errlen));
    }

    /* Hand the positional list to ctx; it stays valid for the command's life. */
    free(ctx->args);
    ctx->args = pos;
    ctx->nargs = npos;
    pos = NULL;
out:
    if (rc < 0)
        free(pos);
    return rc;
}

void cli_print_usage(const struct cli_command *cmd, const struct cli_flag *flags, FILE *f)
{
    if (cmd && cmd->usage)
        fprintf(f, "%s\n", cmd->usage);
    if (flags && flags->name) {
        fprintf(f, "\nCommand options:\n");
        for (const struct cli_flag *c = flags; c->name; c++) {
            char left[64];
            if (c->type == CLI_FLAG_BOOL)
                snprintf(left, sizeof(left), "-%s", c->name);
            else
                snprintf(left, sizeof(left), "-%s %s", c->name, c->arg ? c->arg : "VALUE");
            fprintf(f, "  %-26s %s%s\n", left, c->help ? c->help : "",
                    c->type == CLI_FLAG_STRS ? " (repeatable)" : "");
        }
    }
    fprintf(
        f, "\nGlobal options (also from the environment):\n"
           "  -address ADDR              server address (NHID_ADDR, default " CLI_DEFAULT_ADDR ")\n"
           "  -ca-cert FILE              CA bundle to verify the server (NHID_CACERT)\n"
           "  -client-cert FILE          client certificate for mTLS (NHID_CLIENT_CERT)\n"
           "  -client-key FILE           client private key for mTLS (NHID_CLIENT_KEY)\n"
           "  -tls-skip-verify           do not verify the server (NHID_SKIP_VERIFY; dev only)\n"
           "  -format table|json         output format (NHID_FORMAT, default table)\n"
           "  -h, -help                  this help\n");
}

int cli_begin(struct cli_ctx *ctx, int argc, char **argv, struct cli_flag *flags, int min_args,
              int max_args)
{
    char err[256];
    const char *name = ctx->cmd ? ctx->cmd->name : "command";
    if (cli_parse_flags(ctx, argc, argv, flags, err, sizeof(err)) < 0) {
        fprintf(ctx->err, "Error: %s (see nhid %s -h)\n", err, name);
        return CLI_EXIT_USAGE;
    }
    if (ctx->help) {
        cli_print_usage(ctx->cmd, flags, ctx->out);
        return CLI_EXIT_OK;
    }
    if ((int)ctx->nargs < min_args || (max_args >= 0 && (int)ctx->nargs > max_args)) {
        if (min_args == max_args)
            fprintf(ctx->err, "Error: nhid %s takes %d argument%s, got %zu (see nhid %s -h)\n",
                    name, min_args, min_args == 1 ? "" : "s", ctx->nargs, name);
        else if (max_args < 0)
            fprintf(ctx->err,
                    "Error: nhid %s needs at least %d argument%s, got %zu (see nhid %s -h)\n", name,
                    min_args, min_args == 1 ? "" : "s", ctx->nargs, name);
        else
            fprintf(ctx->err, "Error: nhid %s takes %d to %d arguments, got %zu (see nhid %s -h)\n",
                    name, min_args, max_args, ctx->nargs, name);
        return CLI_EXIT_USAGE;
    }
    return CLI_CONTINUE;
}

/* ---- input ---------------------------------------------------------------- */

int cli_read_stream(FILE *f, size_t max, char **out, size_t *outlen)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return NHID_ERR_NOMEM;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max + 1) {
                nhid_free_secret(buf, cap);
                return NHID_ERR_TOO_LARGE;
            }
            /* Grow by hand so the old buffer can be wiped (realloc would leave a copy). */
            char *nb = malloc(cap * 2);
            if (nb == NULL) {
                nhid_free_secret(buf, cap);
                return NHID_ERR_NOMEM;
            }
            memcpy(nb, buf, len);
            nhid_free_secret(buf, cap);
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (len > max) {
            nhid_free_secret(buf, cap);
            return NHID_ERR_TOO_LARGE;
        }
        if (n == 0) {
            if (ferror(f)) {
                nhid_free_secret(buf, cap);
                return NHID_ERR_IO;
            }
            break;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return NHID_OK;
}

int cli_read_file(const char *path, size_t max, char **out, size_t *outlen, char *err,
                  size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %.200s: %s", path, strerror(errno));
        return NHID_ERR_IO;
    }
    int rc = cli_read_stream(f, max, out, outlen);
    fclose(f);
    if (rc == NHID_ERR_TOO_LARGE)
        snprintf(err, errlen, "%.200s is larger than %zu bytes", path, max);
    else if (rc < 0)
        snprintf(err, errlen, "cannot read %.200s: %s", path, nhid_strerror(rc));
    return rc;
}

/* Add value under key; a second value turns the member into an array. Steals v. */
static int kv_add(json_t *obj, const char *key, json_t *v)
{
    json_t *cur = json_object_get(obj, key);
    if (cur == NULL)
        return json_object_set_new(obj, key, v) == 0 ? NHID_OK : NHID_ERR_NOMEM;
    if (json_is_array(cur))
        return json_array_append_new(cur, v) == 0 ? NHID_OK : NHID_ERR_NOMEM;
    json_t *arr = json_array();
    if (arr == NULL || json_array_append(arr, cur) != 0 || json_array_append_new(arr, v) != 0) {
        json_decref(arr);
        return NHID_ERR_NOMEM;
    }
    return json_object_set_new(obj, key, arr) == 0 ? NHID_OK : NHID_ERR_NOMEM;
}

int cli_kv_parse(char *const *args, size_t nargs, FILE *in, json_t **out, char *err, size_t errlen)
{
    int rc = NHID_OK;
    char *buf = NULL;
    size_t buflen = 0;
    char *key = NULL;
    bool stdin_used = false;
    json_t *obj = json_object();
    NHID_CHECK_ALLOC(obj);

    for (size_t i = 0; i < nargs; i++) {
        const char *a = args[i];
        if (strcmp(a, "-") == 0 || (strchr(a, '=') != NULL && strcmp(strchr(a, '='), "=-") == 0)) {
            if (stdin_used) {
                snprintf(err, errlen, "stdin can be read only once (argument \"%.64s\")", a);
                NHID_FAIL(NHID_ERR_INVALID);
            }
            stdin_used = true;
        }
        if (strcmp(a, "-") == 0) {
            rc = cli_read_stream(in, CLI_INPUT_MAX, &buf, &buflen);
            if (rc < 0) {
                snprintf(err, errlen, "cannot read stdin: %s", nhid_strerror(rc));
                goto out;
            }
            json_error_t jerr;
            json_t *j = json_loadb(buf, buflen, 0, &jerr);
            if (j == NULL || !json_is_object(j)) {
                if (j)
                    snprintf(err, errlen, "stdin: expected a JSON object");
                else
                    snprintf(err, errlen, "stdin is not JSON: line %d: %.100s", jerr.line,
                             jerr.text);
                cli_json_free(j);
                NHID_FAIL(NHID_ERR_INVALID);
            }
            const char *k;
            json_t *v;
            json_object_foreach(j, k, v)
            {
                if (kv_add(obj, k, json_incref(v)) < 0) {
                    cli_json_free(j);
                    NHID_FAIL(NHID_ERR_NOMEM);
                }
            }
            cli_json_free(j);
            nhid_free_secret(buf, buflen + 1);
            buf = NULL;
            continue;
        }
        const char *eq = strchr(a, '=');
        if (eq == NULL) {
            snprintf(err, errlen,
                     "argument \"%.64s\": expected key=value (or - to read JSON from stdin)", a);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        if (eq == a) {
            snprintf(err, errlen, "argument \"%.64s\": empty key (use key=value)", a);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        key = strndup(a, (size_t)(eq - a));
        NHID_CHECK_ALLOC(key);
        const char *val = eq + 1;
        json_t *jv;
        if (val[0] == '@') {
            NHID_TRY(cli_read_file(val + 1, CLI_INPUT_MAX, &buf, &buflen, err, errlen));
            jv = json_stringn(buf, buflen);
            if (jv == NULL) {
                snprintf(err, errlen, "%.200s (for key %.64s) is not UTF-8 text", val + 1, key);
                NHID_FAIL(NHID_ERR_INVALID);
            }
            nhid_free_secret(buf, buflen + 1);
            buf = NULL;
        } else if (strcmp(val, "-") == 0) {
            rc = cli_read_stream(in, CLI_INPUT_MAX, &buf, &buflen);
            if (rc < 0) {
                snprintf(err, errlen, "cannot read stdin for key %.64s: %s", key,
                         nhid_strerror(rc));
                goto out;
            }
            jv = json_stringn(buf, buflen);
            if (jv == NULL) {
                snprintf(err, errlen, "stdin (for key %.64s) is not UTF-8 text", key);
                NHID_FAIL(NHID_ERR_INVALID);
            }
            nhid_free_secret(buf, buflen + 1);
            buf = NULL;
        } else {
            /* "\@x" sends a literal "@x". */
            jv = json_string(val[0] == '\\' && val[1] == '@' ? val + 1 : val);
            if (jv == NULL) {
                snprintf(err, errlen, "value for key %.64s is not UTF-8 text", key);
                NHID_FAIL(NHID_ERR_INVALID);
            }
        }
        NHID_TRY(kv_add(obj, key, jv));
        free(key);
        key = NULL;
    }
    *out = obj;
    obj = NULL;
out:
    if (rc == NHID_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    free(key);
    if (buf)
        nhid_free_secret(buf, buflen + 1);
    cli_json_free(obj);
    return rc;
}

int cli_read_secret(struct cli_ctx *ctx, const char *prompt, char *buf, size_t buflen)
{
    int fd = fileno(ctx->in);
    bool tty = fd >= 0 && isatty(fd);
    struct termios old, noecho;
    bool restored = true;

    if (tty) {
        fputs(prompt, ctx->err);
        fflush(ctx->err);
        if (tcgetattr(fd, &old) == 0) {
            noecho = old;
            noecho.c_lflag &= ~(tcflag_t)ECHO;
            noecho.c_lflag |= ECHONL;
            if (tcsetattr(fd, TCSAFLUSH, &noecho) == 0)
                restored = false;
        }
    }
    char *got = fgets(buf, (int)buflen, ctx->in);
    if (!restored)
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (got == NULL) {
        nhid_wipe(buf, buflen);
        return NHID_ERR_INVALID;
    }
    size_t len = strlen(buf);
    if (len == buflen - 1 && buf[len - 1] != '\n' && !feof(ctx->in)) {
        nhid_wipe(buf, buflen);
        return NHID_ERR_TOO_LARGE;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    if (len == 0)
        return NHID_ERR_INVALID;
    return NHID_OK;
}
