/*
 * core — the result type, guard macros, logging, time and duration
 * helpers and secret-memory helpers every nhid module uses.
 *
 * Conventions (see docs/dev/conventions.md):
 *  - fallible functions return int: NHID_OK (0) or a negative enum nhid_err;
 *  - out-parameters are written only on success;
 *  - destructors accept NULL.
 */
#ifndef NHID_CORE_H
#define NHID_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NHID_MUST_CHECK __attribute__((warn_unused_result))
#define NHID_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define NHID_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The one result type. 0 is success; every error is negative. */
enum nhid_err {
    NHID_OK = 0,
    NHID_ERR_NOMEM = -1,        /* allocation failed */
    NHID_ERR_INVALID = -2,      /* caller input is malformed (HTTP 400) */
    NHID_ERR_NOT_FOUND = -3,    /* no such object (404) */
    NHID_ERR_EXISTS = -4,       /* object already exists (409 / 400) */
    NHID_ERR_CONFLICT = -5,     /* state conflict, CAS mismatch (409 / 400) */
    NHID_ERR_DENIED = -6,       /* missing/invalid/insufficient credential (403) */
    NHID_ERR_SEALED = -7,       /* barrier is sealed (503) */
    NHID_ERR_IO = -8,           /* file or database I/O failed */
    NHID_ERR_CRYPTO = -9,       /* a cryptographic primitive failed */
    NHID_ERR_TAMPERED = -10,    /* authentication tag or hash chain mismatch */
    NHID_ERR_TOO_LARGE = -11,   /* a size or count limit was exceeded (413) */
    NHID_ERR_RATE_LIMIT = -12,  /* too many attempts (429) */
    NHID_ERR_UNAVAILABLE = -13, /* temporarily unavailable (503) */
    NHID_ERR_UPSTREAM = -14,    /* an upstream system failed (502) */
    NHID_ERR_INTERNAL = -15,    /* a bug or impossible state (500) */
    NHID_ERR_UNSUPPORTED = -16, /* valid but not supported (400) */
    NHID_ERR_EXPIRED = -17,     /* credential or object has expired (403) */
};

/* Short English description of an error code; never NULL. */
const char *nhid_strerror(int err);

/* The HTTP status that an error code maps to by default. */
int nhid_err_http_status(int err);

/*
 * Guard macros: a function declares `int rc = NHID_OK;` and one `out:`
 * label; NHID_TRY propagates a negative result to it.
 */
