/*
 * audit_verify — the hash-chain verifier and `nhid audit verify`.
 *
 * The verifier never parses JSON: for each line it finds seq, prev and
 * chain by scanning back from the end of the line (audit_tail_parse),
 * hashes the line's bytes once (SHA-256 with SHA-NI where OpenSSL has
 * it) and compares. The file is read sequentially in 4 MiB chunks into
 * one buffer (bounded memory; no mmap page faults, no SIGBUS).
 *
 * The byte-level definition is in audit_internal.h and docs/audit.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"

const char nhid_audit_zero_chain[AUDIT_HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* ---- the format, shared with the writer --------------------------------- */

/* 0..15 for '0'-'9' and 'a'-'f'; 0xff for anything else (upper case too). */
static uint8_t hexval_lc(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (uint8_t)(c - 'a' + 10);
    return 0xff;
}

static bool is_hex64(const char *p)
{
    /* Branch-light check: every byte in [0-9a-f]. */
    unsigned bad = 0;
    for (size_t i = 0; i < AUDIT_HEX_LEN; i++) {
        unsigned char c = (unsigned char)p[i];
        bad |= (unsigned)((unsigned)(c - '0') > 9u) & (unsigned)((unsigned)(c - 'a') > 5u);
    }
    return bad == 0;
}

