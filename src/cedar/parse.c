/*
 * cedar/parse.c — lexer and recursive-descent parser for Cedar policies
 * (https://docs.cedarpolicy.com/policies/syntax-grammar.html), plus the
 * policy-set container (parse, add, link, find, free).
 *
 * Errors carry "file:line:col: message". The parser never recurses more
 * than CEDAR_MAX_DEPTH levels and rejects ASTs deeper than that, so the
 * evaluator's recursion is bounded too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cedar/internal.h"

enum tok {
    T_EOF = 0,
    T_IDENT,
    T_STR,
    T_INT,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_LBRACE,
    T_RBRACE,
    T_COMMA,
    T_SEMI,
    T_COLON,
    T_DCOLON,
    T_DOT,
    T_AT,
    T_QMARK,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_AND,
    T_OR,
    T_NOT,
    T_MINUS,
    T_PLUS,
    T_STAR,
    T_ASSIGN,
    T_SLASH,
    T_PERCENT,
};

static const char *tok_names[] = {
    "end of input", "identifier", "string literal", "integer literal", "`(`", "`)`", "`[`", "`]`",
    "`{`", "`}`", "`,`", "`;`", "`:`", "`::`", "`.`", "`@`", "`?`", "`==`", "`!=`", "`<`", "`<=`",
    "`>`", "`>=`", "`&&`", "`||`", "`!`", "`-`", "`+`", "`*`", "`=`", "`/`", "`%`",
};

struct token {
    enum tok t;
    const char *p; /* start in source */
    size_t len;
    struct cedar_loc loc;
};

struct parser {
    const char *src;
    size_t len;
    size_t pos;
    uint32_t line, col; /* of pos */
    struct token tok;   /* current token */
    struct token prev;
    const char *filename;
    struct cedar_arena *arena;
    int depth;
    uintptr_t stack_base; /* address of a frame at parser entry */
    char *err;
    size_t errlen;
    bool failed;
    size_t policy_no; /* policyN counter */
};

/*
 * Stack the recursive-descent parser may use. The depth limit alone does
 * not bound it: one nesting level costs about ten frames, whose size
 * depends on the compiler and on sanitizers (ASan frames are several
 * times larger). 1 MiB leaves room inside an 8 MiB thread stack for the
 * callers and for the evaluator.
 */
#define CEDAR_PARSE_STACK_BUDGET (1u << 20)

static void perr(struct parser *ps, struct cedar_loc loc, const char *fmt, ...) NHID_PRINTF(3, 4);
static void perr(struct parser *ps, struct cedar_loc loc, const char *fmt, ...)
{
    if (ps->failed)
        return;
    ps->failed = true;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "%s:%u:%u: %s", ps->filename, loc.line, loc.col, msg);
}

/* ---- lexer ------------------------------------------------------------------- */

static void advance_pos(struct parser *ps, size_t n)
{
    for (size_t i = 0; i < n && ps->pos < ps->len; i++) {
        unsigned char c = (unsigned char)ps->src[ps->pos++];
        if (c == '\n') {
            ps->line++;
            ps->col = 1;
        } else if ((c & 0xc0) != 0x80) {
            ps->col++; /* count code points, not continuation bytes */
        }
    }
}

static bool is_ident_start(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static void lex(struct parser *ps)
{
    ps->prev = ps->tok;
    if (ps->failed) {
        ps->tok.t = T_EOF;
        return;
    }
    /* skip whitespace and comments */
    for (;;) {
        if (ps->pos >= ps->len)
            break;
        char c = ps->src[ps->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            advance_pos(ps, 1);
        } else if (c == '/' && ps->pos + 1 < ps->len && ps->src[ps->pos + 1] == '/') {
            while (ps->pos < ps->len && ps->src[ps->pos] != '\n')
                advance_pos(ps, 1);
        } else {
            break;
        }
    }
    struct token *t = &ps->tok;
    t->loc = (struct cedar_loc){ps->line, ps->col, (uint32_t)ps->pos};
    t->p = ps->src + ps->pos;
    if (ps->pos >= ps->len) {
        t->t = T_EOF;
        t->len = 0;
        return;
    }
    const char *s = ps->src + ps->pos;
    size_t rem = ps->len - ps->pos;
    char c = s[0];
    size_t n = 1;
    if (is_ident_start(c)) {
        while (n < rem && is_ident_char(s[n]))
            n++;
        t->t = T_IDENT;
    } else if (c >= '0' && c <= '9') {
        while (n < rem && s[n] >= '0' && s[n] <= '9')
            n++;
        t->t = T_INT;
    } else if (c == '"') {
        while (n < rem && s[n] != '"') {
            if (s[n] == '\\' && n + 1 < rem)
                n++;
            n++;
        }
        if (n >= rem) {
            perr(ps, t->loc, "unterminated string literal");
            t->t = T_EOF;
            return;
        }
        n++;
        t->t = T_STR;
        if (n - 2 > CEDAR_MAX_STRING) {
            perr(ps, t->loc, "string literal longer than %u bytes", CEDAR_MAX_STRING);
            t->t = T_EOF;
            return;
        }
    } else {
        char d = rem > 1 ? s[1] : '\0';
        switch (c) {
        case '(': t->t = T_LPAREN; break;
        case ')': t->t = T_RPAREN; break;
        case '[': t->t = T_LBRACK; break;
        case ']': t->t = T_RBRACK; break;
        case '{': t->t = T_LBRACE; break;
        case '}': t->t = T_RBRACE; break;
        case ',': t->t = T_COMMA; break;
        case ';': t->t = T_SEMI; break;
        case '.': t->t = T_DOT; break;
        case '@': t->t = T_AT; break;
        case '?': t->t = T_QMARK; break;
        case '+': t->t = T_PLUS; break;
        case '-': t->t = T_MINUS; break;
        case '*': t->t = T_STAR; break;
        case '/': t->t = T_SLASH; break;
        case '%': t->t = T_PERCENT; break;
        case ':':
            if (d == ':') {
                t->t = T_DCOLON;
                n = 2;
            } else {
                t->t = T_COLON;
            }
            break;
        case '=':
            if (d == '=') {
                t->t = T_EQ;
                n = 2;
            } else {
                t->t = T_ASSIGN;
            }
            break;
        case '!':
            if (d == '=') {
                t->t = T_NE;
                n = 2;
            } else {
                t->t = T_NOT;
            }
            break;
        case '<':
            if (d == '=') {
                t->t = T_LE;
                n = 2;
            } else {
                t->t = T_LT;
            }
            break;
        case '>':
            if (d == '=') {
                t->t = T_GE;
                n = 2;
            } else {
                t->t = T_GT;
            }
            break;
        case '&':
            if (d == '&') {
                t->t = T_AND;
                n = 2;
                break;
            }
            perr(ps, t->loc, "unexpected `&` (did you mean `&&`?)");
            t->t = T_EOF;
            return;
        case '|':
            if (d == '|') {
                t->t = T_OR;
                n = 2;
                break;
            }
            perr(ps, t->loc, "unexpected `|` (did you mean `||`?)");
            t->t = T_EOF;
            return;
        default:
            if ((unsigned char)c >= 0x80)
                perr(ps, t->loc, "unexpected non-ASCII character outside a string");
            else
                perr(ps, t->loc, "unexpected character `%c`", c);
            t->t = T_EOF;
            return;
        }
    }
    t->len = n;
    advance_pos(ps, n);
}

static bool tok_is(const struct parser *ps, const char *kw)
{
    size_t l = strlen(kw);
    return ps->tok.t == T_IDENT && ps->tok.len == l && memcmp(ps->tok.p, kw, l) == 0;
}

static bool expect(struct parser *ps, enum tok t)
{
    if (ps->tok.t != t) {
        if (ps->tok.t == T_EOF && !ps->failed)
            perr(ps, ps->tok.loc, "unexpected end of input, expected %s", tok_names[t]);
        else
            perr(ps, ps->tok.loc, "expected %s, found `%.*s`", tok_names[t],
                 (int)(ps->tok.len > 40 ? 40 : ps->tok.len), ps->tok.p);
        return false;
    }
    lex(ps);
    return true;
}

static bool expect_kw(struct parser *ps, const char *kw)
{
    if (!tok_is(ps, kw)) {
        if (ps->tok.t == T_EOF)
            perr(ps, ps->tok.loc, "unexpected end of input, expected `%s`", kw);
        else
            perr(ps, ps->tok.loc, "expected `%s`, found `%.*s`", kw,
                 (int)(ps->tok.len > 40 ? 40 : ps->tok.len), ps->tok.p);
        return false;
    }
    lex(ps);
    return true;
}

static void unexpected(struct parser *ps, const char *what)
{
    if (ps->tok.t == T_EOF)
        perr(ps, ps->tok.loc, "unexpected end of input, expected %s", what);
    else
        perr(ps, ps->tok.loc, "unexpected `%.*s`, expected %s",
             (int)(ps->tok.len > 40 ? 40 : ps->tok.len), ps->tok.p, what);
}

/* Unescape the current string token. */
static bool tok_string(struct parser *ps, const struct token *t, struct cedar_str *out)
{
    char msg[200];
    size_t off = 0;
    if (cedar_unescape(ps->arena, t->p + 1, t->len - 2, false, out, NULL, msg, sizeof(msg), &off) <
        0) {
        struct cedar_loc l = t->loc;
        l.col += (uint32_t)off + 1;
        l.off += (uint32_t)off + 1;
        perr(ps, l, "%s", msg);
        return false;
    }
    return true;
}

static const char *const reserved[] = {"true", "false", "if", "then", "else", "in",
                                       "is", "like", "has", "__cedar"};

static bool is_reserved(const char *p, size_t len)
{
    for (size_t i = 0; i < NHID_ARRAY_LEN(reserved); i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], p, len) == 0)
            return true;
    return false;
}

