/*
 * config_parse — lexer and recursive-descent parser for nhid's HCL subset
 * (grammar and JSON mapping in config.h).
 *
 * The lexer works on a bounded (pointer, length) view of the input and
 * never reads past it; decoded strings go into one scratch buffer of
 * NHID_CONFIG_MAX_STRING bytes owned by the parser, so a token's string is
 * valid only until the next token is read -- the parser copies it first.
 * Recursion depth is bounded by NHID_CONFIG_MAX_DEPTH.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

enum tok_kind {
    T_EOF,
    T_NEWLINE,
    T_IDENT,
    T_STRING,
    T_NUMBER,
    T_LBRACE,
    T_RBRACE,
    T_LBRACK,
    T_RBRACK,
    T_EQUALS,
    T_COMMA,
    T_COLON, /* never valid; lexed so errors can say what was expected instead */
};

struct token {
    enum tok_kind kind;
    unsigned line, col;
    size_t start, end; /* raw span in the input */
    /* T_STRING: decoded text in parser->scratch */
    size_t slen;
    /* T_NUMBER */
    bool is_int;
    json_int_t ival;
    double dval;
};

struct parser {
    const unsigned char *src;
    size_t len;
    size_t pos;
    unsigned line, col;
    const char *filename;
    char *errbuf;
    size_t errlen;
    bool have_error;
    char *scratch; /* NHID_CONFIG_MAX_STRING bytes */
    size_t values;
    struct token tok; /* the current (lookahead) token */
};

/* A source position, for "first defined at" notes and unclosed brackets. */
struct pos {
    unsigned line, col;
};

/* ---- errors ------------------------------------------------------------- */

/*
 * Record the first error as "FILE:LINE:COL: message" and return
 * NHID_ERR_INVALID. Later errors (there are none on the normal path) are
 * ignored so the message always describes the root cause.
 */
NHID_PRINTF(4, 5)
static int perr(struct parser *p, unsigned line, unsigned col, const char *fmt, ...)
{
    if (p->have_error)
        return NHID_ERR_INVALID;
    p->have_error = true;
    if (p->errbuf == NULL || p->errlen == 0)
        return NHID_ERR_INVALID;
    int n = snprintf(p->errbuf, p->errlen, "%s:%u:%u: ", p->filename, line, col);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->errbuf + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return NHID_ERR_INVALID;
}

static int nomem(struct parser *p)
{
    if (!p->have_error && p->errbuf != NULL && p->errlen > 0)
        snprintf(p->errbuf, p->errlen, "%s: out of memory", p->filename);
    p->have_error = true;
    return NHID_ERR_NOMEM;
}

/*
 * Copy at most 32 bytes of untrusted text into out for an error message,
 * replacing anything that is not printable ASCII (or is a quote or
 * backslash) with '?', and marking truncation with "...".
 */
