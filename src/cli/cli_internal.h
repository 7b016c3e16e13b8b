/*
 * cli_internal.h — the helpers every `nhid` CLI command is built from.
 * Not a public header: only src/cli/ (the cli_*.c files) and tests/unit/cli_test.c use it.
 * docs/cli.md ("Developer notes") describes how a command uses them.
 *
 * A command is one function `int run(struct cli_ctx *ctx, int argc, char **argv)`
 * listed in the table in cli.c. It returns the process exit code:
 * CLI_EXIT_OK (0), CLI_EXIT_USAGE (1) or CLI_EXIT_ERROR (2). The usual shape:
 *
 *     struct cli_flag flags[] = {
 *         CLI_FLAG("path", CLI_FLAG_STR, &path, "NAME", "mount path"),
 *         CLI_FLAG_END,
 *     };
 *     int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
 *     if (rc != CLI_CONTINUE)
 *         return rc;                       (-h, or a usage error)
 *     json_t *resp = NULL;
 *     if (cli_call(ctx, "GET", ctx->args[0], NULL, &resp) < 0)
 *         return CLI_EXIT_ERROR;           (error already printed)
 *     rc = cli_print_secret(ctx, resp);
 *     cli_json_free(resp);
 *     return rc;
 */
#ifndef NHID_CLI_INTERNAL_H
#define NHID_CLI_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"

/* Exit codes (Vault's convention). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_USAGE 1  /* bad flags or arguments; also a client-side failure */
#define CLI_EXIT_ERROR 2  /* the server answered with an error */
#define CLI_CONTINUE (-1) /* cli_begin(): go on with the command */

#define CLI_DEFAULT_ADDR "https://127.0.0.1:8200"
#define CLI_TOKEN_FILE ".nhid-token" /* under $HOME */
#define CLI_TOKEN_MAX 4096           /* longest token accepted from env or file */
#define CLI_RESPONSE_MAX (64u << 20) /* largest response body read (64 MiB) */
#define CLI_INPUT_MAX (16u << 20)    /* largest @file or stdin body (16 MiB) */
#define CLI_STRV_MAX 64              /* most values of one repeated flag */
#define CLI_ARGS_MAX 256             /* most positional arguments */
#define CLI_TABLE_ROWS_MAX 4096      /* most rows in one printed table */
#define CLI_TABLE_COLS_MAX 6
#define CLI_CONNECT_TIMEOUT_S 10L
#define CLI_REQUEST_TIMEOUT_S 60L /* default for NHID_CLIENT_TIMEOUT */

enum cli_format {
    CLI_FORMAT_TABLE = 0,
    CLI_FORMAT_JSON = 1,
};

/* Connection and output options: environment first, then global flags. */
struct cli_opts {
    const char *addr;        /* NHID_ADDR / -address */
    const char *ca_cert;     /* NHID_CACERT / -ca-cert */
    const char *client_cert; /* NHID_CLIENT_CERT / -client-cert */
    const char *client_key;  /* NHID_CLIENT_KEY / -client-key */
    bool skip_verify;        /* NHID_SKIP_VERIFY / -tls-skip-verify (dev only) */
    enum cli_format format;  /* NHID_FORMAT / -format */
    const char *field;       /* -field: print only this Key's value (read, write, token *) */
    long timeout_s;          /* NHID_CLIENT_TIMEOUT */
};

struct cli_client;
struct cli_command;

/* Everything one command invocation needs. Created by the dispatcher. */
struct cli_ctx {
    const struct cli_command *cmd; /* NULL in unit tests */
    struct cli_opts opts;
    char **args; /* positional arguments (point into argv) */
    size_t nargs;
    bool help;                 /* -h / -help was given */
    struct cli_client *client; /* created on first cli_call(); see cli_client_get() */
    FILE *out;                 /* stdout, or a memory stream in tests */
    FILE *err;                 /* stderr, or a memory stream in tests */
    FILE *in;                  /* stdin */
};

/* ---- commands (cli.c) ------------------------------------------------- */

typedef int (*cli_run_fn)(struct cli_ctx *ctx, int argc, char **argv);