/* ---- AST helpers ------------------------------------------------------------- */

static int expr_depth(const struct cedar_expr *e);

static struct cedar_expr *node(struct parser *ps, enum cedar_expr_kind k, struct cedar_loc loc)
{
    struct cedar_expr *e = cedar_arena_alloc(ps->arena, sizeof(*e));
    if (e == NULL) {
        perr(ps, loc, "out of memory");
        return NULL;
    }
    e->kind = (uint8_t)k;
    e->loc = loc;
    return e;
}

/* Depth bookkeeping: we store nothing in the node; instead binary chains
 * are checked while built (see chain_depth). */
static struct cedar_expr *binop(struct parser *ps, enum cedar_expr_kind k, struct cedar_loc loc,
                                struct cedar_expr *a, struct cedar_expr *b)
{
    struct cedar_expr *e = node(ps, k, loc);
    if (e == NULL)
        return NULL;
    e->u.op.a = a;
    e->u.op.b = b;
    return e;
}

/* ---- names and entity references -------------------------------------------- */

/*
 * Parse a path IDENT {'::' IDENT} starting at the current identifier. Stops
 * before a `::` followed by a string (entity reference). Result copied into
 * arena, joined by "::".
 */
static bool parse_path(struct parser *ps, struct cedar_str *out, bool *then_string)
{
    struct cedar_buf b = {0};
    bool ok = false;
    *then_string = false;
    if (ps->tok.t != T_IDENT) {
        unexpected(ps, "a name");
        goto out;
    }
    for (;;) {
        cedar_buf_put(&b, ps->tok.p, ps->tok.len);
        lex(ps);
        if (ps->tok.t != T_DCOLON)
            break;
        lex(ps);
        if (ps->tok.t == T_STR) {
            *then_string = true;
            break;
        }
        if (ps->tok.t != T_IDENT) {
            unexpected(ps, "an identifier or string after `::`");
            goto out;
        }
        cedar_buf_puts(&b, "::");
    }
    if (b.oom) {
        perr(ps, ps->tok.loc, "out of memory");
        goto out;
    }
    char *s = cedar_arena_strndup(ps->arena, b.p, b.len);
    if (s == NULL) {
        perr(ps, ps->tok.loc, "out of memory");
        goto out;
    }
    out->ptr = s;
    out->len = b.len;
    ok = true;
out:
    cedar_buf_free(&b);
    return ok && !ps->failed;
}

/* Having parsed a path followed by `::` and now at a string token. */
static const struct cedar_uid *finish_uid(struct parser *ps, const struct cedar_str *type)
{
    struct cedar_str id;
    if (!tok_string(ps, &ps->tok, &id))
        return NULL;
    lex(ps);
    struct cedar_uid *u = cedar_arena_alloc(ps->arena, sizeof(*u));
    if (u == NULL) {
        perr(ps, ps->tok.loc, "out of memory");
        return NULL;
    }
    u->type = *type;
    u->id = id;
    u->hash = cedar_uid_hash(type->ptr, type->len, id.ptr, id.len);
    return u;
}

static bool check_path_not_reserved(struct parser *ps, const struct cedar_str *path,
                                    struct cedar_loc loc)
{
    /* every component must be a non-reserved identifier */
    const char *p = path->ptr, *end = path->ptr + path->len;
    while (p < end) {
        const char *q = strstr(p, "::");
        size_t l = q ? (size_t)(q - p) : (size_t)(end - p);
        if (is_reserved(p, l)) {
            perr(ps, loc, "`%.*s` is a reserved identifier", (int)l, p);
            return false;
        }
        p += l + (q ? 2 : 0);
        if (!q)
            break;
    }
    return true;
}

/* Entity reference: Path '::' STR */
static const struct cedar_uid *parse_entity_ref(struct parser *ps)
{
    struct cedar_loc loc = ps->tok.loc;
    struct cedar_str path;
    bool str;
    if (!parse_path(ps, &path, &str))
        return NULL;
    if (!str) {
        perr(ps, loc, "expected an entity reference like `Type::\"id\"`");
        return NULL;
    }
    if (!check_path_not_reserved(ps, &path, loc))
        return NULL;
    return finish_uid(ps, &path);
}

/* ---- expressions -------------------------------------------------------------- */

static struct cedar_expr *parse_expr(struct parser *ps);

static bool enter(struct parser *ps)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (ps->stack_base && ps->stack_base > here &&
        ps->stack_base - here > CEDAR_PARSE_STACK_BUDGET) {
        ps->depth++;
        perr(ps, ps->tok.loc, "expression nested too deeply");
        return false;
    }
    if (++ps->depth > CEDAR_MAX_DEPTH) {
        perr(ps, ps->tok.loc, "expression nested more than %d levels deep", CEDAR_MAX_DEPTH);
        return false;
    }
    return true;
}

static bool parse_expr_list(struct parser *ps, enum tok close, struct cedar_expr ***out,
                            size_t *nout)
{
    size_t n = 0, cap = 0;
    struct cedar_expr **v = NULL;
    bool ok = false;
    if (ps->tok.t != close) {
        for (;;) {
            struct cedar_expr *e = parse_expr(ps);
            if (e == NULL)
                goto out;
            if (n == cap) {
                if (n >= CEDAR_MAX_SET_ELEMS) {
                    perr(ps, ps->tok.loc, "too many elements (limit %d)", CEDAR_MAX_SET_ELEMS);
                    goto out;
                }
                cap = cap ? cap * 2 : 4;
                struct cedar_expr **nv = realloc(v, cap * sizeof(*nv));
                if (nv == NULL) {
                    perr(ps, ps->tok.loc, "out of memory");
                    goto out;
                }
                v = nv;
            }
            v[n++] = e;
            if (ps->tok.t != T_COMMA)
                break;
            lex(ps);
        }
    }
    if (!expect(ps, close))
        goto out;
    struct cedar_expr **arr = cedar_arena_alloc(ps->arena, (n ? n : 1) * sizeof(*arr));
    if (arr == NULL) {
        perr(ps, ps->tok.loc, "out of memory");
        goto out;
    }
    if (n)
        memcpy(arr, v, n * sizeof(*arr));
    *out = arr;
    *nout = n;
    ok = true;
out:
    free(v);
    return ok;
}