static void sanitize(const unsigned char *s, size_t n, char out[40])
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < 32; i++)
        out[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? (char)s[i] : '?';
    if (n > 32) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Describe the current token for "found X" in messages. */
static const char *describe(struct parser *p, char *buf, size_t buflen)
{
    char s[40];
    const struct token *t = &p->tok;
    switch (t->kind) {
    case T_EOF:
        return "end of file";
    case T_NEWLINE:
        return "end of line";
    case T_LBRACE:
        return "\"{\"";
    case T_RBRACE:
        return "\"}\"";
    case T_LBRACK:
        return "\"[\"";
    case T_RBRACK:
        return "\"]\"";
    case T_EQUALS:
        return "\"=\"";
    case T_COMMA:
        return "\",\"";
    case T_COLON:
        return "\":\" (use \"=\" to set a value)";
    case T_IDENT:
        sanitize(p->src + t->start, t->end - t->start, s);
        snprintf(buf, buflen, "identifier \"%s\"", s);
        return buf;
    case T_STRING:
        sanitize((const unsigned char *)p->scratch, t->slen, s);
        snprintf(buf, buflen, "string \"%s\"", s);
        return buf;
    case T_NUMBER:
        sanitize(p->src + t->start, t->end - t->start, s);
        snprintf(buf, buflen, "number %s", s);
        return buf;
    }
    return "unknown token";
}

/* ---- lexer -------------------------------------------------------------- */

/* Advance one byte, keeping line and column (in code points) current. */
static void adv(struct parser *p)
{
    unsigned char c = p->src[p->pos++];
    if (c == '\n') {
        p->line++;
        p->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        p->col++;
    }
}

static int peek_at(const struct parser *p, size_t off)
{
    return p->pos + off < p->len ? p->src[p->pos + off] : -1;
}

static bool is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '-';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/*
 * Length (1..4) of the well-formed UTF-8 sequence at s, or 0 if it is not
 * well-formed: truncated, overlong, a surrogate or above U+10FFFF
 * (Unicode 15, table 3-7).
 */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/*
 * Check the character at the cursor inside a string, heredoc or comment:
 * well-formed UTF-8 and no control characters other than tab (and CR,
 * which CRLF files have). Returns its length in bytes.
 */
static int check_text_char(struct parser *p, const char *what, size_t *n_out)
{
    unsigned char c = p->src[p->pos];
    if (c == 0)
        return perr(p, p->line, p->col, "NUL byte in %s", what);
    if (c < 0x20 && c != '\t' && c != '\r')
        return perr(p, p->line, p->col, "control character 0x%02x in %s (use an escape)", c, what);
    size_t n = utf8_seq_len(p->src + p->pos, p->len - p->pos);
    if (n == 0)
        return perr(p, p->line, p->col, "invalid UTF-8 in %s (byte 0x%02x)", what, c);
    *n_out = n;
    return NHID_OK;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Read the 4 hex digits after "\u" (cursor on the 'u'); advance past them. */
static int read_u4(struct parser *p, unsigned eline, unsigned ecol, unsigned *out)
{
    unsigned v = 0;
    adv(p); /* 'u' */
    for (int i = 0; i < 4; i++) {
        int h = peek_at(p, 0) < 0 ? -1 : hexval(peek_at(p, 0));
        if (h < 0)
            return perr(p, eline, ecol, "invalid escape: \\u must be followed by 4 hex digits");
        v = v * 16 + (unsigned)h;
        adv(p);
    }
    *out = v;
    return NHID_OK;
}

static int scratch_put(struct parser *p, struct token *t, const void *b, size_t n, const char *what)
{
    if (n > NHID_CONFIG_MAX_STRING - t->slen)
        return perr(p, t->line, t->col, "%s too long (maximum %u bytes)", what,
                    NHID_CONFIG_MAX_STRING);
    memcpy(p->scratch + t->slen, b, n);
    t->slen += n;
    return NHID_OK;
}

static size_t utf8_encode(unsigned cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A quoted string; the cursor is on the opening quote. */
static int lex_string(struct parser *p, struct token *t)
{
    int rc = NHID_OK;
    adv(p); /* opening quote */
    for (;;) {
        if (p->pos >= p->len)
            return perr(p, t->line, t->col, "unterminated string (missing closing '\"')");
        unsigned char c = p->src[p->pos];
        if (c == '"') {
            adv(p);
            return NHID_OK;
        }
        if (c == '\n')
            return perr(p, t->line, t->col,
                        "unterminated string: line ends before the closing '\"' (use \\n "
                        "or a heredoc for multi-line text)");
        if (c == '\\') {
            unsigned eline = p->line, ecol = p->col;
            adv(p);
            int e = peek_at(p, 0);
            char one = 0;
            switch (e) {
            case '"':
                one = '"';
                break;
            case '\\':
                one = '\\';
                break;
            case 'n':
                one = '\n';
                break;
            case 'r':
                one = '\r';
                break;
            case 't':
                one = '\t';
                break;
            case 'u': {
                unsigned cp, lo;
                NHID_TRY(read_u4(p, eline, ecol, &cp));
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return perr(p, eline, ecol, "invalid escape: unpaired UTF-16 surrogate");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (peek_at(p, 0) != '\\' || peek_at(p, 1) != 'u')
                        return perr(p, eline, ecol, "invalid escape: unpaired UTF-16 surrogate");
                    adv(p); /* backslash */
                    NHID_TRY(read_u4(p, eline, ecol, &lo));
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return perr(p, eline, ecol, "invalid escape: unpaired UTF-16 surrogate");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp == 0)
                    return perr(p, eline, ecol, "\\u0000 (NUL) is not allowed in strings");
                unsigned char u8[4];
                NHID_TRY(scratch_put(p, t, u8, utf8_encode(cp, u8), "string"));
                continue;
            }
            case -1:
                return perr(p, t->line, t->col, "unterminated string (missing closing '\"')");
            default: {
                char shown[40];
                sanitize(p->src + p->pos, 1, shown);
                return perr(p, eline, ecol,
                            "invalid escape \"\\%s\" in string (use \\\", \\\\, \\n, \\r, \\t "
                            "or \\uXXXX)",
                            shown);
            }
            }
            adv(p);
            NHID_TRY(scratch_put(p, t, &one, 1, "string"));
            continue;
        }
        size_t n;
        if (c == '\r')
            return perr(p, p->line, p->col, "control character 0x0d in string (use \\r)");
        NHID_TRY(check_text_char(p, "string", &n));
        NHID_TRY(scratch_put(p, t, p->src + p->pos, n, "string"));
        for (size_t i = 0; i < n; i++)
            adv(p);
    }
out:
    return rc;
}

/*
 * A heredoc: <<MARK or <<-MARK, a newline, lines of text, and a line
 * holding only MARK (indentation allowed). The cursor is on the first '<'.
 * With "<<-" the smallest indentation of the non-blank lines is removed
 * from every line. CRLF is normalised to LF. The text keeps the newline
 * of its last line, as in HCL.
 */
static int lex_heredoc(struct parser *p, struct token *t)
{
    int rc = NHID_OK;
    adv(p);
    adv(p); /* "<<" */
    bool strip = false;
    if (peek_at(p, 0) == '-') {
        strip = true;
        adv(p);
    }
    if (!is_ident_start(peek_at(p, 0)))
        return perr(p, t->line, t->col, "expected a heredoc marker name after \"<<\" (e.g. <<EOF)");
    size_t mstart = p->pos;
    while (p->pos < p->len && is_ident_char(p->src[p->pos]))
        adv(p);
    size_t mlen = p->pos - mstart;
    if (mlen > NHID_CONFIG_MAX_STRING)
        return perr(p, t->line, t->col, "heredoc marker too long");
    if (peek_at(p, 0) == '\r' && peek_at(p, 1) == '\n')
        adv(p);
    if (peek_at(p, 0) != '\n')
        return perr(p, p->line, p->col, "heredoc marker must be followed by a line break");
    adv(p);

    /* Pass 1: find the closing marker, validate the text, measure indentation. */
    size_t body = p->pos, body_end = 0;
    size_t min_indent = SIZE_MAX;
    char mark[40];
    sanitize(p->src + mstart, mlen, mark);
    for (;;) {
        if (p->pos >= p->len)
            return perr(p, t->line, t->col, "unterminated heredoc (missing closing marker %s)",
                        mark);
        size_t ls = p->pos;
        const unsigned char *nl = memchr(p->src + ls, '\n', p->len - ls);
        size_t le = nl ? (size_t)(nl - p->src) : p->len;
        size_t ts = ls;
        while (ts < le && (p->src[ts] == ' ' || p->src[ts] == '\t'))
            ts++;
        size_t te = le;
        if (te > ts && p->src[te - 1] == '\r')
            te--;
        if (te - ts == mlen && memcmp(p->src + ts, p->src + mstart, mlen) == 0) {
            body_end = ls;
            while (p->pos < te)
                adv(p);
            break;
        }
        if (ts < te && ts - ls < min_indent)
            min_indent = ts - ls;
        while (p->pos < le) {
            size_t n;
            NHID_TRY(check_text_char(p, "heredoc", &n));
            for (size_t i = 0; i < n; i++)
                adv(p);
        }
        if (p->pos < p->len)
            adv(p); /* '\n' */
    }
    if (!strip || min_indent == SIZE_MAX)
        min_indent = 0;

    /* Pass 2: copy the lines, stripped and normalised, into scratch. */
    for (size_t ls = body; ls < body_end;) {
        const unsigned char *nl = memchr(p->src + ls, '\n', body_end - ls);
        size_t le = nl ? (size_t)(nl - p->src) : body_end;
        size_t cs = ls;
        while (cs < le && cs - ls < min_indent && (p->src[cs] == ' ' || p->src[cs] == '\t'))
            cs++;
        size_t ce = le;
        if (ce > cs && p->src[ce - 1] == '\r')
            ce--;
        NHID_TRY(scratch_put(p, t, p->src + cs, ce - cs, "heredoc"));
        if (nl)
            NHID_TRY(scratch_put(p, t, "\n", 1, "heredoc"));
        ls = nl ? le + 1 : body_end;
    }
out:
    return rc;
}

/* A number; the cursor is on '-' or a digit. */
static int lex_number(struct parser *p, struct token *t)
{
    size_t s = p->pos;
    bool is_int = true;
    if (peek_at(p, 0) == '-')
        adv(p);
    if (!is_digit(peek_at(p, 0)))
        return perr(p, t->line, t->col, "unexpected \"-\" (expected a number after it)");
    if (peek_at(p, 0) == '0' && is_digit(peek_at(p, 1))) {
        char shown[40];
        size_t e = p->pos;
        while (e < p->len && is_digit(p->src[e]))
            e++;
        sanitize(p->src + s, e - s, shown);
        return perr(p, t->line, t->col,
                    "number \"%s\": leading zeros are not allowed (quote it if it is a string)",
                    shown);
    }
    while (is_digit(peek_at(p, 0)))
        adv(p);
    if (peek_at(p, 0) == '.' && is_digit(peek_at(p, 1))) {
        is_int = false;
        adv(p);
        while (is_digit(peek_at(p, 0)))
            adv(p);
    }
    if (peek_at(p, 0) == 'e' || peek_at(p, 0) == 'E') {
        int a = peek_at(p, 1), b = peek_at(p, 2);
        if (is_digit(a) || ((a == '+' || a == '-') && is_digit(b))) {
            is_int = false;
            adv(p);
            if (!is_digit(peek_at(p, 0)))
                adv(p);
            while (is_digit(peek_at(p, 0)))
                adv(p);
        }
    }
    if (is_ident_char(peek_at(p, 0)) || peek_at(p, 0) == '.') {
        /* "10s", "1MiB", "1.2.3": a value with a unit that was not quoted. */
        size_t e = p->pos;
        while (e < p->len && (is_ident_char(p->src[e]) || p->src[e] == '.'))
            e++;
        char shown[40];
        sanitize(p->src + s, e - s, shown);
        return perr(p, t->line, t->col,
                    "invalid number \"%s\" (values with units must be quoted, e.g. \"%s\")", shown,
                    shown);
    }
    size_t n = p->pos - s;
    char buf[72];
    if (n >= sizeof(buf))
        return perr(p, t->line, t->col, "number too long (maximum %zu characters)",
                    sizeof(buf) - 1);
    memcpy(buf, p->src + s, n);
    buf[n] = '\0';
    t->is_int = is_int;
    errno = 0;
    if (is_int) {
        char *end;
        long long v = strtoll(buf, &end, 10);
        if (errno == ERANGE || *end != '\0')
            return perr(p, t->line, t->col, "integer %s is out of range (64-bit signed)", buf);
        t->ival = (json_int_t)v;
    } else {
        char *end;
        double d = strtod(buf, &end);
        if (*end != '\0' || !isfinite(d))
            return perr(p, t->line, t->col, "number %s is out of range", buf);
        t->dval = d;
    }
    return NHID_OK;
}

/*
 * Skip blanks and comments. A newline is a token (attributes end at one),
 * so this stops before '\n'; a block comment that spans lines counts as
 * a line break and sets *newline.
 */
static int skip_space(struct parser *p, bool *newline, struct pos *nlpos)
{
    int rc = NHID_OK;
    *newline = false;
    for (;;) {
        int c = peek_at(p, 0);
        if (c == ' ' || c == '\t' || (c == '\r' && peek_at(p, 1) == '\n')) {
            adv(p);
        } else if (c == '#' || (c == '/' && peek_at(p, 1) == '/')) {
            while (p->pos < p->len && p->src[p->pos] != '\n') {
                size_t n;
                NHID_TRY(check_text_char(p, "comment", &n));
                for (size_t i = 0; i < n; i++)
                    adv(p);
            }
        } else if (c == '/' && peek_at(p, 1) == '*') {
            unsigned sl = p->line, sc = p->col;
            adv(p);
            adv(p);
            for (;;) {
                if (p->pos >= p->len)
                    return perr(p, sl, sc, "unterminated block comment (missing \"*/\")");
                if (p->src[p->pos] == '*' && peek_at(p, 1) == '/') {
                    adv(p);
                    adv(p);
                    break;
                }
                if (p->src[p->pos] == '\n') {
                    if (!*newline) {
                        nlpos->line = sl;
                        nlpos->col = sc;
                    }
                    *newline = true;
                    adv(p);
                    continue;
                }
                size_t n;
                NHID_TRY(check_text_char(p, "comment", &n));
                for (size_t i = 0; i < n; i++)
                    adv(p);
            }
        } else {
            return NHID_OK;
        }
    }
out:
    return rc;
}

/* Read the next token into p->tok. */
static int next(struct parser *p)
{
    int rc = NHID_OK;
    struct token *t = &p->tok;
    bool comment_nl;
    struct pos nlpos = {0, 0};
    memset(t, 0, sizeof(*t));
    NHID_TRY(skip_space(p, &comment_nl, &nlpos));
    t->line = p->line;
    t->col = p->col;
    t->start = p->pos;
    if (comment_nl) {
        t->kind = T_NEWLINE;
        t->line = nlpos.line;
        t->col = nlpos.col;
        t->end = p->pos;
        return NHID_OK;
    }
    int c = peek_at(p, 0);
    switch (c) {
    case -1:
        t->kind = T_EOF;
        break;
    case '\n':
        t->kind = T_NEWLINE;
        adv(p);
        break;
    case '{':
        t->kind = T_LBRACE;
        adv(p);
        break;
    case '}':
        t->kind = T_RBRACE;
        adv(p);
        break;
    case '[':
        t->kind = T_LBRACK;
        adv(p);
        break;
    case ']':
        t->kind = T_RBRACK;
        adv(p);
        break;
    case '=':
        t->kind = T_EQUALS;
        adv(p);
        break;
    case ',':
        t->kind = T_COMMA;
        adv(p);
        break;
    case ':':
        t->kind = T_COLON;
        adv(p);
        break;
    case '"':
        t->kind = T_STRING;
        NHID_TRY(lex_string(p, t));
        break;
    default:
        if (c == '<' && peek_at(p, 1) == '<') {
            t->kind = T_STRING;
            NHID_TRY(lex_heredoc(p, t));
        } else if (c == '-' || is_digit(c)) {
            t->kind = T_NUMBER;
            NHID_TRY(lex_number(p, t));
        } else if (is_ident_start(c)) {
            t->kind = T_IDENT;
            while (p->pos < p->len && is_ident_char(p->src[p->pos]))
                adv(p);
            if (p->pos - t->start > NHID_CONFIG_MAX_STRING)
                return perr(p, t->line, t->col, "name too long (maximum %u bytes)",
                            NHID_CONFIG_MAX_STRING);
        } else if (c == 0) {
            return perr(p, t->line, t->col, "unexpected NUL byte");
        } else if (c < 0x20 || c == 0x7f) {
            return perr(p, t->line, t->col, "unexpected control character 0x%02x", c);
        } else if (c >= 0x80) {
            if (utf8_seq_len(p->src + p->pos, p->len - p->pos) == 0)
                return perr(p, t->line, t->col, "invalid UTF-8 (byte 0x%02x)", c);
            return perr(p, t->line, t->col,
                        "unexpected non-ASCII character (names are ASCII; quote text as a "
                        "string)");
        } else {
            return perr(p, t->line, t->col, "unexpected character \"%c\"", c);
        }
        break;
    }
    t->end = p->pos;
out:
    return rc;
}

static int skip_newlines(struct parser *p)
{
    int rc = NHID_OK;
    while (p->tok.kind == T_NEWLINE)
        NHID_TRY(next(p));
out:
    return rc;
}

/* ---- parser ------------------------------------------------------------- */

static int count_value(struct parser *p)
{
    if (++p->values > NHID_CONFIG_MAX_VALUES)
        return perr(p, p->tok.line, p->tok.col, "too many values in one file (maximum %d)",
                    NHID_CONFIG_MAX_VALUES);
    return NHID_OK;
}

/*
 * Names already used in one body or object, with where they were first
 * defined: seen[name] = ((line << 22) | col) << 1 | is_block. Lines and
 * columns fit in 21 bits because the input is at most 1 MiB.
 */
static json_int_t seen_pack(unsigned line, unsigned col, bool is_block)
{
    return (json_int_t)(((((uint64_t)line) << 22 | (col & 0x3FFFFF)) << 1) | (is_block ? 1 : 0));
}

static void seen_unpack(json_t *v, unsigned *line, unsigned *col, bool *is_block)
{
    uint64_t x = (uint64_t)json_integer_value(v);
    *is_block = x & 1;
    *col = (unsigned)((x >> 1) & 0x3FFFFF);
    *line = (unsigned)(x >> 23);
}

static int parse_value(struct parser *p, int depth, json_t **out);

/* "[" value, ... "]" -- the cursor is on "[". */
static int parse_list(struct parser *p, int depth, json_t **out)
{
    int rc = NHID_OK;
    char d[80];
    struct pos open = {p->tok.line, p->tok.col};
    json_t *arr = json_array();
    if (arr == NULL)
        NHID_FAIL(nomem(p));
    NHID_TRY(next(p));
    for (;;) {
        NHID_TRY(skip_newlines(p));
        if (p->tok.kind == T_RBRACK)
            break;
        if (p->tok.kind == T_EOF)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "unexpected end of file in list opened at %u:%u (missing \"]\")",
                           open.line, open.col));
        if (json_array_size(arr) >= NHID_CONFIG_MAX_ITEMS)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col, "too many list elements (maximum %d)",
                           NHID_CONFIG_MAX_ITEMS));
        json_t *v = NULL;
        NHID_TRY(parse_value(p, depth, &v));
        if (json_array_append_new(arr, v) != 0)
            NHID_FAIL(nomem(p));
        NHID_TRY(skip_newlines(p));
        if (p->tok.kind == T_COMMA) {
            NHID_TRY(next(p));
            continue;
        }
        if (p->tok.kind == T_RBRACK)
            break;
        if (p->tok.kind == T_EOF)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "unexpected end of file in list opened at %u:%u (missing \"]\")",
                           open.line, open.col));
        NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                       "expected \",\" or \"]\" in list opened at %u:%u, found %s", open.line,
                       open.col, describe(p, d, sizeof(d))));
    }
    NHID_TRY(next(p)); /* "]" */
    *out = arr;
    arr = NULL;