bool audit_hex32_decode(const char *hex, uint8_t out[32])
{
    for (size_t i = 0; i < 32; i++) {
        uint8_t hi = hexval_lc((unsigned char)hex[2 * i]);
        uint8_t lo = hexval_lc((unsigned char)hex[2 * i + 1]);
        if (hi > 15 || lo > 15)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

void audit_hex32_encode(const uint8_t in[32], char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    /* An explicitly fetched EVP_MD avoids a provider lookup per digest. */
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *audit_sha256_md(void)
{
    pthread_once(&g_sha256_once, sha256_fetch);
    return g_sha256;
}

bool audit_chain_hash(EVP_MD_CTX *ctx, const char *body, size_t body_len, uint8_t out[32])
{
    unsigned int outlen = 0;
    const EVP_MD *md = audit_sha256_md();
    if (md == NULL || EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
        EVP_DigestUpdate(ctx, body, body_len) != 1 || EVP_DigestUpdate(ctx, "}", 1) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &outlen) != 1 || outlen != 32)
        return false;
    return true;
}

const char *audit_tail_parse(const char *line, size_t len, struct audit_tail *t)
{
    /* Smallest line: {"seq":1,"prev":"<64>","chain":"<64>"} */
    if (len < 1 + AUDIT_SEQ_KEY_LEN + 1 + AUDIT_PREV_TAIL_LEN + AUDIT_CHAIN_TAIL_LEN)
        return "line too short to hold seq, prev and chain";
    if (line[0] != '{')
        return "line does not start with '{'";
    const char *ct = line + len - AUDIT_CHAIN_TAIL_LEN;
    if (line[len - 1] != '}' || line[len - 2] != '"' ||
        memcmp(ct, AUDIT_CHAIN_KEY, AUDIT_CHAIN_KEY_LEN) != 0)
        return "line does not end with ,\"chain\":\"<64 hex>\"}";
    const char *chain_hex = ct + AUDIT_CHAIN_KEY_LEN;
    if (!is_hex64(chain_hex))
        return "chain is not 64 lower-case hex digits";
    size_t body_len = len - AUDIT_CHAIN_TAIL_LEN;
    const char *pt = line + body_len - AUDIT_PREV_TAIL_LEN;
    if (line[body_len - 1] != '"' || memcmp(pt, AUDIT_PREV_KEY, AUDIT_PREV_KEY_LEN) != 0)
        return "no ,\"prev\":\"<64 hex>\" before chain";
    const char *prev_hex = pt + AUDIT_PREV_KEY_LEN;
    if (!is_hex64(prev_hex))
        return "prev is not 64 lower-case hex digits";
    /* Digits of seq, scanning back from the comma before "prev". */
    const char *d_end = pt;
    const char *d = d_end;
    while (d > line && d_end - d < AUDIT_SEQ_DIGITS_MAX + 1 && d[-1] >= '0' && d[-1] <= '9')
        d--;
    size_t ndigits = (size_t)(d_end - d);
    if (ndigits == 0 || ndigits > AUDIT_SEQ_DIGITS_MAX)
        return "seq is not a decimal number of at most 20 digits";
    if ((size_t)(d - line) < 1 + AUDIT_SEQ_KEY_LEN)
        return "no \"seq\": before prev";
    const char *sk = d - AUDIT_SEQ_KEY_LEN;
    if (memcmp(sk, AUDIT_SEQ_KEY, AUDIT_SEQ_KEY_LEN) != 0)
        return "no \"seq\": before prev";
    if (!(sk[-1] == ',' || (sk[-1] == '{' && sk - 1 == line)))
        return "\"seq\" is not a top-level field";
    uint64_t seq = 0;
    for (const char *p = d; p < d_end; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (seq > (UINT64_MAX - digit) / 10)
            return "seq does not fit in 64 bits";
        seq = seq * 10 + digit;
    }
    t->seq = seq;
    t->prev_hex = prev_hex;
    t->chain_hex = chain_hex;
    t->body_len = body_len;
    return NULL;
}

/* ---- verification --------------------------------------------------------- */

const char *nhid_audit_problem_name(enum nhid_audit_problem p)
{
    switch (p) {
    case NHID_AUDIT_PROBLEM_NONE:
        return "ok";
    case NHID_AUDIT_PROBLEM_EDITED:
        return "edited";
    case NHID_AUDIT_PROBLEM_MISSING:
        return "missing";
    case NHID_AUDIT_PROBLEM_REORDERED:
        return "reordered";
    case NHID_AUDIT_PROBLEM_INSERTED:
        return "inserted";
    case NHID_AUDIT_PROBLEM_TRUNCATED:
        return "truncated";
    case NHID_AUDIT_PROBLEM_MALFORMED:
        return "malformed";
    }
    return "unknown";
}

NHID_PRINTF(6, 7)
static int report(struct nhid_audit_verify_result *res, enum nhid_audit_problem *kind,
                  enum nhid_audit_problem k, uint64_t line, uint64_t seq, const char *fmt, ...)
{
    va_list ap;
    res->bad_line = line;
    res->bad_seq = seq;
    va_start(ap, fmt);
    vsnprintf(res->problem, sizeof(res->problem), fmt, ap);
    va_end(ap);
    if (kind != NULL)
        *kind = k;
    return NHID_ERR_TAMPERED;
}

/*
 * A line reader over memory or a file descriptor. For a file it read()s
 * into one reusable buffer (AUDIT_READ_CHUNK at a time) - no page faults
 * per page as with mmap, no SIGBUS if the file shrinks under us, and
 * memory bounded by AUDIT_LINE_MAX.
 */
#define AUDIT_READ_CHUNK ((size_t)4 << 20)

struct line_reader {
    int fd; /* -1: memory */
    const char *mem;
    size_t memlen;
    uint64_t off;   /* offset of the next unread byte (file) or line (memory) */
    char *buf;      /* file mode */
    size_t cap, start, end;
    bool eof;
    uint64_t line_off; /* offset of the line last returned */
    int err;           /* errno of a failed read */
};

enum { LR_END = 0, LR_LINE = 1, LR_LAST = 2, LR_TOO_LONG = -1, LR_ERROR = -2 };

static void lr_init_mem(struct line_reader *lr, const char *mem, size_t len, uint64_t from)
{
    memset(lr, 0, sizeof(*lr));
    lr->fd = -1;
    lr->mem = mem;
    lr->memlen = len;
    lr->off = from;
}

static void lr_init_fd(struct line_reader *lr, int fd, uint64_t from)
{
    memset(lr, 0, sizeof(*lr));
    lr->fd = fd;
    lr->off = from;
}

/*
 * The next line without its '\n': LR_LINE, LR_LAST (no newline: the end
 * of the input), LR_END, LR_TOO_LONG (longer than AUDIT_LINE_MAX) or
 * LR_ERROR (lr->err). The line stays valid until the next call.
 */
static int lr_next(struct line_reader *lr, const char **line, size_t *len)
{
    if (lr->fd < 0) {
        if (lr->off >= lr->memlen)
            return LR_END;
        const char *p = lr->mem + lr->off;
        size_t left = lr->memlen - (size_t)lr->off;
        const char *nl = memchr(p, '\n', left);
        size_t n = nl != NULL ? (size_t)(nl - p) : left;
        if (n > AUDIT_LINE_MAX)
            return LR_TOO_LONG;
        *line = p;
        *len = n;
        lr->line_off = lr->off;
        lr->off += n + (nl != NULL);
        return nl != NULL ? LR_LINE : LR_LAST;
    }
    size_t scanned = 0; /* bytes of the current line already searched */
    if (lr->buf == NULL) {
        lr->buf = malloc(AUDIT_READ_CHUNK);
        if (lr->buf == NULL) {
            lr->err = ENOMEM;
            return LR_ERROR;
        }
        lr->cap = AUDIT_READ_CHUNK;
    }
    for (;;) {
        const char *p = lr->buf + lr->start;
        size_t unscanned = lr->end - lr->start - scanned;
        const char *nl = unscanned > 0 ? memchr(p + scanned, '\n', unscanned) : NULL;
        if (nl != NULL || (lr->eof && lr->end > lr->start)) {
            size_t n = nl != NULL ? (size_t)(nl - p) : lr->end - lr->start;
            if (n > AUDIT_LINE_MAX)
                return LR_TOO_LONG;
            *line = p;
            *len = n;
            lr->line_off = lr->off - (lr->end - lr->start);
            lr->start += n + (nl != NULL);
            return nl != NULL ? LR_LINE : LR_LAST;
        }
        if (lr->eof)
            return LR_END;
        scanned = lr->end - lr->start;
        if (scanned > AUDIT_LINE_MAX)
            return LR_TOO_LONG;
        /* Keep the partial line, make room, read more. */
        if (lr->start > 0) {
            memmove(lr->buf, lr->buf + lr->start, scanned);
            lr->start = 0;
            lr->end = scanned;
        }
        if (lr->cap - lr->end < AUDIT_READ_CHUNK / 2) {
            size_t cap = lr->cap * 2;
            char *nb = realloc(lr->buf, cap);
            if (nb == NULL) {
                lr->err = ENOMEM;
                return LR_ERROR;
            }
            lr->buf = nb;
            lr->cap = cap;
        }
        ssize_t r = read(lr->fd, lr->buf + lr->end, lr->cap - lr->end);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            lr->err = errno;
            return LR_ERROR;
        }
        if (r == 0)
            lr->eof = true;
        lr->end += (size_t)r;
        lr->off += (uint64_t)r;
    }
}

static void lr_free(struct line_reader *lr)
{
    free(lr->buf);
    lr->buf = NULL;
}

/*
 * After a forward seq jump: is one of the skipped seqs [lo, hi] further
 * down the input (from offset `from`)? Then records were reordered, not
 * deleted. Runs at most once, on failure. Returns the line number or 0.
 */
static uint64_t find_seq_later(const struct line_reader *cur, uint64_t from, uint64_t line_no,
                               uint64_t lo, uint64_t hi, uint64_t *found_seq)
{
    struct line_reader lr;
    const char *line;
    size_t n;
    int k;
    uint64_t found = 0;

    if (cur->fd < 0)
        lr_init_mem(&lr, cur->mem, cur->memlen, from);
    else if (lseek(cur->fd, (off_t)from, SEEK_SET) == (off_t)-1)
        return 0;
    else
        lr_init_fd(&lr, cur->fd, from);
    while ((k = lr_next(&lr, &line, &n)) == LR_LINE || k == LR_LAST) {
        struct audit_tail t;
        line_no++;
        if (audit_tail_parse(line, n, &t) == NULL && t.seq >= lo && t.seq <= hi) {
            *found_seq = t.seq;
            found = line_no;
            break;
        }
    }
    lr_free(&lr);
    return found;
}

static int verify_lines(struct line_reader *lr, struct nhid_audit_verify_result *res,
                        enum nhid_audit_problem *kind)
{
    int rc = NHID_OK;
    uint64_t line_no = 0;
    uint64_t last_seq = 0;
    char last_chain[AUDIT_HEX_LEN];
    char last_prev[AUDIT_HEX_LEN];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const char *line;
    size_t n;
    int k;

    memcpy(last_chain, nhid_audit_zero_chain, AUDIT_HEX_LEN);
    if (ctx == NULL) {
        snprintf(res->problem, sizeof(res->problem), "out of memory");
        return NHID_ERR_NOMEM;
    }
    while ((k = lr_next(lr, &line, &n)) != LR_END) {
        struct audit_tail t;
        uint8_t digest[32];
        char digest_hex[AUDIT_HEX_LEN];
        line_no++;
        if (k == LR_ERROR) {
            snprintf(res->problem, sizeof(res->problem), "read failed at line %llu: %s",
                     (unsigned long long)line_no, strerror(lr->err));
            NHID_FAIL(NHID_ERR_IO);
        }
        if (k == LR_TOO_LONG)
            NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_MALFORMED, line_no, 0,
                             "line %llu is longer than %llu bytes: not an audit record",
                             (unsigned long long)line_no,
                             (unsigned long long)AUDIT_LINE_MAX));
        const char *why = audit_tail_parse(line, n, &t);
        if (k == LR_LAST) {
            /* A crash between write() and its completion leaves this. */
            if (why == NULL)
                NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_TRUNCATED, line_no, t.seq,
                                 "last line %llu is truncated: no newline after record seq "
                                 "%llu (incomplete write, e.g. a crash while appending)",
                                 (unsigned long long)line_no, (unsigned long long)t.seq));
            NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_TRUNCATED, line_no, 0,
                             "last line %llu is truncated: %zu bytes without a newline or "
                             "chain; expected record seq %llu (incomplete write, e.g. a crash "
                             "while appending)",
                             (unsigned long long)line_no, n, (unsigned long long)last_seq + 1));
        }
        if (why != NULL)
            NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_MALFORMED, line_no, 0,
                             "line %llu is not an audit record (%s): edited or inserted; "
                             "expected record seq %llu",
                             (unsigned long long)line_no, why, (unsigned long long)last_seq + 1));
        if (!audit_chain_hash(ctx, line, t.body_len, digest)) {
            snprintf(res->problem, sizeof(res->problem), "SHA-256 failed");
            NHID_FAIL(NHID_ERR_CRYPTO);
        }
        audit_hex32_encode(digest, digest_hex);
        if (memcmp(digest_hex, t.chain_hex, AUDIT_HEX_LEN) != 0)
            NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_EDITED, line_no, t.seq,
                             "record seq %llu (line %llu) was edited: chain mismatch (its "
                             "bytes do not hash to its chain value)",
                             (unsigned long long)t.seq, (unsigned long long)line_no));
        bool prev_links = memcmp(t.prev_hex, last_chain, AUDIT_HEX_LEN) == 0;
        if (t.seq == last_seq + 1 && prev_links) {
            /* The normal case: this record follows the previous one. */
        } else if (t.seq > last_seq + 1) {
            uint64_t found_seq = 0;
            uint64_t later = find_seq_later(lr, lr->line_off + n + 1, line_no, last_seq + 1,
                                            t.seq - 1, &found_seq);
            if (later != 0)
                NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_REORDERED, line_no, t.seq,
                                 "record seq %llu (line %llu) is out of order: expected seq "
                                 "%llu, and seq %llu appears later at line %llu (records "
                                 "reordered)",
                                 (unsigned long long)t.seq, (unsigned long long)line_no,
                                 (unsigned long long)last_seq + 1,
                                 (unsigned long long)found_seq, (unsigned long long)later));
            if (prev_links)
                NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_INSERTED, line_no, t.seq,
                                 "record seq %llu (line %llu) links to the previous record "
                                 "but its seq jumps from %llu: forged record inserted or "
                                 "replaced",
                                 (unsigned long long)t.seq, (unsigned long long)line_no,
                                 (unsigned long long)last_seq));
            if (t.seq - last_seq == 2)
                NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_MISSING, line_no, t.seq,
                                 "record seq %llu is missing before line %llu (seq %llu): "
                                 "deleted",
                                 (unsigned long long)last_seq + 1, (unsigned long long)line_no,
                                 (unsigned long long)t.seq));
            NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_MISSING, line_no, t.seq,
                             "records seq %llu..%llu are missing before line %llu (seq %llu): "
                             "deleted",
                             (unsigned long long)last_seq + 1, (unsigned long long)t.seq - 1,
                             (unsigned long long)line_no, (unsigned long long)t.seq));
        } else if (t.seq <= last_seq) {
            if (t.seq == last_seq && line_no > 1 &&
                memcmp(t.prev_hex, last_prev, AUDIT_HEX_LEN) == 0)
                NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_INSERTED, line_no, t.seq,
                                 "lines %llu and %llu both claim seq %llu after the same "
                                 "record: one of them was inserted (or duplicated)",
                                 (unsigned long long)line_no - 1, (unsigned long long)line_no,
                                 (unsigned long long)t.seq));
            NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_REORDERED, line_no, t.seq,
                             "record seq %llu (line %llu) does not follow seq %llu of the "
                             "previous line: records reordered, duplicated or inserted",
                             (unsigned long long)t.seq, (unsigned long long)line_no,
                             (unsigned long long)last_seq));
        } else {
            NHID_FAIL(report(res, kind, NHID_AUDIT_PROBLEM_INSERTED, line_no, t.seq,
                             "record seq %llu (line %llu) has the expected seq but its prev "
                             "is not %s: forged record inserted or replaced",
                             (unsigned long long)t.seq, (unsigned long long)line_no,
                             line_no == 1 ? "64 zeros (first record)"
                                          : "the previous record's chain"));
        }
        last_seq = t.seq;
        memcpy(last_chain, t.chain_hex, AUDIT_HEX_LEN);
        memcpy(last_prev, t.prev_hex, AUDIT_HEX_LEN);
        res->records++;
    }
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int nhid_audit_verify_mem(const void *buf, size_t len, struct nhid_audit_verify_result *res,
                          enum nhid_audit_problem *kind)
{
    struct line_reader lr;
    memset(res, 0, sizeof(*res));
    if (kind != NULL)
        *kind = NHID_AUDIT_PROBLEM_NONE;
    lr_init_mem(&lr, buf, buf != NULL ? len : 0, 0);
    return verify_lines(&lr, res, kind);
}