static struct cedar_expr *make_call(struct parser *ps, struct cedar_loc loc, int fn,
                                    struct cedar_expr **args, size_t n)
{
    struct cedar_expr *e = node(ps, CEDAR_E_CALL, loc);
    if (e == NULL)
        return NULL;
    e->u.list.fn = (uint8_t)fn;
    e->u.list.args = args;
    e->u.list.n = n;
    /* Constant-fold extension constructors on valid string literals so
     * `ip("10.0.0.0/8")` is parsed once, not per evaluation. Invalid
     * literals stay calls and fail at evaluation, as in Cedar. */
    if (n == 1 && args[0]->kind == CEDAR_E_LIT && args[0]->u.lit.kind == CEDAR_V_STRING &&
        (fn == CEDAR_FN_IP || fn == CEDAR_FN_DECIMAL || fn == CEDAR_FN_DATETIME ||
         fn == CEDAR_FN_DURATION)) {
        struct cedar_value *v = cedar_arena_alloc(ps->arena, sizeof(*v));
        char msg[160];
        const struct cedar_str *s = &args[0]->u.lit.u.s;
        int r = -1;
        if (v == NULL)
            return e;
        v->kind = CEDAR_V_EXT;
        if (fn == CEDAR_FN_IP) {
            struct cedar_ipaddr *ip = cedar_arena_alloc(ps->arena, sizeof(*ip));
            if (ip != NULL && (r = cedar_ip_parse(s->ptr, s->len, ip, msg, sizeof(msg))) == 0) {
                v->ext_kind = CEDAR_EXT_IPADDR;
                v->u.ip = ip;
            }
        } else if (fn == CEDAR_FN_DECIMAL) {
            v->ext_kind = CEDAR_EXT_DECIMAL;
            r = cedar_decimal_parse(s->ptr, s->len, &v->u.decimal, msg, sizeof(msg));
        } else if (fn == CEDAR_FN_DATETIME) {
            v->ext_kind = CEDAR_EXT_DATETIME;
            r = cedar_datetime_parse(s->ptr, s->len, &v->u.datetime, msg, sizeof(msg));
        } else {
            v->ext_kind = CEDAR_EXT_DURATION;
            r = cedar_duration_parse(s->ptr, s->len, &v->u.duration, msg, sizeof(msg));
        }
        if (r == 0)
            e->folded = v;
    }
    return e;
}

static struct cedar_expr *parse_record(struct parser *ps, struct cedar_loc loc)
{
    size_t n = 0, cap = 0;
    struct cedar_expr **vals = NULL;
    struct cedar_str *keys = NULL;
    struct cedar_expr *e = NULL;
    if (ps->tok.t != T_RBRACE) {
        for (;;) {
            struct cedar_str key;
            struct cedar_loc kloc = ps->tok.loc;
            if (ps->tok.t == T_STR) {
                if (!tok_string(ps, &ps->tok, &key))
                    goto out;
            } else if (ps->tok.t == T_IDENT) {
                if (is_reserved(ps->tok.p, ps->tok.len) && !tok_is(ps, "if") && 0) {
                    goto out;
                }
                key.ptr = cedar_arena_strndup(ps->arena, ps->tok.p, ps->tok.len);
                key.len = ps->tok.len;
                if (key.ptr == NULL) {
                    perr(ps, kloc, "out of memory");
                    goto out;
                }
            } else {
                unexpected(ps, "a record key (identifier or string)");
                goto out;
            }
            lex(ps);
            if (!expect(ps, T_COLON))
                goto out;
            struct cedar_expr *v = parse_expr(ps);
            if (v == NULL)
                goto out;
            for (size_t i = 0; i < n; i++) {
                if (cedar_str_eq(&keys[i], &key)) {
                    perr(ps, kloc, "duplicate key \"%.*s\" in record literal",
                         (int)(key.len > 40 ? 40 : key.len), key.ptr);
                    goto out;
                }
            }
            if (n == cap) {
                if (n >= CEDAR_MAX_SET_ELEMS) {
                    perr(ps, kloc, "too many record attributes");
                    goto out;
                }
                cap = cap ? cap * 2 : 4;
                struct cedar_expr **nv = realloc(vals, cap * sizeof(*nv));
                if (nv == NULL)
                    goto oom;
                vals = nv;
                struct cedar_str *nk = realloc(keys, cap * sizeof(*nk));
                if (nk == NULL)
                    goto oom;
                keys = nk;
            }
            keys[n] = key;
            vals[n] = v;
            n++;
            if (ps->tok.t != T_COMMA)
                break;
            lex(ps);
        }
    }
    if (!expect(ps, T_RBRACE))
        goto out;
    e = node(ps, CEDAR_E_RECORD, loc);
    if (e == NULL)
        goto out;
    e->u.list.n = n;
    e->u.list.args = cedar_arena_alloc(ps->arena, (n ? n : 1) * sizeof(*vals));
    e->u.list.keys = cedar_arena_alloc(ps->arena, (n ? n : 1) * sizeof(*keys));
    if (e->u.list.args == NULL || e->u.list.keys == NULL)
        goto oom;
    if (n) {
        memcpy(e->u.list.args, vals, n * sizeof(*vals));
        memcpy(e->u.list.keys, keys, n * sizeof(*keys));
    }
    goto out;
oom:
    perr(ps, loc, "out of memory");
    e = NULL;
out:
    free(vals);
    free(keys);
    return ps->failed ? NULL : e;
}

static struct cedar_expr *parse_primary(struct parser *ps)
{
    struct cedar_loc loc = ps->tok.loc;
    struct cedar_expr *e;
    switch (ps->tok.t) {
    case T_INT: {
        /* A bare literal; the unary-minus case is handled in parse_unary. */
        uint64_t v = 0;
        for (size_t i = 0; i < ps->tok.len; i++) {
            unsigned d = (unsigned)(ps->tok.p[i] - '0');
            if (v > (UINT64_MAX - d) / 10) {
                perr(ps, loc, "integer literal `%.*s` is too large",
                     (int)(ps->tok.len > 40 ? 40 : ps->tok.len), ps->tok.p);
                return NULL;
            }
            v = v * 10 + d;
        }
        if (v > (uint64_t)INT64_MAX) {
            perr(ps, loc, "integer literal `%.*s` is too large",
                 (int)(ps->tok.len > 40 ? 40 : ps->tok.len), ps->tok.p);
            return NULL;
        }
        lex(ps);
        if ((e = node(ps, CEDAR_E_LIT, loc)) == NULL)
            return NULL;
        e->u.lit.kind = CEDAR_V_LONG;
        e->u.lit.u.l = (int64_t)v;
        return e;
    }
    case T_STR: {
        struct cedar_str s;
        if (!tok_string(ps, &ps->tok, &s))
            return NULL;
        lex(ps);
        if ((e = node(ps, CEDAR_E_LIT, loc)) == NULL)
            return NULL;
        e->u.lit.kind = CEDAR_V_STRING;
        e->u.lit.u.s = s;
        return e;
    }
    case T_LPAREN:
        lex(ps);
        e = parse_expr(ps);
        if (e == NULL || !expect(ps, T_RPAREN))
            return NULL;
        return e;
    case T_LBRACK: {
        lex(ps);
        struct cedar_expr **args;
        size_t n;
        if (!parse_expr_list(ps, T_RBRACK, &args, &n))
            return NULL;
        if ((e = node(ps, CEDAR_E_SET, loc)) == NULL)
            return NULL;
        e->u.list.args = args;
        e->u.list.n = n;
        return e;
    }
    case T_LBRACE:
        lex(ps);
        return parse_record(ps, loc);
    case T_QMARK:
        perr(ps, loc, "template slots (`?principal`, `?resource`) are only allowed in the "
                      "policy scope");
        return NULL;
    case T_IDENT:
        break;
    default:
        unexpected(ps, "an expression");
        return NULL;
    }
    /* identifiers: literals, variables, entity refs, function calls */
    static const char *const vars[] = {"principal", "action", "resource", "context"};
    if (tok_is(ps, "true") || tok_is(ps, "false")) {
        bool b = tok_is(ps, "true");
        lex(ps);
        if ((e = node(ps, CEDAR_E_LIT, loc)) == NULL)
            return NULL;
        e->u.lit.kind = CEDAR_V_BOOL;
        e->u.lit.u.b = b;
        return e;
    }
    for (int i = 0; i < 4; i++) {
        if (tok_is(ps, vars[i])) {
            struct token save = ps->tok;
            lex(ps);
            if (ps->tok.t == T_DCOLON) {
                perr(ps, save.loc, "`%s` is a variable, not an entity type", vars[i]);
                return NULL;
            }
            if ((e = node(ps, CEDAR_E_VAR, loc)) == NULL)
                return NULL;
            e->u.var = (uint8_t)i;
            return e;
        }
    }
    struct cedar_str path;
    bool str;
    struct token first = ps->tok;
    if (!parse_path(ps, &path, &str))
        return NULL;
    if (str) {
        if (!check_path_not_reserved(ps, &path, loc))
            return NULL;
        const struct cedar_uid *u = finish_uid(ps, &path);
        if (u == NULL)
            return NULL;
        if ((e = node(ps, CEDAR_E_LIT, loc)) == NULL)
            return NULL;
        e->u.lit.kind = CEDAR_V_ENTITY;
        e->u.lit.u.uid = u;
        return e;
    }
    if (ps->tok.t == T_LPAREN) {
        int fn = cedar_fn_lookup(path.ptr, path.len, false);
        if (fn < 0) {
            if (cedar_fn_lookup(path.ptr, path.len, true) >= 0)
                perr(ps, loc, "`%.*s` is a method, not a function; write `x.%.*s(...)`",
                     (int)path.len, path.ptr, (int)path.len, path.ptr);
            else
                perr(ps, loc, "`%.*s` is not a known function", (int)(path.len > 60 ? 60 : path.len),
                     path.ptr);
            return NULL;
        }
        lex(ps);
        struct cedar_expr **args;
        size_t n;
        if (!parse_expr_list(ps, T_RPAREN, &args, &n))
            return NULL;
        return make_call(ps, loc, fn, args, n);
    }
    if (is_reserved(first.p, first.len) && path.len == first.len)
        perr(ps, loc, "unexpected reserved word `%.*s`", (int)first.len, first.p);
    else
        perr(ps, loc, "unexpected identifier `%.*s` (not a variable, entity reference or "
                      "function call)", (int)(path.len > 60 ? 60 : path.len), path.ptr);
    return NULL;
}