out:
    json_decref(arr);
    return rc;
}

/* Copy the current IDENT or STRING token as a NUL-terminated key. */
static char *tok_text(struct parser *p)
{
    const struct token *t = &p->tok;
    if (t->kind == T_IDENT)
        return strndup((const char *)p->src + t->start, t->end - t->start);
    return strndup(p->scratch, t->slen);
}

/* "{" key = value, ... "}" -- the cursor is on "{". */
static int parse_object(struct parser *p, int depth, json_t **out)
{
    int rc = NHID_OK;
    char d[80], shown[40];
    char *key = NULL;
    struct pos open = {p->tok.line, p->tok.col};
    json_t *obj = json_object(), *seen = json_object();
    if (obj == NULL)
        NHID_FAIL(nomem(p));
    if (seen == NULL)
        NHID_FAIL(nomem(p));
    NHID_TRY(next(p));
    for (;;) {
        NHID_TRY(skip_newlines(p));
        if (p->tok.kind == T_RBRACE)
            break;
        if (p->tok.kind == T_EOF)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "unexpected end of file in object opened at %u:%u (missing \"}\")",
                           open.line, open.col));
        if (p->tok.kind != T_IDENT && p->tok.kind != T_STRING)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col, "expected an object key, found %s",
                           describe(p, d, sizeof(d))));
        if (json_object_size(obj) >= NHID_CONFIG_MAX_ITEMS)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col, "too many object members (maximum %d)",
                           NHID_CONFIG_MAX_ITEMS));
        struct pos kpos = {p->tok.line, p->tok.col};
        key = tok_text(p);
        if (key == NULL)
            NHID_FAIL(nomem(p));
        sanitize((const unsigned char *)key, strlen(key), shown);
        json_t *prev = json_object_get(seen, key);
        if (prev != NULL) {
            unsigned l, c;
            bool b;
            seen_unpack(prev, &l, &c, &b);
            NHID_FAIL(perr(p, kpos.line, kpos.col,
                           "duplicate key \"%s\" in object (first set at %u:%u)", shown, l, c));
        }
        NHID_TRY(next(p));
        if (p->tok.kind != T_EQUALS)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "expected \"=\" after object key \"%s\", found %s", shown,
                           describe(p, d, sizeof(d))));
        NHID_TRY(next(p));
        json_t *v = NULL;
        NHID_TRY(parse_value(p, depth, &v));
        if (json_object_set_new(obj, key, v) != 0 ||
            json_object_set_new(seen, key, json_integer(seen_pack(kpos.line, kpos.col, false))) !=
                0)
            NHID_FAIL(nomem(p));
        free(key);
        key = NULL;
        if (p->tok.kind == T_COMMA || p->tok.kind == T_NEWLINE) {
            NHID_TRY(next(p));
            continue;
        }
        if (p->tok.kind == T_RBRACE)
            break;
        if (p->tok.kind == T_EOF)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "unexpected end of file in object opened at %u:%u (missing \"}\")",
                           open.line, open.col));
        NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                       "expected \",\", a line break or \"}\" after object member \"%s\", found %s",
                       shown, describe(p, d, sizeof(d))));
    }
    NHID_TRY(next(p)); /* "}" */
    *out = obj;
    obj = NULL;
