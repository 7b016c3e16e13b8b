/* core — result codes, logging, time, durations, secret memory helpers. */
#include "core/core.h"

#include <ctype.h>
#include <inttypes.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/crypto.h>

static const struct {
    int code;
    const char *text;
    int http;
} err_table[] = {
    {NHID_OK, "ok", 200},
    {NHID_ERR_NOMEM, "out of memory", 500},
    {NHID_ERR_INVALID, "invalid input", 400},
    {NHID_ERR_NOT_FOUND, "not found", 404},
    {NHID_ERR_EXISTS, "already exists", 400},
    {NHID_ERR_CONFLICT, "conflict", 409},
    {NHID_ERR_DENIED, "permission denied", 403},
    {NHID_ERR_SEALED, "nhid is sealed", 503},
    {NHID_ERR_IO, "I/O error", 500},
    {NHID_ERR_CRYPTO, "cryptographic operation failed", 500},
    {NHID_ERR_TAMPERED, "integrity check failed", 500},
    {NHID_ERR_TOO_LARGE, "too large", 413},
    {NHID_ERR_RATE_LIMIT, "rate limited", 429},
    {NHID_ERR_UNAVAILABLE, "temporarily unavailable", 503},
    {NHID_ERR_UPSTREAM, "upstream failure", 502},
    {NHID_ERR_INTERNAL, "internal error", 500},
    {NHID_ERR_UNSUPPORTED, "unsupported", 400},
    {NHID_ERR_EXPIRED, "expired", 403},
};

const char *nhid_strerror(int err)
{
    for (size_t i = 0; i < NHID_ARRAY_LEN(err_table); i++)
        if (err_table[i].code == err)
            return err_table[i].text;
    return "unknown error";
}

int nhid_err_http_status(int err)
{
    for (size_t i = 0; i < NHID_ARRAY_LEN(err_table); i++)
        if (err_table[i].code == err)
            return err_table[i].http;
    return 500;
}

/* ---- logging ------------------------------------------------------------ */

static atomic_int log_min_level = NHID_LOG_INFO;

void nhid_log_set_level(enum nhid_log_level level)
{
    atomic_store(&log_min_level, (int)level);
}

int nhid_log_level_parse(const char *s, enum nhid_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(names); i++) {
        if (s && strcmp(s, names[i]) == 0) {
            *out = (enum nhid_log_level)i;
            return NHID_OK;
        }
    }
    return NHID_ERR_INVALID;
}

void nhid_log(enum nhid_log_level level, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if ((int)level < atomic_load(&log_min_level))
        return;
    char ts[NHID_RFC3339_LEN];
    nhid_time_format(nhid_now(), ts);
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One fprintf per line so concurrent threads do not interleave. */
    fprintf(stderr, "%s [%s] %s: %s\n", ts, names[level & 3], module ? module : "nhid", msg);
}

/* ---- time --------------------------------------------------------------- */

int64_t nhid_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t nhid_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t nhid_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void nhid_time_format(int64_t unix_seconds, char out[NHID_RFC3339_LEN])
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, NHID_RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void nhid_time_format_ns(int64_t unix_ns, char out[NHID_RFC3339_LEN])
{
    time_t t = (time_t)(unix_ns / 1000000000LL);
    long ns = (long)(unix_ns % 1000000000LL);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, NHID_RFC3339_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, NHID_RFC3339_LEN - n, ".%09ldZ", ns < 0 ? 0 : ns % 1000000000L);
}

int nhid_time_parse(const char *s, int64_t *out_seconds)
{
    if (s == NULL)
        return NHID_ERR_INVALID;
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return NHID_ERR_INVALID;
    if (*p == '.') { /* fractional seconds are accepted and dropped */
        p++;
        if (!isdigit((unsigned char)*p))
            return NHID_ERR_INVALID;
        while (isdigit((unsigned char)*p))
            p++;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return NHID_ERR_INVALID;
        offset = sign * (hh * 3600 + mm * 60);
        p += 6;
    } else {
        return NHID_ERR_INVALID;
    }
    if (*p != '\0')
        return NHID_ERR_INVALID;
    *out_seconds = (int64_t)timegm(&tm) - offset;
    return NHID_OK;
}

/* ---- durations ---------------------------------------------------------- */