static struct cedar_expr *parse_member(struct parser *ps)
{
    struct cedar_expr *e = parse_primary(ps);
    int chain = 0;
    while (e != NULL && (ps->tok.t == T_DOT || ps->tok.t == T_LBRACK)) {
        if (++chain + ps->depth > CEDAR_MAX_DEPTH) {
            perr(ps, ps->tok.loc, "expression nested more than %d levels deep", CEDAR_MAX_DEPTH);
            return NULL;
        }
        struct cedar_loc loc = ps->tok.loc;
        if (ps->tok.t == T_LBRACK) {
            lex(ps);
            if (ps->tok.t != T_STR) {
                unexpected(ps, "a string literal inside `[...]` attribute access");
                return NULL;
            }
            struct cedar_str attr;
            if (!tok_string(ps, &ps->tok, &attr))
                return NULL;
            lex(ps);
            if (!expect(ps, T_RBRACK))
                return NULL;
            struct cedar_expr *g = node(ps, CEDAR_E_GETATTR, e->loc);
            if (g == NULL)
                return NULL;
            g->u.attr.e = e;
            g->u.attr.attr = attr;
            e = g;
            continue;
        }
        lex(ps);
        if (ps->tok.t != T_IDENT) {
            unexpected(ps, "an attribute or method name after `.`");
            return NULL;
        }
        struct token name = ps->tok;
        lex(ps);
        if (ps->tok.t == T_LPAREN) {
            int fn = cedar_fn_lookup(name.p, name.len, true);
            if (fn < 0) {
                if (cedar_fn_lookup(name.p, name.len, false) >= 0)
                    perr(ps, name.loc, "`%.*s` is a function, not a method", (int)name.len, name.p);
                else
                    perr(ps, name.loc, "`%.*s` is not a known method",
                         (int)(name.len > 60 ? 60 : name.len), name.p);
                return NULL;
            }
            lex(ps);
            struct cedar_expr **args;
            size_t n;
            if (!parse_expr_list(ps, T_RPAREN, &args, &n))
                return NULL;
            const struct cedar_fn_info *fi = cedar_fn_info((enum cedar_fn)fn);
            if (!fi->is_extension && n + 1 != fi->nargs) {
                perr(ps, name.loc, "`%s` takes %u argument%s, found %zu", fi->name,
                     fi->nargs - 1, fi->nargs == 2 ? "" : "s", n);
                return NULL;
            }
            struct cedar_expr **all = cedar_arena_alloc(ps->arena, (n + 1) * sizeof(*all));
            if (all == NULL) {
                perr(ps, loc, "out of memory");
                return NULL;
            }
            all[0] = e;
            if (n)
                memcpy(all + 1, args, n * sizeof(*args));
            e = make_call(ps, e->loc, fn, all, n + 1);
            continue;
        }
        struct cedar_expr *g = node(ps, CEDAR_E_GETATTR, e->loc);
        if (g == NULL)
            return NULL;
        g->u.attr.e = e;
        g->u.attr.attr.ptr = cedar_arena_strndup(ps->arena, name.p, name.len);
        g->u.attr.attr.len = name.len;
        if (g->u.attr.attr.ptr == NULL) {
            perr(ps, loc, "out of memory");
            return NULL;
        }
        e = g;
    }
    return e;
}

static struct cedar_expr *parse_unary(struct parser *ps)
{
    struct cedar_loc loc = ps->tok.loc;
    enum tok op = ps->tok.t;
    if (op != T_NOT && op != T_MINUS)
        return parse_member(ps);
    int n = 0;
    while (ps->tok.t == op) {
        n++;
        lex(ps);
    }
    if (n > 4) {
        perr(ps, loc, "too many consecutive `%s` operators (at most 4)", op == T_NOT ? "!" : "-");
        return NULL;
    }
    if (ps->tok.t == T_NOT || ps->tok.t == T_MINUS) {
        perr(ps, ps->tok.loc, "mixing `!` and `-` needs parentheses");
        return NULL;
    }
    struct cedar_expr *e;
    bool fold = false;
    if (op == T_MINUS && ps->tok.t == T_INT) {
        /* `-2.foo()` is -(2.foo()), as in Cedar: only a bare literal folds */
        struct parser save = *ps;
        lex(ps);
        fold = ps->tok.t != T_DOT && ps->tok.t != T_LBRACK;
        *ps = save;
    }
    if (fold) {
        /* -N: fold the first negation into the literal so that
         * -9223372036854775808 is representable */
        struct token it = ps->tok;
        uint64_t v = 0;
        bool big = false;
        for (size_t i = 0; i < it.len; i++) {
            unsigned d = (unsigned)(it.p[i] - '0');
            if (v > (UINT64_MAX - d) / 10) {
                big = true;
                break;
            }
            v = v * 10 + d;
        }
        if (big || v > (uint64_t)INT64_MAX + 1) {
            perr(ps, it.loc, "integer literal `-%.*s` is out of range",
                 (int)(it.len > 40 ? 40 : it.len), it.p);
            return NULL;
        }
        lex(ps);
        e = node(ps, CEDAR_E_LIT, loc);
        if (e == NULL)
            return NULL;
        e->u.lit.kind = CEDAR_V_LONG;
        e->u.lit.u.l = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        n--;
    } else {
        e = parse_member(ps);
    }
    for (int i = 0; i < n && e != NULL; i++) {
        struct cedar_expr *u = node(ps, op == T_NOT ? CEDAR_E_NOT : CEDAR_E_NEG, loc);
        if (u == NULL)
            return NULL;
        u->u.op.a = e;
        e = u;
    }
    return e;
}

/* Left-associative chains are checked against the depth limit by length. */
static bool chain_ok(struct parser *ps, int len)
{
    if (len + ps->depth > CEDAR_MAX_DEPTH) {
        perr(ps, ps->tok.loc, "expression nested more than %d levels deep", CEDAR_MAX_DEPTH);
        return false;
    }
    return true;
}

static struct cedar_expr *parse_mult(struct parser *ps)
{
    struct cedar_expr *e = parse_unary(ps);
    int len = 0;
    while (e != NULL && ps->tok.t == T_STAR) {
        struct cedar_loc loc = e->loc;
        lex(ps);
        if (!chain_ok(ps, ++len))
            return NULL;
        struct cedar_expr *r = parse_unary(ps);
        if (r == NULL)
            return NULL;
        e = binop(ps, CEDAR_E_MUL, loc, e, r);
    }
    if (e != NULL && (ps->tok.t == T_SLASH || ps->tok.t == T_PERCENT)) {
        perr(ps, ps->tok.loc, "`%c` is not a Cedar operator (only `+`, `-`, `*`)", *ps->tok.p);
        return NULL;
    }
    return e;
}