out:
    free(key);
    json_decref(obj);
    json_decref(seen);
    return rc;
}

/* One value; depth is that of the enclosing body or container. */
static int parse_value(struct parser *p, int depth, json_t **out)
{
    int rc = NHID_OK;
    char d[80];
    json_t *v = NULL;
    NHID_TRY(count_value(p));
    switch (p->tok.kind) {
    case T_STRING:
        v = json_stringn(p->scratch, p->tok.slen);
        if (v == NULL)
            NHID_FAIL(nomem(p));
        NHID_TRY(next(p));
        break;
    case T_NUMBER:
        v = p->tok.is_int ? json_integer(p->tok.ival) : json_real(p->tok.dval);
        if (v == NULL)
            NHID_FAIL(nomem(p));
        NHID_TRY(next(p));
        break;
    case T_IDENT: {
        size_t n = p->tok.end - p->tok.start;
        const char *s = (const char *)p->src + p->tok.start;
        if (n == 4 && memcmp(s, "true", 4) == 0) {
            v = json_true();
        } else if (n == 5 && memcmp(s, "false", 5) == 0) {
            v = json_false();
        } else if (n == 4 && memcmp(s, "null", 4) == 0) {
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "null is not supported (leave the setting out to use its default)"));
        } else {
            char shown[40];
            sanitize((const unsigned char *)s, n, shown);
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "expected a value, found identifier \"%s\" (quote strings: \"%s\")",
                           shown, shown));
        }
        NHID_TRY(next(p));
        break;
    }
    case T_LBRACK:
    case T_LBRACE:
        if (depth + 1 > NHID_CONFIG_MAX_DEPTH)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col, "nesting too deep (maximum %d levels)",
                           NHID_CONFIG_MAX_DEPTH));
        if (p->tok.kind == T_LBRACK)
            NHID_TRY(parse_list(p, depth + 1, &v));
        else
            NHID_TRY(parse_object(p, depth + 1, &v));
        break;
    default:
        NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                       "expected a value (string, number, true, false, list or object), found %s",
                       describe(p, d, sizeof(d))));
    }
    *out = v;
    v = NULL;