int nhid_duration_parse(const char *s, int64_t *out_seconds, char *errbuf, size_t errlen)
{
    if (s == NULL || *s == '\0') {
        if (errbuf)
            snprintf(errbuf, errlen, "empty duration (use e.g. 90s, 15m, 1h)");
        return NHID_ERR_INVALID;
    }
    const char *p = s;
    bool all_digits = true;
    for (const char *q = s; *q; q++)
        if (!isdigit((unsigned char)*q))
            all_digits = false;
    if (all_digits) {
        if (strlen(s) > 12) {
            if (errbuf)
                snprintf(errbuf, errlen, "duration \"%.32s\" is too large", s);
            return NHID_ERR_INVALID;
        }
        *out_seconds = strtoll(s, NULL, 10);
        return NHID_OK;
    }
    /* Go's time.ParseDuration grammar: ([0-9]+(\.[0-9]*)?(ns|us|ms|s|m|h))+ */
    double total_ns = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.') {
            if (errbuf)
                snprintf(errbuf, errlen, "duration \"%.32s\": expected a number at \"%.8s\"", s, p);
            return NHID_ERR_INVALID;
        }
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno != 0 || v < 0) {
            if (errbuf)
                snprintf(errbuf, errlen, "duration \"%.32s\": bad number", s);
            return NHID_ERR_INVALID;
        }
        p = end;
        double unit;
        if (strncmp(p, "ns", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            unit = 1e3;
            p += 2;
        } else if (strncmp(p, "ms", 2) == 0) {
            unit = 1e6;
            p += 2;
        } else if (*p == 's') {
            unit = 1e9;
            p++;
        } else if (*p == 'm') {
            unit = 60e9;
            p++;
        } else if (*p == 'h') {
            unit = 3600e9;
            p++;
        } else if (*p == 'd') {
            unit = 86400e9;
            p++;
        } else {
            if (errbuf) {
                if (*p)
                    snprintf(errbuf, errlen,
                             "duration \"%.32s\": unknown unit \"%c\" (use s, m, h, d)", s, *p);
                else
                    snprintf(errbuf, errlen, "duration \"%.32s\": missing unit (use s, m, h, d)",
                             s);
            }
            return NHID_ERR_INVALID;
        }
        total_ns += v * unit;
        if (total_ns > 9.2e18) {
            if (errbuf)
                snprintf(errbuf, errlen, "duration \"%.32s\" is too large", s);
            return NHID_ERR_INVALID;
        }
    }
    *out_seconds = (int64_t)(total_ns / 1e9);
    return NHID_OK;
}

void nhid_duration_format(int64_t seconds, char *out, size_t outlen)
{
    if (seconds < 0)
        seconds = 0;
    int64_t h = seconds / 3600, m = (seconds % 3600) / 60, sec = seconds % 60;
    if (h > 0)
        snprintf(out, outlen, "%lldh%lldm%llds", (long long)h, (long long)m, (long long)sec);
    else if (m > 0)
        snprintf(out, outlen, "%lldm%llds", (long long)m, (long long)sec);
    else
        snprintf(out, outlen, "%llds", (long long)sec);
}

/* ---- secrets in memory -------------------------------------------------- */

void nhid_wipe(void *p, size_t len)
{
    if (p && len)
        OPENSSL_cleanse(p, len);
}

void nhid_free_secret_str(char *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
}

void nhid_free_secret(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

bool nhid_secure_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

void nhid_harden_process(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* A mapping from /proc/self/smaps, collected until the next header line. */
struct smaps_mapping {
    uintptr_t start, end;
    bool releasable; /* private, not writable, file-backed */
    long rss_kb, anon_kb;
};

static long release_mapping(const struct smaps_mapping *m)
{
    /*
     * Anonymous > 0: the mapping holds copied-on-write pages (RELRO after
     * relocation); dropping them would revert them to the file's bytes.
     */
    if (!m->releasable || m->anon_kb != 0 || m->rss_kb == 0)
        return 0;
    if (madvise((void *)m->start, m->end - m->start, MADV_DONTNEED) != 0)
        return 0;
    return m->rss_kb;
}

long nhid_release_startup_pages(void)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    if (f == NULL)
        return 0;
    struct smaps_mapping m = {0};
    long released = 0;
    char line[512];
    while (fgets(line, sizeof(line), f) != NULL) {
        uintptr_t a, b;
        char perms[8], path[2];
        int n = sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %*s %*s %1s", &a, &b, perms, path);
        if (n >= 3) {
            released += release_mapping(&m);
            m = (struct smaps_mapping){.start = a, .end = b};
            m.releasable = n == 4 && path[0] == '/' && perms[1] != 'w' && perms[3] == 'p';
            continue;
        }
        long kb;
        if (sscanf(line, "Rss: %ld kB", &kb) == 1)
            m.rss_kb = kb;
        else if (sscanf(line, "Anonymous: %ld kB", &kb) == 1)
            m.anon_kb = kb;
    }
    released += release_mapping(&m);
    fclose(f);
    return released;
}

/* ---- strings ------------------------------------------------------------ */

int nhid_fmt(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= outlen)
        return NHID_ERR_TOO_LARGE;
    return NHID_OK;
}

char *nhid_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

bool nhid_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

void nhid_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int nhid_hex_decode(const char *in, uint8_t *out, size_t outlen)
{
    if (strlen(in) != 2 * outlen)
        return NHID_ERR_INVALID;
    for (size_t i = 0; i < outlen; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return NHID_ERR_INVALID;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return NHID_OK;
}