static struct cedar_expr *parse_add(struct parser *ps)
{
    struct cedar_expr *e = parse_mult(ps);
    int len = 0;
    while (e != NULL && (ps->tok.t == T_PLUS || ps->tok.t == T_MINUS)) {
        enum cedar_expr_kind k = ps->tok.t == T_PLUS ? CEDAR_E_ADD : CEDAR_E_SUB;
        struct cedar_loc loc = e->loc;
        lex(ps);
        if (!chain_ok(ps, ++len))
            return NULL;
        struct cedar_expr *r = parse_mult(ps);
        if (r == NULL)
            return NULL;
        e = binop(ps, k, loc, e, r);
    }
    return e;
}

/* Extract an attribute name from the `has` right-hand side: IDENT, STR, or
 * a dotted chain of identifiers (`has a.b.c`). Returns the count. */
static int has_names(struct parser *ps, struct cedar_str *names, int max)
{
    if (ps->tok.t == T_STR) {
        if (!tok_string(ps, &ps->tok, &names[0]))
            return -1;
        lex(ps);
        return 1;
    }
    int n = 0;
    for (;;) {
        if (ps->tok.t != T_IDENT) {
            unexpected(ps, "an attribute name after `has`");
            return -1;
        }
        if (n >= max) {
            perr(ps, ps->tok.loc, "attribute path too long");
            return -1;
        }
        if (n == 0 && is_reserved(ps->tok.p, ps->tok.len) && !tok_is(ps, "if")) {
            /* Cedar accepts most keywords as attribute names after `has`
             * except those that would be ambiguous; keep them allowed. */
        }
        names[n].ptr = cedar_arena_strndup(ps->arena, ps->tok.p, ps->tok.len);
        names[n].len = ps->tok.len;
        if (names[n].ptr == NULL) {
            perr(ps, ps->tok.loc, "out of memory");
            return -1;
        }
        n++;
        lex(ps);
        if (ps->tok.t != T_DOT)
            break;
        lex(ps);
    }
    return n;
}

static struct cedar_expr *parse_relation(struct parser *ps)
{
    struct cedar_expr *e = parse_add(ps);
    if (e == NULL)
        return NULL;
    struct cedar_loc loc = e->loc;
    enum cedar_expr_kind k;
    switch (ps->tok.t) {
    case T_EQ: k = CEDAR_E_EQ; break;
    case T_NE: k = CEDAR_E_NE; break;
    case T_LT: k = CEDAR_E_LT; break;
    case T_LE: k = CEDAR_E_LE; break;
    case T_GT: k = CEDAR_E_GT; break;
    case T_GE: k = CEDAR_E_GE; break;
    case T_ASSIGN:
        perr(ps, ps->tok.loc, "`=` is not a Cedar operator (did you mean `==`?)");
        return NULL;
    case T_IDENT:
        if (tok_is(ps, "in")) {
            k = CEDAR_E_IN;
            break;
        }
        if (tok_is(ps, "has")) {
            lex(ps);
            struct cedar_str names[64];
            int n = has_names(ps, names, 64);
            if (n < 0)
                return NULL;
            /* e has a.b.c  =>  e has a && e.a has b && e.a.b has c */
            struct cedar_expr *result = NULL, *base = e;
            for (int i = 0; i < n; i++) {
                struct cedar_expr *h = node(ps, CEDAR_E_HAS, loc);
                if (h == NULL)
                    return NULL;
                h->u.attr.e = base;
                h->u.attr.attr = names[i];
                result = result ? binop(ps, CEDAR_E_AND, loc, result, h) : h;
                if (result == NULL)
                    return NULL;
                if (i + 1 < n) {
                    struct cedar_expr *g = node(ps, CEDAR_E_GETATTR, loc);
                    if (g == NULL)
                        return NULL;
                    g->u.attr.e = base;
                    g->u.attr.attr = names[i];
                    base = g;
                }
            }
            e = result;
            goto after;
        }
        if (tok_is(ps, "like")) {
            lex(ps);
            if (ps->tok.t != T_STR) {
                unexpected(ps, "a string pattern after `like`");
                return NULL;
            }
            char msg[200];
            size_t off = 0;
            struct cedar_pattern *pat = NULL;
            if (cedar_unescape(ps->arena, ps->tok.p + 1, ps->tok.len - 2, true, NULL, &pat, msg,
                               sizeof(msg), &off) < 0) {
                struct cedar_loc l = ps->tok.loc;
                l.col += (uint32_t)off + 1;
                perr(ps, l, "%s", msg);
                return NULL;
            }
            lex(ps);
            struct cedar_expr *l = node(ps, CEDAR_E_LIKE, loc);
            if (l == NULL)
                return NULL;
            l->u.like.e = e;
            l->u.like.pat = pat;
            e = l;
            goto after;
        }
        if (tok_is(ps, "is")) {
            lex(ps);
            struct cedar_loc tloc = ps->tok.loc;
            struct cedar_str type;
            bool str;
            if (!parse_path(ps, &type, &str))
                return NULL;
            if (str) {
                perr(ps, tloc, "`is` takes an entity type, not an entity reference");
                return NULL;
            }
            if (!check_path_not_reserved(ps, &type, tloc))
                return NULL;
            struct cedar_expr *in = NULL;
            if (tok_is(ps, "in")) {
                lex(ps);
                in = parse_add(ps);
                if (in == NULL)
                    return NULL;
            }
            struct cedar_expr *is = node(ps, CEDAR_E_IS, loc);
            if (is == NULL)
                return NULL;
            is->u.is.e = e;
            is->u.is.type = type;
            is->u.is.in = in;
            e = is;
            goto after;
        }
        return e;
    default:
        return e;
    }
    lex(ps);
    {
        struct cedar_expr *r = parse_add(ps);
        if (r == NULL)
            return NULL;
        e = binop(ps, k, loc, e, r);
    }
after:
    if (e != NULL) {
        enum tok t = ps->tok.t;
        if (t == T_EQ || t == T_NE || t == T_LT || t == T_LE || t == T_GT || t == T_GE ||
            tok_is(ps, "in") || tok_is(ps, "has") || tok_is(ps, "like") || tok_is(ps, "is")) {
            perr(ps, ps->tok.loc, "multiple relational operators (`==`, `<`, `in`, ...) need "
                                  "parentheses to make the order explicit");
            return NULL;
        }
    }
    return e;
}

static struct cedar_expr *parse_and(struct parser *ps)
{
    struct cedar_expr *e = parse_relation(ps);
    int len = 0;
    while (e != NULL && ps->tok.t == T_AND) {
        struct cedar_loc loc = e->loc;
        lex(ps);
        if (!chain_ok(ps, ++len))
            return NULL;
        struct cedar_expr *r = parse_relation(ps);
        if (r == NULL)
            return NULL;
        e = binop(ps, CEDAR_E_AND, loc, e, r);
    }
    return e;
}

static struct cedar_expr *parse_or(struct parser *ps)
{
    struct cedar_expr *e = parse_and(ps);
    int len = 0;
    while (e != NULL && ps->tok.t == T_OR) {
        struct cedar_loc loc = e->loc;
        lex(ps);
        if (!chain_ok(ps, ++len))
            return NULL;
        struct cedar_expr *r = parse_and(ps);
        if (r == NULL)
            return NULL;
        e = binop(ps, CEDAR_E_OR, loc, e, r);
    }
    return e;
}

static struct cedar_expr *parse_expr(struct parser *ps)
{
    struct cedar_expr *e = NULL;
    if (!enter(ps))
        goto out;
    if (tok_is(ps, "if")) {
        struct cedar_loc loc = ps->tok.loc;
        lex(ps);
        struct cedar_expr *c = parse_expr(ps);
        if (c == NULL || !expect_kw(ps, "then"))
            goto out;
        struct cedar_expr *t = parse_expr(ps);
        if (t == NULL || !expect_kw(ps, "else"))
            goto out;
        struct cedar_expr *f = parse_expr(ps);
        if (f == NULL)
            goto out;
        e = node(ps, CEDAR_E_IF, loc);
        if (e == NULL)
            goto out;
        e->u.op.a = c;
        e->u.op.b = t;
        e->u.op.c = f;
    } else {
        e = parse_or(ps);
    }
out:
    ps->depth--;
    if (ps->failed)
        return NULL;
    if (e != NULL && expr_depth(e) > CEDAR_MAX_DEPTH) {
        perr(ps, e->loc, "expression nested more than %d levels deep", CEDAR_MAX_DEPTH);
        return NULL;
    }
    return e;
}