out:
    json_decref(v);
    return rc;
}

/* After an attribute or a block: a line break, end of file, or the "}" closing the body. */
static int expect_end_of_item(struct parser *p, bool toplevel, const char *what, const char *name)
{
    char d[80];
    enum tok_kind k = p->tok.kind;
    if (k == T_NEWLINE || k == T_EOF || (!toplevel && k == T_RBRACE))
        return NHID_OK;
    return perr(p, p->tok.line, p->tok.col,
                "expected a line break after %s \"%s\", found %s (put each attribute and block "
                "on its own line)",
                what, name, describe(p, d, sizeof(d)));
}

static int parse_body(struct parser *p, json_t *obj, int depth, const struct pos *open);

/*
 * A block: the type name is already read (into name, at npos); the cursor
 * is on the first label or on "{".
 */
static int parse_block(struct parser *p, json_t *obj, json_t *seen, const char *name,
                       const char *shown, struct pos npos, int depth, bool toplevel)
{
    int rc = NHID_OK;
    char d[80];
    json_t *labels = json_array(), *blk = NULL;
    if (labels == NULL)
        NHID_FAIL(nomem(p));
    while (p->tok.kind == T_STRING) {
        if (json_array_size(labels) >= NHID_CONFIG_MAX_LABELS)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col, "too many block labels (maximum %d)",
                           NHID_CONFIG_MAX_LABELS));
        json_t *l = json_stringn(p->scratch, p->tok.slen);
        if (l == NULL || json_array_append_new(labels, l) != 0)
            NHID_FAIL(nomem(p));
        NHID_TRY(next(p));
    }
    if (p->tok.kind == T_IDENT)
        NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                       "block labels must be quoted strings: found %s after block type \"%s\"",
                       describe(p, d, sizeof(d)), shown));
    if (p->tok.kind != T_LBRACE)
        NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                       "expected \"{\" or a quoted label after block type \"%s\", found %s", shown,
                       describe(p, d, sizeof(d))));
    if (depth + 1 > NHID_CONFIG_MAX_DEPTH)
        NHID_FAIL(perr(p, p->tok.line, p->tok.col, "nesting too deep (maximum %d levels)",
                       NHID_CONFIG_MAX_DEPTH));
    struct pos open = {p->tok.line, p->tok.col};
    blk = json_object();
    if (blk == NULL)
        NHID_FAIL(nomem(p));
    if (json_object_set_new(blk, NHID_CONFIG_LABELS_KEY, labels) != 0) {
        labels = NULL;
        NHID_FAIL(nomem(p));
    }
    labels = NULL;
    NHID_TRY(next(p));
    NHID_TRY(parse_body(p, blk, depth + 1, &open));
    NHID_TRY(next(p)); /* "}" */
    NHID_TRY(expect_end_of_item(p, toplevel, "block", shown));

    json_t *arr = json_object_get(obj, name);
    if (arr == NULL) {
        arr = json_array();
        if (arr == NULL || json_object_set_new(obj, name, arr) != 0 ||
            json_object_set_new(seen, name, json_integer(seen_pack(npos.line, npos.col, true))) !=
                0)
            NHID_FAIL(nomem(p));
    }
    if (json_array_append_new(arr, blk) != 0) {
        blk = NULL;
        NHID_FAIL(nomem(p));
    }
    blk = NULL;