int nhid_audit_verify_file_ex(const char *path, struct nhid_audit_verify_result *res,
                              enum nhid_audit_problem *kind)
{
    int rc = NHID_OK;
    int fd = -1;
    struct stat st;
    struct line_reader lr;

    memset(res, 0, sizeof(*res));
    if (kind != NULL)
        *kind = NHID_AUDIT_PROBLEM_NONE;
    lr_init_fd(&lr, -1, 0);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(res->problem, sizeof(res->problem), "cannot open: %s", strerror(errno));
        NHID_FAIL(NHID_ERR_IO);
    }
    if (fstat(fd, &st) != 0) {
        snprintf(res->problem, sizeof(res->problem), "cannot stat: %s", strerror(errno));
        NHID_FAIL(NHID_ERR_IO);
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(res->problem, sizeof(res->problem),
                 "not a regular file (verify the file a device writes to)");
        NHID_FAIL(NHID_ERR_IO);
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    lr_init_fd(&lr, fd, 0);
    rc = verify_lines(&lr, res, kind);
out:
    lr_free(&lr);
    if (fd >= 0)
        close(fd);
    return rc;
}

int nhid_audit_verify_file(const char *path, struct nhid_audit_verify_result *res)
{
    return nhid_audit_verify_file_ex(path, res, NULL);
}