struct cli_command {
    const char *name;     /* "token create": the words typed after `nhid` */
    const char *group;    /* heading in `nhid -h` */
    const char *synopsis; /* one line for the command list */
    const char *usage;    /* "Usage: ..." text with a description and an example */
    cli_run_fn run;
};

/*
 * Initialise ctx from the environment (NHID_ADDR, NHID_CACERT, ...) with
 * stdout/stderr/stdin. Returns NHID_ERR_INVALID (message on stderr) when an
 * environment value is malformed (e.g. NHID_FORMAT=xml).
 */
NHID_MUST_CHECK int cli_ctx_init(struct cli_ctx *ctx, FILE *out, FILE *err, FILE *in);
/* Release the client (wiping the token). Safe to call twice. */
void cli_ctx_cleanup(struct cli_ctx *ctx);

/* ---- flags (cli_flags.c) ---------------------------------------------- */

enum cli_flag_type {
    CLI_FLAG_STR,      /* dst: const char ** */
    CLI_FLAG_BOOL,     /* dst: bool *; -f, -f=true, -f=false (never consumes the next arg) */
    CLI_FLAG_INT,      /* dst: long long *; decimal */
    CLI_FLAG_DURATION, /* dst: struct cli_duration *; validated with nhid_duration_parse */
    CLI_FLAG_STRS,     /* dst: struct cli_strv *; repeatable */
};

struct cli_duration {
    const char *text; /* as typed, e.g. "1h30m" */
    int64_t seconds;
};

struct cli_strv {
    const char *v[CLI_STRV_MAX];
    size_t n;
};

struct cli_flag {
    const char *name; /* without dashes: "key-shares" */
    enum cli_flag_type type;
    void *dst;
    const char *arg;  /* placeholder in help, e.g. "N"; NULL for bool flags */
    const char *help; /* one line */
    bool seen;        /* set by the parser when the flag was given */
};

/* One flag table entry, and the table's terminator. */
#define CLI_FLAG(name_, type_, dst_, arg_, help_)                                                  \
    {                                                                                              \
        .name = (name_), .type = (type_), .dst = (dst_), .arg = (arg_), .help = (help_)            \
    }
#define CLI_FLAG_END                                                                               \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/*
 * Parse argv (the words after the command name). Flags may come before,
 * between or after positional arguments, as `-f v`, `-f=v`, `--f v` or
 * `--f=v`; `--` ends flags; a lone `-` is positional (stdin). The global
 * flags (-address, -ca-cert, -client-cert, -client-key, -tls-skip-verify,
 * -format, -h/-help) are handled for every command and written to
 * ctx->opts / ctx->help. Positional arguments go to ctx->args/nargs.
 * flags is terminated by an entry with name == NULL (may be NULL itself).
 * On error returns NHID_ERR_INVALID with a message naming the flag in err,
 * e.g. `unknown flag -foo`, `flag -key-shares: "x" is not a number`.
 */
NHID_MUST_CHECK int cli_parse_flags(struct cli_ctx *ctx, int argc, char **argv,
                                    struct cli_flag *flags, char *err, size_t errlen);

/*
 * cli_parse_flags() plus what every command does next: on -h print the
 * usage and return CLI_EXIT_OK; on a flag error, or fewer than min_args or
 * more than max_args (-1: no limit) positional arguments, print a short
 * message naming the problem and return CLI_EXIT_USAGE; else CLI_CONTINUE.
 */
int cli_begin(struct cli_ctx *ctx, int argc, char **argv, struct cli_flag *flags, int min_args,
              int max_args);

/* Print the command's usage text and its flag list to f. */
void cli_print_usage(const struct cli_command *cmd, const struct cli_flag *flags, FILE *f);

/*
 * Build a JSON object from `key=value` arguments (Vault's `write` syntax):
 *   key=value      string value
 *   key=@file      the file's contents (at most CLI_INPUT_MAX bytes)
 *   key=-          stdin's contents
 *   -              a JSON object read from stdin, merged in
 * A key given several times becomes an array of its values.
 * Caller frees *out with cli_json_free(). On error returns NHID_ERR_INVALID
 * (or NHID_ERR_IO / NHID_ERR_TOO_LARGE) with a message in err.
 */