out:
    json_decref(labels);
    json_decref(blk);
    return rc;
}

/*
 * Attributes and blocks until end of file (top level, open == NULL) or
 * until the "}" that closes the block opened at *open (left as the
 * current token).
 */
static int parse_body(struct parser *p, json_t *obj, int depth, const struct pos *open)
{
    int rc = NHID_OK;
    char d[80], shown[40];
    char *name = NULL;
    bool toplevel = open == NULL;
    size_t items = 0;
    json_t *seen = json_object();
    if (seen == NULL)
        NHID_FAIL(nomem(p));
    for (;;) {
        NHID_TRY(skip_newlines(p));
        if (p->tok.kind == T_EOF) {
            if (toplevel)
                break;
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "unexpected end of file: block opened at %u:%u is not closed "
                           "(missing \"}\")",
                           open->line, open->col));
        }
        if (p->tok.kind == T_RBRACE) {
            if (!toplevel)
                break;
            NHID_FAIL(perr(p, p->tok.line, p->tok.col, "unexpected \"}\" (no block is open)"));
        }
        if (p->tok.kind != T_IDENT)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "expected an attribute name or block type, found %s",
                           describe(p, d, sizeof(d))));
        if (++items > NHID_CONFIG_MAX_ITEMS)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "too many attributes and blocks in one body (maximum %d)",
                           NHID_CONFIG_MAX_ITEMS));
        struct pos npos = {p->tok.line, p->tok.col};
        name = tok_text(p);
        if (name == NULL)
            NHID_FAIL(nomem(p));
        sanitize((const unsigned char *)name, strlen(name), shown);
        NHID_TRY(next(p));

        bool is_block = p->tok.kind == T_STRING || p->tok.kind == T_LBRACE;
        if (p->tok.kind == T_IDENT)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "expected \"=\" after attribute name \"%s\", found %s (block labels "
                           "must be quoted strings)",
                           shown, describe(p, d, sizeof(d))));
        if (!is_block && p->tok.kind != T_EQUALS)
            NHID_FAIL(perr(p, p->tok.line, p->tok.col,
                           "expected \"=\" after attribute name \"%s\", found %s", shown,
                           describe(p, d, sizeof(d))));
        if (strcmp(name, NHID_CONFIG_LABELS_KEY) == 0)
            NHID_FAIL(perr(p, npos.line, npos.col, "the name \"%s\" is reserved",
                           NHID_CONFIG_LABELS_KEY));
        json_t *prev = json_object_get(seen, name);
        if (prev != NULL) {
            unsigned l, c;
            bool prev_block;
            seen_unpack(prev, &l, &c, &prev_block);
            if (!is_block && !prev_block)
                NHID_FAIL(perr(p, npos.line, npos.col,
                               "duplicate attribute \"%s\" (first set at %u:%u)", shown, l, c));
            if (is_block != prev_block)
                NHID_FAIL(perr(p, npos.line, npos.col,
                               "\"%s\" is used both as %s and as %s (first at %u:%u)", shown,
                               is_block ? "a block" : "an attribute",
                               is_block ? "an attribute" : "a block", l, c));
        }
        if (is_block) {
            NHID_TRY(count_value(p));
            NHID_TRY(parse_block(p, obj, seen, name, shown, npos, depth, toplevel));
        } else {
            json_t *v = NULL;
            NHID_TRY(next(p)); /* "=" */
            NHID_TRY(parse_value(p, depth, &v));
            if (json_object_set_new(obj, name, v) != 0 ||
                json_object_set_new(seen, name,
                                    json_integer(seen_pack(npos.line, npos.col, false))) != 0)
                NHID_FAIL(nomem(p));
            NHID_TRY(expect_end_of_item(p, toplevel, "attribute", shown));
        }
        free(name);
        name = NULL;
    }