/* Depth of an expression tree, bounded: stops counting past the limit.
 * Only called on the outermost expression of each nesting level, and the
 * parser's own limits keep trees shallow, so this stays cheap. */
static int expr_depth_rec(const struct cedar_expr *e, int d)
{
    if (e == NULL || d > CEDAR_MAX_DEPTH)
        return d;
    int m = d;
    switch (e->kind) {
    case CEDAR_E_LIT:
    case CEDAR_E_VAR:
    case CEDAR_E_SLOT:
        return d;
    case CEDAR_E_NOT:
    case CEDAR_E_NEG:
        return expr_depth_rec(e->u.op.a, d + 1);
    case CEDAR_E_IF: {
        int x = expr_depth_rec(e->u.op.c, d + 1);
        int y = expr_depth_rec(e->u.op.a, d + 1);
        int z = expr_depth_rec(e->u.op.b, d + 1);
        m = x > m ? x : m;
        m = y > m ? y : m;
        return z > m ? z : m;
    }
    case CEDAR_E_AND:
    case CEDAR_E_OR:
    case CEDAR_E_EQ:
    case CEDAR_E_NE:
    case CEDAR_E_LT:
    case CEDAR_E_LE:
    case CEDAR_E_GT:
    case CEDAR_E_GE:
    case CEDAR_E_ADD:
    case CEDAR_E_SUB:
    case CEDAR_E_MUL:
    case CEDAR_E_IN: {
        int x = expr_depth_rec(e->u.op.a, d + 1);
        int y = expr_depth_rec(e->u.op.b, d + 1);
        if (x > m)
            m = x;
        if (y > m)
            m = y;
        return m;
    }
    case CEDAR_E_GETATTR:
    case CEDAR_E_HAS:
        return expr_depth_rec(e->u.attr.e, d + 1);
    case CEDAR_E_LIKE:
        return expr_depth_rec(e->u.like.e, d + 1);
    case CEDAR_E_IS: {
        int x = expr_depth_rec(e->u.is.e, d + 1);
        int y = expr_depth_rec(e->u.is.in, d + 1);
        return x > y ? x : y;
    }
    case CEDAR_E_SET:
    case CEDAR_E_RECORD:
    case CEDAR_E_CALL:
        for (size_t i = 0; i < e->u.list.n; i++) {
            int x = expr_depth_rec(e->u.list.args[i], d + 1);
            if (x > m)
                m = x;
        }
        return m;
    }
    return m;
}

static int expr_depth(const struct cedar_expr *e)
{
    /* Nested parse_expr calls each check their own subtree; to keep the
     * total work linear we only walk at the outermost level. */
    return expr_depth_rec(e, 0);
}

/* ---- policies ------------------------------------------------------------------ */

static bool type_is_action(const struct cedar_str *t)
{
    return (t->len == 6 && memcmp(t->ptr, "Action", 6) == 0) ||
           (t->len > 8 && memcmp(t->ptr + t->len - 8, "::Action", 8) == 0);
}

/* principal/resource constraint */
static bool parse_pr_scope(struct parser *ps, struct cedar_scope *sc, const char *var,
                           enum cedar_slot slot, bool *is_template)
{
    sc->loc = ps->tok.loc;
    if (!expect_kw(ps, var))
        return false;
    sc->op = CEDAR_SCOPE_ANY;
    bool want_target = false;
    if (ps->tok.t == T_EQ) {
        lex(ps);
        sc->op = CEDAR_SCOPE_EQ;
        want_target = true;
    } else if (tok_is(ps, "is")) {
        lex(ps);
        struct cedar_loc tloc = ps->tok.loc;
        bool str;
        if (!parse_path(ps, &sc->type, &str))
            return false;
        if (str) {
            perr(ps, tloc, "`is` takes an entity type, not an entity reference");
            return false;
        }
        if (!check_path_not_reserved(ps, &sc->type, tloc))
            return false;
        sc->op = CEDAR_SCOPE_IS;
        if (tok_is(ps, "in")) {
            lex(ps);
            sc->op = CEDAR_SCOPE_IS_IN;
            want_target = true;
        }
    } else if (tok_is(ps, "in")) {
        lex(ps);
        sc->op = CEDAR_SCOPE_IN;
        want_target = true;
    }
    if (!want_target)
        return true;
    if (ps->tok.t == T_QMARK) {
        struct cedar_loc qloc = ps->tok.loc;
        lex(ps);
        if (!tok_is(ps, var)) {
            perr(ps, qloc, "expected `?%s` here", var);
            return false;
        }
        lex(ps);
        sc->is_slot = true;
        sc->slot = (uint8_t)slot;
        *is_template = true;
        return true;
    }
    if (ps->tok.t != T_IDENT) {
        unexpected(ps, "an entity reference or template slot");
        return false;
    }
    sc->uid = parse_entity_ref(ps);
    return sc->uid != NULL;
}

static bool parse_action_scope(struct parser *ps, struct cedar_scope *sc)
{
    sc->loc = ps->tok.loc;
    if (!expect_kw(ps, "action"))
        return false;
    sc->op = CEDAR_SCOPE_ANY;
    if (ps->tok.t == T_EQ || tok_is(ps, "in")) {
        bool eq = ps->tok.t == T_EQ;
        lex(ps);
        if (!eq && ps->tok.t == T_LBRACK) {
            lex(ps);
            size_t n = 0, cap = 0;
            const struct cedar_uid **v = NULL;
            if (ps->tok.t != T_RBRACK) {
                for (;;) {
                    struct cedar_loc eloc = ps->tok.loc;
                    const struct cedar_uid *u = parse_entity_ref(ps);
                    if (u == NULL) {
                        free(v);
                        return false;
                    }
                    if (!type_is_action(&u->type)) {
                        perr(ps, eloc, "action scope entities must have type `Action`");
                        free(v);
                        return false;
                    }
                    if (n == cap) {
                        cap = cap ? cap * 2 : 4;
                        const struct cedar_uid **nv = realloc(v, cap * sizeof(*nv));
                        if (nv == NULL) {
                            free(v);
                            perr(ps, eloc, "out of memory");
                            return false;
                        }
                        v = nv;
                    }
                    v[n++] = u;
                    if (ps->tok.t != T_COMMA)
                        break;
                    lex(ps);
                }
            }
            if (!expect(ps, T_RBRACK)) {
                free(v);
                return false;
            }
            sc->op = CEDAR_SCOPE_IN_LIST;
            sc->nlist = n;
            sc->list = cedar_arena_alloc(ps->arena, (n ? n : 1) * sizeof(*sc->list));
            if (sc->list == NULL) {
                free(v);
                perr(ps, sc->loc, "out of memory");
                return false;
            }
            if (n)
                memcpy(sc->list, v, n * sizeof(*v));
            free(v);
            return true;
        }
        if (ps->tok.t == T_QMARK) {
            perr(ps, ps->tok.loc, "the action scope cannot be a template slot");
            return false;
        }
        struct cedar_loc eloc = ps->tok.loc;
        sc->uid = parse_entity_ref(ps);
        if (sc->uid == NULL)
            return false;
        if (!type_is_action(&sc->uid->type)) {
            perr(ps, eloc, "action scope entities must have type `Action`");
            return false;
        }
        sc->op = eq ? CEDAR_SCOPE_EQ : CEDAR_SCOPE_IN;
    } else if (tok_is(ps, "is")) {
        perr(ps, ps->tok.loc, "`is` is not allowed in the action scope");
        return false;
    }
    return true;
}