NHID_MUST_CHECK int cli_kv_parse(char *const *args, size_t nargs, FILE *in, json_t **out, char *err,
                                 size_t errlen);

/*
 * Read a whole stream or file into a NUL-terminated buffer of at most max
 * bytes. Caller frees with nhid_free_secret(buf, len + 1).
 */
NHID_MUST_CHECK int cli_read_stream(FILE *f, size_t max, char **out, size_t *outlen);
NHID_MUST_CHECK int cli_read_file(const char *path, size_t max, char **out, size_t *outlen,
                                  char *err, size_t errlen);

/*
 * Read a secret (unseal key, token) into buf: from the terminal without
 * echo, after printing prompt to stderr, when ctx->in is a terminal; else
 * one line from ctx->in. The trailing newline is removed. NHID_ERR_INVALID
 * when empty, NHID_ERR_TOO_LARGE when longer than buflen - 1. The caller
 * wipes buf with nhid_wipe() after use.
 */
NHID_MUST_CHECK int cli_read_secret(struct cli_ctx *ctx, const char *prompt, char *buf,
                                    size_t buflen);

/* Parse "true"/"false"/"1"/"0"/"yes"/"no" (case-insensitive). */
NHID_MUST_CHECK int cli_parse_bool(const char *s, bool *out);

/* ---- HTTP (cli_http.c) ------------------------------------------------ */

/*
 * A connection to the server: one libcurl easy handle reused for every
 * request of the command (HTTP keep-alive), TLS 1.2 minimum, the token
 * from NHID_TOKEN or ~/.nhid-token. Errors print to err.
 * Caller frees with cli_client_free() (wipes the token).
 */
NHID_MUST_CHECK int cli_client_new(const struct cli_opts *opts, FILE *err, struct cli_client **out);
void cli_client_free(struct cli_client *c);
/* Replace the token sent as X-Vault-Token (copied; NULL clears). */
NHID_MUST_CHECK int cli_client_set_token(struct cli_client *c, const char *token);
/*
 * Whether to send the token (default true). Commands that call endpoints
 * needing no credential (sys/seal-status, sys/unseal, sys/init) turn it off,
 * so the token is not exposed where it is not needed.
 */
void cli_client_send_token(struct cli_client *c, bool send);
/* The full URL of the last request ("https://host:8200/v1/sys/health"). */
const char *cli_client_last_url(const struct cli_client *c);
/* The ctx's client, created on first use; NULL (error printed) on failure. */
struct cli_client *cli_client_get(struct cli_ctx *ctx);

/*
 * Send one request to /v1/<path> (a leading "/" or "v1/" is dropped; the
 * path may carry a query string). body (may be NULL) is sent as JSON.
 * Returns NHID_OK when any HTTP response arrived: *status is its code and
 * *resp its parsed JSON body (NULL when empty or not JSON; caller frees
 * with cli_json_free()). When no response arrived (cannot connect, TLS
 * failure, timeout) prints e.g. "Error: cannot connect to <addr>: ...
 * (is the server running? set NHID_ADDR)" and returns a negative error.
 */
NHID_MUST_CHECK int cli_request(struct cli_client *c, const char *method, const char *path,
                                json_t *body, long *status, json_t **resp);

/*
 * Like cli_request() with a raw body (content_type may be NULL) and the raw
 * response text. *text is owned by the client and valid until the next
 * request; it is wiped then.
 */
NHID_MUST_CHECK int cli_request_raw(struct cli_client *c, const char *method, const char *path,
                                    const char *content_type, const char *body, size_t bodylen,
                                    long *status, const char **text, size_t *textlen);

/*
 * cli_request() for commands: a non-2xx status is printed as
 * "Error: <METHOD> <URL>: <status>: <message>; <message>" and returned as a
 * negative error (NHID_ERR_NOT_FOUND for 404, NHID_ERR_SEALED for 503, ...).
 * On success *resp (may be NULL, e.g. for 204) is the parsed body.
 * resp may be NULL when the caller does not need the body.
 */
NHID_MUST_CHECK int cli_call(struct cli_ctx *ctx, const char *method, const char *path,
                             json_t *body, json_t **resp);