out:
    free(name);
    json_decref(seen);
    return rc;
}

int nhid_config_parse(const char *text, size_t len, const char *filename, json_t **out,
                      char *errbuf, size_t errlen)
{
    int rc = NHID_OK;
    json_t *root = NULL;
    struct parser p = {
        .src = (const unsigned char *)text,
        .len = len,
        .line = 1,
        .col = 1,
        .filename = filename ? filename : "<config>",
        .errbuf = errbuf,
        .errlen = errlen,
    };
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (out == NULL || (text == NULL && len > 0))
        NHID_FAIL(perr(&p, 1, 1, "no configuration text given"));
    if (len > NHID_CONFIG_MAX_FILE_SIZE)
        NHID_FAIL(perr(&p, 1, 1, "configuration is %zu bytes, over the %u byte limit", len,
                       NHID_CONFIG_MAX_FILE_SIZE));
    if (len == 0)
        p.src = (const unsigned char *)"";
    /* A UTF-8 byte-order mark, as some editors write, is not content. */
    if (len >= 3 && memcmp(p.src, "\xEF\xBB\xBF", 3) == 0)
        p.pos = 3;
    p.scratch = malloc(NHID_CONFIG_MAX_STRING);
    if (p.scratch == NULL)
        NHID_FAIL(nomem(&p));
    root = json_object();
    if (root == NULL)
        NHID_FAIL(nomem(&p));
    NHID_TRY(next(&p));
    NHID_TRY(parse_body(&p, root, 0, NULL));
    *out = root;
    root = NULL;
out:
    json_decref(root);
    free(p.scratch);
    return rc;
}