static struct cedar_policy *parse_policy(struct parser *ps)
{
    struct cedar_policy *p = cedar_arena_alloc(ps->arena, sizeof(*p));
    struct cedar_annotation annots[64];
    size_t nannot = 0;
    struct cedar_cond conds[64];
    size_t ncond = 0;
    if (p == NULL) {
        perr(ps, ps->tok.loc, "out of memory");
        return NULL;
    }
    p->start = ps->tok.loc;
    p->filename = ps->filename;
    while (ps->tok.t == T_AT) {
        struct cedar_annotation *a = &annots[nannot];
        a->loc = ps->tok.loc;
        lex(ps);
        if (ps->tok.t != T_IDENT) {
            unexpected(ps, "an annotation name after `@`");
            return NULL;
        }
        if (nannot >= NHID_ARRAY_LEN(annots)) {
            perr(ps, a->loc, "too many annotations (limit %zu)", NHID_ARRAY_LEN(annots));
            return NULL;
        }
        a->key.ptr = cedar_arena_strndup(ps->arena, ps->tok.p, ps->tok.len);
        a->key.len = ps->tok.len;
        if (a->key.ptr == NULL) {
            perr(ps, a->loc, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < nannot; i++) {
            if (cedar_str_eq(&annots[i].key, &a->key)) {
                perr(ps, a->loc, "duplicate annotation `@%.*s`", (int)a->key.len, a->key.ptr);
                return NULL;
            }
        }
        lex(ps);
        a->value = (struct cedar_str){"", 0};
        if (ps->tok.t == T_LPAREN) {
            lex(ps);
            if (ps->tok.t != T_STR) {
                unexpected(ps, "a string annotation value");
                return NULL;
            }
            if (!tok_string(ps, &ps->tok, &a->value))
                return NULL;
            lex(ps);
            if (!expect(ps, T_RPAREN))
                return NULL;
        }
        nannot++;
    }
    if (tok_is(ps, "permit")) {
        p->effect = CEDAR_PERMIT;
    } else if (tok_is(ps, "forbid")) {
        p->effect = CEDAR_FORBID;
    } else {
        unexpected(ps, "`permit` or `forbid`");
        return NULL;
    }
    lex(ps);
    bool tmpl = false;
    if (!expect(ps, T_LPAREN) ||
        !parse_pr_scope(ps, &p->principal, "principal", CEDAR_SLOT_PRINCIPAL, &tmpl) ||
        !expect(ps, T_COMMA) || !parse_action_scope(ps, &p->action) || !expect(ps, T_COMMA) ||
        !parse_pr_scope(ps, &p->resource, "resource", CEDAR_SLOT_RESOURCE, &tmpl))
        return NULL;
    if (ps->tok.t == T_COMMA) {
        /* Cedar allows no trailing comma here; give a helpful message. */
        perr(ps, ps->tok.loc, "unexpected `,` after the resource constraint");
        return NULL;
    }
    if (!expect(ps, T_RPAREN))
        return NULL;
    while (tok_is(ps, "when") || tok_is(ps, "unless")) {
        if (ncond >= NHID_ARRAY_LEN(conds)) {
            perr(ps, ps->tok.loc, "too many conditions (limit %zu)", NHID_ARRAY_LEN(conds));
            return NULL;
        }
        struct cedar_cond *c = &conds[ncond];
        c->loc = ps->tok.loc;
        c->is_when = tok_is(ps, "when");
        lex(ps);
        if (!expect(ps, T_LBRACE))
            return NULL;
        if (ps->tok.t == T_RBRACE) {
            perr(ps, ps->tok.loc, "empty condition: write an expression inside `{ }`");
            return NULL;
        }
        c->expr = parse_expr(ps);
        if (c->expr == NULL || !expect(ps, T_RBRACE))
            return NULL;
        ncond++;
    }
    if (ps->tok.t != T_SEMI) {
        if (ps->tok.t == T_IDENT)
            perr(ps, ps->tok.loc, "expected `when`, `unless` or `;`, found `%.*s`",
                 (int)(ps->tok.len > 40 ? 40 : ps->tok.len), ps->tok.p);
        else
            expect(ps, T_SEMI);
        return NULL;
    }
    p->end = ps->tok.loc;
    p->end.off += 1;
    p->end.col += 1;
    lex(ps);
    p->is_template = tmpl;
    p->ncond = ncond;
    p->conds = cedar_arena_alloc(ps->arena, (ncond ? ncond : 1) * sizeof(*p->conds));
    p->nannot = nannot;
    p->annots = cedar_arena_alloc(ps->arena, (nannot ? nannot : 1) * sizeof(*p->annots));
    if (p->conds == NULL || p->annots == NULL) {
        perr(ps, p->start, "out of memory");
        return NULL;
    }
    memcpy(p->conds, conds, ncond * sizeof(*conds));
    memcpy(p->annots, annots, nannot * sizeof(*annots));
    /* id: @id("x") or policyN */
    const struct cedar_annotation *idann = NULL;
    for (size_t i = 0; i < nannot; i++)
        if (annots[i].key.len == 2 && memcmp(annots[i].key.ptr, "id", 2) == 0)
            idann = &p->annots[i];
    if (idann != NULL) {
        p->id = idann->value;
    } else {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "policy%zu", ps->policy_no);
        p->id.ptr = cedar_arena_strndup(ps->arena, buf, (size_t)n);
        p->id.len = (size_t)n;
        if (p->id.ptr == NULL) {
            perr(ps, p->start, "out of memory");
            return NULL;
        }
    }
    ps->policy_no++;
    return p;
}

/* ---- policy set ------------------------------------------------------------------ */

static void init_parser(struct parser *ps, struct cedar_arena *arena, const char *text, size_t len,
                        const char *filename, char *err, size_t errlen)
{
    memset(ps, 0, sizeof(*ps));
    ps->src = text;
    ps->len = len;
    ps->line = 1;
    ps->col = 1;
    ps->filename = filename ? filename : "<input>";
    ps->arena = arena;
    ps->err = err;
    ps->errlen = errlen;
    ps->stack_base = (uintptr_t)__builtin_frame_address(0);
}

/* Validate the text as UTF-8 and compute the position of a bad byte. */
static bool check_text(struct parser *ps)
{
    if (ps->len > CEDAR_MAX_POLICY_TEXT) {
        perr(ps, (struct cedar_loc){1, 1, 0}, "policy text larger than %u bytes",
             CEDAR_MAX_POLICY_TEXT);
        return false;
    }
    size_t bad = cedar_utf8_check(ps->src, ps->len);
    if (bad < ps->len) {
        struct parser tmp = *ps;
        tmp.pos = 0;
        tmp.line = 1;
        tmp.col = 1;
        advance_pos(&tmp, bad);
        perr(ps, (struct cedar_loc){tmp.line, tmp.col, (uint32_t)bad}, "invalid UTF-8 in input");
        return false;
    }
    return true;
}

static int ps_push(struct cedar_policy ***arr, size_t *n, size_t *cap, struct cedar_policy *p)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct cedar_policy **na = realloc(*arr, nc * sizeof(*na));
        if (na == NULL)
            return NHID_ERR_NOMEM;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = p;
    return NHID_OK;
}

const struct cedar_policy *cedar_policy_set_find(const struct cedar_policy_set *ps, const char *id)
{
    struct cedar_str k = {id, strlen(id)};
    for (size_t i = 0; i < ps->npolicies; i++)
        if (cedar_str_eq(&ps->policies[i]->id, &k))
            return ps->policies[i];
    for (size_t i = 0; i < ps->ntemplates; i++)
        if (cedar_str_eq(&ps->templates[i]->id, &k))
            return ps->templates[i];
    return NULL;
}


/* Id set for duplicate detection while parsing (linear probing). */
struct idset {
    const struct cedar_str **v;
    size_t cap, n;
};

static uint64_t id_hash(const struct cedar_str *s)
{
    return cedar_uid_hash("", 0, s->ptr, s->len);
}

/* 1 if added, 0 if already present, <0 on error */
static int idset_add(struct idset *is, const struct cedar_str *id)
{
    if ((is->n + 1) * 2 > is->cap) {
        size_t nc = is->cap ? is->cap * 2 : 64;
        const struct cedar_str **nv = calloc(nc, sizeof(*nv));
        if (nv == NULL)
            return NHID_ERR_NOMEM;
        for (size_t i = 0; i < is->cap; i++) {
            if (is->v[i] == NULL)
                continue;
            size_t j = id_hash(is->v[i]) & (nc - 1);
            while (nv[j] != NULL)
                j = (j + 1) & (nc - 1);
            nv[j] = is->v[i];
        }
        free(is->v);
        is->v = nv;
        is->cap = nc;
    }
    size_t j = id_hash(id) & (is->cap - 1);
    while (is->v[j] != NULL) {
        if (cedar_str_eq(is->v[j], id))
            return 0;
        j = (j + 1) & (is->cap - 1);
    }
    is->v[j] = id;
    is->n++;
    return 1;
}