#define NHID_TRY(expr)                                                                             \
    do {                                                                                           \
        int nhid_try_rc_ = (expr);                                                                 \
        if (nhid_try_rc_ < 0) {                                                                    \
            rc = nhid_try_rc_;                                                                     \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define NHID_FAIL(err)                                                                             \
    do {                                                                                           \
        rc = (err);                                                                                \
        goto out;                                                                                  \
    } while (0)

#define NHID_CHECK_ALLOC(ptr)                                                                      \
    do {                                                                                           \
        if ((ptr) == NULL) {                                                                       \
            rc = NHID_ERR_NOMEM;                                                                   \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* ---- logging ---------------------------------------------------------- */

enum nhid_log_level {
    NHID_LOG_DEBUG = 0,
    NHID_LOG_INFO = 1,
    NHID_LOG_WARN = 2,
    NHID_LOG_ERROR = 3,
};

/* Minimum level printed (default INFO). Thread-safe. */
void nhid_log_set_level(enum nhid_log_level level);
/* Parse "debug", "info", "warn", "error"; NHID_ERR_INVALID otherwise. */
NHID_MUST_CHECK int nhid_log_level_parse(const char *s, enum nhid_log_level *out);

/*
 * Write one line "<RFC 3339 time> [level] module: message" to stderr.
 * Never pass secret values: logs are not protected like audit records.
 */
void nhid_log(enum nhid_log_level level, const char *module, const char *fmt, ...)
    NHID_PRINTF(3, 4);

#define nhid_debug(mod, ...) nhid_log(NHID_LOG_DEBUG, mod, __VA_ARGS__)
#define nhid_info(mod, ...) nhid_log(NHID_LOG_INFO, mod, __VA_ARGS__)
#define nhid_warn(mod, ...) nhid_log(NHID_LOG_WARN, mod, __VA_ARGS__)
#define nhid_error(mod, ...) nhid_log(NHID_LOG_ERROR, mod, __VA_ARGS__)

/* ---- time --------------------------------------------------------------- */

/* Wall-clock time: seconds / nanoseconds since the Unix epoch. */
int64_t nhid_now(void);
int64_t nhid_now_ns(void);
/* Monotonic time in nanoseconds, for latency measurement and timeouts. */
int64_t nhid_mono_ns(void);

#define NHID_RFC3339_LEN 40
/* Format UTC seconds as RFC 3339 "2026-11-23T10:00:00Z". */
void nhid_time_format(int64_t unix_seconds, char out[NHID_RFC3339_LEN]);
/* Format UTC nanoseconds as RFC 3339 with nanoseconds "...T10:00:00.123456789Z". */
void nhid_time_format_ns(int64_t unix_ns, char out[NHID_RFC3339_LEN]);
/* Parse RFC 3339 (with 'Z' or an offset) into Unix seconds. */
NHID_MUST_CHECK int nhid_time_parse(const char *s, int64_t *out_seconds);

/*
 * Parse a Go-style duration ("90s", "15m", "1h30m", "2h", "500ms" rounds
 * down to seconds, plain integers are seconds, "d" is accepted as 24h).
 * On error writes a message naming the problem into errbuf (if non-NULL),
 * e.g. `ttl "90x": unknown unit "x" (use s, m, h, d)`.
 */
NHID_MUST_CHECK int nhid_duration_parse(const char *s, int64_t *out_seconds, char *errbuf,
                                        size_t errlen);
/* Format seconds as a Go-style duration "1h30m0s" (Vault's style). */
void nhid_duration_format(int64_t seconds, char *out, size_t outlen);

/* ---- secrets in memory -------------------------------------------------- */

/* Overwrite memory in a way the compiler cannot elide (OPENSSL_cleanse). */
void nhid_wipe(void *p, size_t len);
/* Wipe a NUL-terminated string and free it. Safe to call with NULL. */
void nhid_free_secret_str(char *s);
/* Wipe len bytes and free. Safe to call with NULL. */
void nhid_free_secret(void *p, size_t len);
/* Constant-time equality of two byte strings (lengths compared first). */
bool nhid_secure_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Disable core dumps and ptrace attach for this process (prctl). */
void nhid_harden_process(void);

/*
 * Unmap this process's clean, read-only file pages (library and program code
 * and constants) so only what is touched from now on stays resident. The
 * pages stay in the page cache, shared with every other process, and come
 * back on a minor fault when next used. Called once start-up is done: key
 * generation and initialisation touch megabytes of libcrypto and SQLite code
 * an idle server never runs again. Mappings holding private (relocated)
 * pages are left alone. Returns the kB released.
 */
long nhid_release_startup_pages(void);

/* ---- small string helpers ----------------------------------------------- */

/* snprintf into a fixed buffer; NHID_ERR_TOO_LARGE when truncated. */
NHID_MUST_CHECK int nhid_fmt(char *out, size_t outlen, const char *fmt, ...) NHID_PRINTF(3, 4);
/* Duplicate a string; NULL on allocation failure. */
char *nhid_strdup(const char *s);
/* true if s starts with prefix. */
bool nhid_has_prefix(const char *s, const char *prefix);
/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void nhid_hex_encode(const uint8_t *in, size_t len, char *out);
/* Decode hex of exactly 2*outlen characters. */
NHID_MUST_CHECK int nhid_hex_decode(const char *in, uint8_t *out, size_t outlen);

#endif /* NHID_CORE_H */