/* Same, with content type application/merge-patch+json and method PATCH. */
NHID_MUST_CHECK int cli_call_patch(struct cli_ctx *ctx, const char *path, json_t *body,
                                   json_t **resp);

/* Print "Error: METHOD URL: status: msgs" for a response; returns the mapped error. */
int cli_print_api_error(FILE *err, const char *method, const char *url, long status, json_t *resp,
                        const char *raw);
/* Map an HTTP status to an nhid error code. */
int cli_status_to_err(long status);

/* ---- printing (cli_print.c) ------------------------------------------- */

/* A column table, printed with columns aligned (Vault's look). */
struct cli_table;
/* ncols headers follow; each row has ncols cells. NULL on allocation failure. */
struct cli_table *cli_table_new(size_t ncols, ...);
/* The common two-column "Key / Value" table. */
struct cli_table *cli_table_kv(void);
/* Add a row of ncols strings (copied; NULL prints "n/a"). */
NHID_MUST_CHECK int cli_table_row(struct cli_table *t, ...);
/* Add a Key/Value row with a printf-formatted value. */
NHID_MUST_CHECK int cli_table_add(struct cli_table *t, const char *key, const char *fmt, ...)
    NHID_PRINTF(3, 4);
/* Add a Key/Value row whose value is a JSON value formatted by cli_json_to_text(). */
NHID_MUST_CHECK int cli_table_add_json(struct cli_table *t, const char *key, const json_t *v);
void cli_table_print(const struct cli_table *t, FILE *f);
/* Wipes the cells (they may hold tokens). Safe with NULL. */
void cli_table_free(struct cli_table *t);

/*
 * Format a JSON value the way Vault's table output does: strings as is,
 * numbers, true/false, null as "n/a", arrays "[a b]", objects "map[k:v]".
 * Caller frees. If key names a duration (ttl, period, ...) and v is an
 * integer, formats it as "1h0m0s".
 */
char *cli_json_to_text(const char *key, const json_t *v);

/* Pretty-print JSON (2-space indent) and a newline. */
int cli_print_json(FILE *f, const json_t *j);
/* resp["data"] if it is an object, else resp itself (sys endpoints may not use the envelope). */
json_t *cli_data(json_t *resp);

/*
 * Print a response like `vault read`: with -format=json the whole response;
 * else a Key/Value table of lease fields (if any), the auth block (if any)
 * and data (keys sorted). Returns an exit code.
 */
int cli_print_secret(struct cli_ctx *ctx, json_t *resp);
/* Print resp["auth"] as Vault's token table (token, token_accessor, ...). */
int cli_print_auth(struct cli_ctx *ctx, json_t *resp);
/* Key/Value table of an object's members, keys sorted. */
NHID_MUST_CHECK int cli_print_object_table(FILE *f, json_t *obj);

/*
 * Print a Key/Value table to ctx->out, or with -field=NAME only the value of
 * row NAME (for scripts: `nhid token create -field=token`). Returns an exit
 * code: CLI_EXIT_USAGE when the field is absent.
 */
int cli_table_output(struct cli_ctx *ctx, const struct cli_table *t);

/* Print "Error: ..." to ctx->err with a printf format, and return code. */
int cli_fail(struct cli_ctx *ctx, int code, const char *fmt, ...) NHID_PRINTF(3, 4);

/* Wipe every string in j (when no one else holds a reference) and free it. Safe with NULL. */
void cli_json_free(json_t *j);

/* ---- commands (one function per command) ------------------------------ */

int cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_operator_init(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_operator_unseal(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_operator_seal(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_operator_rotate(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_operator_key_status(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_token_create(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_token_lookup(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_token_renew(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_token_revoke(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_login(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_audit_enable(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_audit_disable(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_audit_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_audit_verify(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_read(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_write(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_list(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_patch(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_metrics(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv);

/* Seal status as `nhid status` prints it (also after unseal). Returns 0 unsealed, 2 sealed. */
int cli_print_seal_status(struct cli_ctx *ctx, json_t *resp);

#endif /* NHID_CLI_INTERNAL_H */