int cedar_policy_set_add_text(struct cedar_policy_set *set, const char *text, size_t len,
                              const char *filename, char *err, size_t errlen)
{
    int rc = NHID_OK;
    struct idset ids = {0};
    struct parser ps;
    size_t np0 = set->npolicies, nt0 = set->ntemplates;
    const char *fname = cedar_arena_strndup(&set->arena, filename ? filename : "<input>",
                                            strlen(filename ? filename : "<input>"));
    NHID_CHECK_ALLOC(fname);
    init_parser(&ps, &set->arena, text, len, fname, err, errlen);
    if (!check_text(&ps))
        NHID_FAIL(NHID_ERR_INVALID);
    for (size_t i = 0; i < set->npolicies; i++)
        NHID_TRY(idset_add(&ids, &set->policies[i]->id));
    for (size_t i = 0; i < set->ntemplates; i++)
        NHID_TRY(idset_add(&ids, &set->templates[i]->id));
    lex(&ps);
    while (!ps.failed && ps.tok.t != T_EOF) {
        struct cedar_policy *p = parse_policy(&ps);
        if (p == NULL)
            break;
        if (set->npolicies + set->ntemplates >= CEDAR_MAX_POLICIES) {
            perr(&ps, p->start, "more than %d policies", CEDAR_MAX_POLICIES);
            break;
        }
        int added = idset_add(&ids, &p->id);
        if (added < 0)
            NHID_FAIL(added);
        if (added == 0) {
            perr(&ps, p->start, "duplicate policy id \"%.*s\"", (int)p->id.len, p->id.ptr);
            break;
        }
        if (p->is_template) {
            NHID_TRY(ps_push(&set->templates, &set->ntemplates, &set->cap_templates, p));
        } else {
            p->index = set->npolicies;
            NHID_TRY(ps_push(&set->policies, &set->npolicies, &set->cap_policies, p));
        }
    }
    if (ps.failed) {
        set->npolicies = np0;
        set->ntemplates = nt0;
        NHID_FAIL(NHID_ERR_INVALID);
    }
    NHID_TRY(cedar_policy_set_prepare(set));
out:
    free(ids.v);
    if (rc == NHID_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

int cedar_policy_set_parse(const char *text, size_t len, const char *filename,
                           struct cedar_policy_set **out, char *err, size_t errlen)
{
    int rc = NHID_OK;
    struct cedar_policy_set *set = calloc(1, sizeof(*set));
    NHID_CHECK_ALLOC(set);
    cedar_arena_init(&set->arena);
    set->filename = cedar_arena_strndup(&set->arena, filename ? filename : "<input>",
                                        strlen(filename ? filename : "<input>"));
    char *src = cedar_arena_strndup(&set->arena, text, len);
    NHID_CHECK_ALLOC(set->filename);
    NHID_CHECK_ALLOC(src);
    set->source = src;
    set->source_len = len;
    NHID_TRY(cedar_policy_set_add_text(set, src, len, filename, err, errlen));
    *out = set;
    set = NULL;
out:
    if (rc == NHID_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    cedar_policy_set_free(set);
    return rc;
}

void cedar_policy_set_free(struct cedar_policy_set *ps)
{
    if (ps == NULL)
        return;
    cedar_index_free(ps->index);
    free(ps->policies);
    free(ps->templates);
    cedar_arena_free(&ps->arena);
    free(ps);
}

int cedar_policy_set_prepare(struct cedar_policy_set *ps)
{
    cedar_index_free(ps->index);
    ps->index = NULL;
    return cedar_index_build(ps);
}

static int fill_slot(struct cedar_arena *a, struct cedar_scope *sc, const struct cedar_uid *principal,
                     const struct cedar_uid *resource, char *err, size_t errlen)
{
    if (!sc->is_slot)
        return NHID_OK;
    const struct cedar_uid *v = sc->slot == CEDAR_SLOT_PRINCIPAL ? principal : resource;
    if (v == NULL) {
        snprintf(err, errlen, "template needs a value for ?%s",
                 sc->slot == CEDAR_SLOT_PRINCIPAL ? "principal" : "resource");
        return NHID_ERR_INVALID;
    }
    struct cedar_uid *u = cedar_arena_alloc(a, sizeof(*u));
    if (u == NULL)
        return NHID_ERR_NOMEM;
    u->type.ptr = cedar_arena_strndup(a, v->type.ptr, v->type.len);
    u->id.ptr = cedar_arena_strndup(a, v->id.ptr, v->id.len);
    if (u->type.ptr == NULL || u->id.ptr == NULL)
        return NHID_ERR_NOMEM;
    u->type.len = v->type.len;
    u->id.len = v->id.len;
    u->hash = cedar_uid_hash(u->type.ptr, u->type.len, u->id.ptr, u->id.len);
    sc->is_slot = false;
    sc->uid = u;
    return NHID_OK;
}

int cedar_policy_set_link(struct cedar_policy_set *ps, const char *template_id, const char *new_id,
                          const struct cedar_uid *principal, const struct cedar_uid *resource,
                          char *err, size_t errlen)
{
    int rc = NHID_OK;
    const struct cedar_policy *t = cedar_policy_set_find(ps, template_id);
    if (t == NULL || !t->is_template) {
        snprintf(err, errlen, "no template with id \"%s\"", template_id);
        return NHID_ERR_NOT_FOUND;
    }
    if (cedar_policy_set_find(ps, new_id) != NULL) {
        snprintf(err, errlen, "a policy with id \"%s\" already exists", new_id);
        return NHID_ERR_EXISTS;
    }
    if ((principal != NULL) != t->principal.is_slot || (resource != NULL) != t->resource.is_slot) {
        snprintf(err, errlen, "template \"%s\" takes %s%s%s", template_id,
                 t->principal.is_slot ? "?principal" : "",
                 t->principal.is_slot && t->resource.is_slot ? " and " : "",
                 t->resource.is_slot ? "?resource" : "");
        return NHID_ERR_INVALID;
    }
    struct cedar_policy *p = cedar_arena_alloc(&ps->arena, sizeof(*p));
    NHID_CHECK_ALLOC(p);
    *p = *t;
    p->is_template = false;
    p->template_of = t;
    p->id.len = strlen(new_id);
    p->id.ptr = cedar_arena_strndup(&ps->arena, new_id, p->id.len);
    NHID_CHECK_ALLOC(p->id.ptr);
    NHID_TRY(fill_slot(&ps->arena, &p->principal, principal, resource, err, errlen));
    NHID_TRY(fill_slot(&ps->arena, &p->resource, principal, resource, err, errlen));
    p->index = ps->npolicies;
    NHID_TRY(ps_push(&ps->policies, &ps->npolicies, &ps->cap_policies, p));
    NHID_TRY(cedar_policy_set_prepare(ps));
out:
    if (rc == NHID_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

void cedar_policy_describe(const struct cedar_policy *p, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s:%u:%u", p->filename ? p->filename : "<input>", p->start.line,
             p->start.col);
}

/* ---- single expressions and uids ---------------------------------------------- */

int cedar_expr_parse(struct cedar_arena *arena, const char *text, size_t len,
                     struct cedar_expr **out, char *err, size_t errlen)
{
    struct parser ps;
    init_parser(&ps, arena, text, len, "<expr>", err, errlen);
    if (!check_text(&ps))
        return NHID_ERR_INVALID;
    lex(&ps);
    struct cedar_expr *e = parse_expr(&ps);
    if (e != NULL && ps.tok.t != T_EOF)
        unexpected(&ps, "end of input");
    if (ps.failed || e == NULL)
        return NHID_ERR_INVALID;
    *out = e;
    return NHID_OK;
}

int cedar_uid_parse(struct cedar_arena *arena, const char *text, size_t len, struct cedar_uid *out,
                    char *err, size_t errlen)
{
    struct parser ps;
    init_parser(&ps, arena, text, len, "<uid>", err, errlen);
    if (!check_text(&ps))
        return NHID_ERR_INVALID;
    lex(&ps);
    const struct cedar_uid *u = ps.tok.t == T_IDENT ? parse_entity_ref(&ps) : NULL;
    if (u == NULL && !ps.failed)
        unexpected(&ps, "an entity reference like `Type::\"id\"`");
    if (u != NULL && ps.tok.t != T_EOF)
        unexpected(&ps, "end of input");
    if (ps.failed || u == NULL)
        return NHID_ERR_INVALID;
    *out = *u;
    return NHID_OK;
}