/* ---- nhid audit verify ------------------------------------------------------- */

static void verify_usage(FILE *f)
{
    fputs("Usage: nhid audit verify [-format=json] FILE...\n"
          "\n"
          "  Verify the hash chain of audit file device logs: every record's chain\n"
          "  value, the link to the previous record (prev) and the sequence (seq).\n"
          "  Names the first edited, missing, reordered or inserted record, and a\n"
          "  truncated last line. No server or token is needed.\n"
          "\n"
          "  Exit status: 0 every file verified, 1 a file was tampered with,\n"
          "  2 usage or I/O error (1 wins when both occur).\n"
          "\n"
          "Options:\n"
          "  -format=json   print one JSON object: {\"ok\":...,\"files\":[...]}\n"
          "  -format=table  print one line per file (default)\n"
          "  -h, -help      print this help\n",
          f);
}

int nhid_audit_verify_main(int argc, char **argv)
{
    bool json = false;
    bool any_tampered = false, any_error = false;
    int nfiles = 0;
    json_t *files = NULL;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            break;
        if (arg[0] != '-' || arg[1] == '\0') {
            nfiles++;
            continue;
        }
        if (arg[1] == '-')
            arg++; /* accept --flag like Go's flag package */
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "-help") == 0) {
            verify_usage(stdout);
            return 0;
        } else if (strcmp(arg, "-format=json") == 0) {
            json = true;
        } else if (strcmp(arg, "-format=table") == 0) {
            json = false;
        } else if (nhid_has_prefix(arg, "-format=")) {
            fprintf(stderr, "nhid audit verify: -format \"%s\": unknown format (use json or "
                            "table)\n",
                    arg + 8);
            return 2;
        } else {
            fprintf(stderr, "nhid audit verify: unknown flag \"%s\"\n\n", argv[i]);
            verify_usage(stderr);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            nfiles += argc - i - 1;
            break;
        }
    if (nfiles == 0) {
        fprintf(stderr, "nhid audit verify: no FILE given\n\n");
        verify_usage(stderr);
        return 2;
    }
    if (json) {
        files = json_array();
        if (files == NULL) {
            fprintf(stderr, "nhid audit verify: out of memory\n");
            return 2;
        }
    }
    bool after_dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *path = argv[i];
        if (!after_dashdash && strcmp(path, "--") == 0) {
            after_dashdash = true;
            continue;
        }
        if (!after_dashdash && path[0] == '-' && path[1] != '\0')
            continue;
        struct nhid_audit_verify_result res;
        enum nhid_audit_problem kind = NHID_AUDIT_PROBLEM_NONE;
        int rc = nhid_audit_verify_file_ex(path, &res, &kind);
        if (rc == NHID_ERR_TAMPERED)
            any_tampered = true;
        else if (rc != NHID_OK)
            any_error = true;
        if (json) {
            json_t *o;
            if (rc == NHID_OK)
                o = json_pack("{s:s, s:s, s:I}", "file", path, "status", "ok", "records",
                              (json_int_t)res.records);
            else if (rc == NHID_ERR_TAMPERED)
                o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "file", path, "status",
                              "tampered", "records", (json_int_t)res.records, "line",
                              (json_int_t)res.bad_line, "seq", (json_int_t)res.bad_seq, "kind",
                              nhid_audit_problem_name(kind), "problem", res.problem);
            else
                o = json_pack("{s:s, s:s, s:s}", "file", path, "status", "error", "error",
                              res.problem[0] != '\0' ? res.problem : nhid_strerror(rc));
            if (o == NULL || json_array_append_new(files, o) != 0) {
                fprintf(stderr, "nhid audit verify: out of memory\n");
                json_decref(files);
                return 2;
            }
        } else if (rc == NHID_OK) {
            printf("%s: OK, %llu records\n", path, (unsigned long long)res.records);
        } else if (rc == NHID_ERR_TAMPERED) {
            if (res.bad_seq != 0)
                printf("%s: TAMPERED at line %llu (seq %llu): %s\n", path,
                       (unsigned long long)res.bad_line, (unsigned long long)res.bad_seq,
                       res.problem);
            else
                printf("%s: TAMPERED at line %llu (seq unknown): %s\n", path,
                       (unsigned long long)res.bad_line, res.problem);
        } else {
            fprintf(stderr, "%s: ERROR: %s\n", path,
                    res.problem[0] != '\0' ? res.problem : nhid_strerror(rc));
        }
    }
    if (json) {
        json_t *top = json_pack("{s:b, s:o}", "ok", !any_tampered && !any_error, "files", files);
        char *s = top != NULL ? json_dumps(top, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (s == NULL) {
            fprintf(stderr, "nhid audit verify: out of memory\n");
            json_decref(top);
            return 2;
        }
        puts(s);
        free(s);
        json_decref(top);
    }
    fflush(stdout);
    if (any_tampered)
        return 1;
    return any_error ? 2 : 0;
}
