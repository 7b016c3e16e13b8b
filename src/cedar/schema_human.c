/*
 * schema_human.c — parser for the human-readable Cedar schema syntax
 * (.cedarschema), following cedar-policy's cedar_schema/grammar.lalrpop:
 *
 *   Schema    := {Annotation* (Namespace | Decl)}
 *   Namespace := 'namespace' Path '{' {Annotation* Decl} '}'
 *   Decl      := Entity | Action | TypeDecl
 *   Entity    := 'entity' Idents ['in' EntTypes] [['='] RecType] ['tags' Type] ';'
 *              | 'entity' Idents 'enum' '[' STR {',' STR} ']' ';'
 *   Action    := 'action' Names ['in' QualName | '[' QualNames ']']
 *                ['appliesTo' '{' AppDecls '}'] ['attributes' '{' '}'] ';'
 *   TypeDecl  := 'type' Ident '=' Type ';'
 *   Type      := Path | 'Set' '<' Type '>' | '{' [AttrDecls] '}'
 *   AttrDecls := Annotation* Name ['?'] ':' Type [',' [AttrDecls]]
 *
 * Comments are `// ...` to end of line. Output is the raw model of schema.h.
 */
#include <stdio.h>
#include <string.h>

#include "cedar/schema.h"

enum tok_kind {
    T_EOF,
    T_IDENT,
    T_STR,
    T_NUM,
    T_PUNCT, /* single char in .c, or "::" as ':' with dcolon */
};

struct tok {
    enum tok_kind kind;
    const char *p; /* start in source */
    size_t n;
    char c;      /* T_PUNCT: the character; ':' with dcolon for "::" */
    bool dcolon; /* "::" */
    int line, col;
};

struct hp {
    struct cs_arena *a;
    const char *src;
    size_t len, pos;
    int line, col;
    const char *file;
    char *err;
    size_t errlen;
    struct tok t; /* current token */
    int depth;
};

/* ---- lexer ------------------------------------------------------------------ */

static int hp_err(struct hp *h, int line, int col, const char *msg, const char *detail)
{
    if (detail != NULL)
        return cs_errf(h->err, h->errlen, h->file, line, col, "%s %s", msg, detail);
    return cs_errf(h->err, h->errlen, h->file, line, col, "%s", msg);
}

static void hp_adv(struct hp *h, size_t n)
{
    while (n-- > 0 && h->pos < h->len) {
        if (h->src[h->pos] == '\n') {
            h->line++;
            h->col = 1;
        } else {
            h->col++;
        }
        h->pos++;
    }
}

static bool is_id_start(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_id_char(char c)
{
    return is_id_start(c) || (c >= '0' && c <= '9');
}

NHID_MUST_CHECK static int hp_next(struct hp *h)
{
    /* skip whitespace and // comments */
    for (;;) {
        if (h->pos >= h->len)
            break;
        char c = h->src[h->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            hp_adv(h, 1);
        } else if (c == '/' && h->pos + 1 < h->len && h->src[h->pos + 1] == '/') {
            while (h->pos < h->len && h->src[h->pos] != '\n')
                hp_adv(h, 1);
        } else {
            break;
        }
    }
    struct tok *t = &h->t;
    memset(t, 0, sizeof(*t));
    t->line = h->line;
    t->col = h->col;
    t->p = h->src + h->pos;
    if (h->pos >= h->len) {
        t->kind = T_EOF;
        return NHID_OK;
    }
    char c = h->src[h->pos];
    if (is_id_start(c)) {
        size_t n = 0;
        while (h->pos + n < h->len && is_id_char(h->src[h->pos + n]))
            n++;
        t->kind = T_IDENT;
        t->n = n;
        hp_adv(h, n);
        return NHID_OK;
    }
    if (c >= '0' && c <= '9') {
        size_t n = 0;
        while (h->pos + n < h->len && h->src[h->pos + n] >= '0' && h->src[h->pos + n] <= '9')
            n++;
        t->kind = T_NUM;
        t->n = n;
        hp_adv(h, n);
        return NHID_OK;
    }
    if (c == '"') {
        size_t n = 1;
        for (;;) {
            if (h->pos + n >= h->len)
                return hp_err(h, t->line, t->col, "unterminated string literal", NULL);
            char d = h->src[h->pos + n];
            if (d == '\\') {
                n += 2;
                continue;
            }
            n++;
            if (d == '"')
                break;
        }
        t->kind = T_STR;
        t->n = n;
        hp_adv(h, n);
        return NHID_OK;
    }
    if (c == ':' && h->pos + 1 < h->len && h->src[h->pos + 1] == ':') {
        t->kind = T_PUNCT;
        t->c = ':';
        t->dcolon = true;
        t->n = 2;
        hp_adv(h, 2);
        return NHID_OK;
    }
    if (strchr(",;:{}[]<>=?@()", c) != NULL && c != '\0') {
        t->kind = T_PUNCT;
        t->c = c;
        t->n = 1;
        hp_adv(h, 1);
        return NHID_OK;
    }
    char buf[8];
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
        snprintf(buf, sizeof(buf), "'%c'", c);
    else
        snprintf(buf, sizeof(buf), "0x%02x", (unsigned char)c);
    return hp_err(h, t->line, t->col, "unexpected character", buf);
}

static bool tok_is(const struct hp *h, const char *kw)
{
    return h->t.kind == T_IDENT && h->t.n == strlen(kw) && memcmp(h->t.p, kw, h->t.n) == 0;
}

static bool tok_punct(const struct hp *h, char c)
{
    return h->t.kind == T_PUNCT && h->t.c == c && !h->t.dcolon;
}

static bool tok_dcolon(const struct hp *h)
{
    return h->t.kind == T_PUNCT && h->t.dcolon;
}

static int hp_unexpected(struct hp *h, const char *expected)
{
    char got[48];
    switch (h->t.kind) {
    case T_EOF: snprintf(got, sizeof(got), "end of input"); break;
    case T_PUNCT: snprintf(got, sizeof(got), "'%s'", h->t.dcolon ? "::" : (char[]){h->t.c, 0}); break;
    default: snprintf(got, sizeof(got), "\"%.*s\"", (int)(h->t.n > 30 ? 30 : h->t.n), h->t.p); break;
    }
    return cs_errf(h->err, h->errlen, h->file, h->t.line, h->t.col, "expected %s, found %s",
                   expected, got);
}

NHID_MUST_CHECK static int hp_expect(struct hp *h, char c)
{
    if (!tok_punct(h, c)) {
        char e[8];
        snprintf(e, sizeof(e), "'%c'", c);
        return hp_unexpected(h, e);
    }
    return hp_next(h);
}

/* Identifiers that Cedar reserves (cedar-policy ast::Id). */
static bool is_reserved(const char *p, size_t n)
{
    static const char *const r[] = {"true", "false", "if", "then", "else",
                                    "in",   "is",    "like", "has"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(r); i++)
        if (strlen(r[i]) == n && memcmp(r[i], p, n) == 0)
            return true;
    return false;
}

/* Append UTF-8 for code point cp. */
static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescape the current string token (Cedar escapes: \n \r \t \\ \0 \' \"
 * \u{X..}). */
NHID_MUST_CHECK static int hp_str(struct hp *h, const char **out, size_t *outlen)
{
    const char *s = h->t.p + 1;
    size_t n = h->t.n - 2;
    char *o = cs_alloc(h->a, n * 2 + 1);
    if (o == NULL)
        return NHID_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            o[k++] = s[i];
            continue;
        }
        if (++i >= n)
            return hp_err(h, h->t.line, h->t.col, "invalid escape in string", NULL);
        switch (s[i]) {
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case '\\': o[k++] = '\\'; break;
        case '0': o[k++] = '\0'; break;
        case '\'': o[k++] = '\''; break;
        case '"': o[k++] = '"'; break;
        case 'u': {
            if (i + 1 >= n || s[i + 1] != '{')
                return hp_err(h, h->t.line, h->t.col, "invalid \\u escape in string", NULL);
            i += 2;
            unsigned long cp = 0;
            size_t digits = 0;
            while (i < n && s[i] != '}') {
                char d = s[i];
                int v = (d >= '0' && d <= '9')   ? d - '0'
                        : (d >= 'a' && d <= 'f') ? d - 'a' + 10
                        : (d >= 'A' && d <= 'F') ? d - 'A' + 10
                                                 : -1;
                if (v < 0 || ++digits > 6)
                    return hp_err(h, h->t.line, h->t.col, "invalid \\u escape in string", NULL);
                cp = cp * 16 + (unsigned long)v;
                i++;
            }
            if (i >= n || digits == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return hp_err(h, h->t.line, h->t.col, "invalid \\u escape in string", NULL);
            k += put_utf8(o + k, cp);
            break;
        }
        default: return hp_err(h, h->t.line, h->t.col, "invalid escape in string", NULL);
        }
    }
    o[k] = '\0';
    if (outlen != NULL)
        *outlen = k;
    /* Strings with NUL are kept as C strings truncated at the NUL; schema
     * names with embedded NUL cannot be distinguished, which matches no
     * real-world use. */
    *out = o;
    return hp_next(h);
}

/* Ident (not reserved). */
NHID_MUST_CHECK static int hp_ident(struct hp *h, const char **out)
{
    if (h->t.kind != T_IDENT)
        return hp_unexpected(h, "identifier");
    if (is_reserved(h->t.p, h->t.n)) {
        char buf[16];
        snprintf(buf, sizeof(buf), "\"%.*s\"", (int)h->t.n, h->t.p);
        return hp_err(h, h->t.line, h->t.col, "reserved identifier used:", buf);
    }
    *out = cs_strndup(h->a, h->t.p, h->t.n);
    if (*out == NULL)
        return NHID_ERR_NOMEM;
    return hp_next(h);
}

/* Path := Ident {'::' Ident}. When stop_at_str, a '::' followed by a string
 * ends the path (QualName `Path::"id"`); *saw_str tells the caller. */
NHID_MUST_CHECK static int hp_path(struct hp *h, const char **out, bool stop_at_str,
                                   bool *saw_str)
{
    int rc = NHID_OK;
    const char *seg = NULL;
    char *acc = NULL;
    NHID_TRY(hp_ident(h, &seg));
    acc = (char *)seg;
    while (tok_dcolon(h)) {
        NHID_TRY(hp_next(h));
        if (stop_at_str && h->t.kind == T_STR) {
            *saw_str = true;
            break;
        }
        NHID_TRY(hp_ident(h, &seg));
        acc = cs_join(h->a, acc, seg);
        NHID_CHECK_ALLOC(acc);
    }
    *out = acc;
out:
    return rc;
}

/* Annotation* — parsed and checked for duplicates, then dropped: annotations
 * carry no meaning for validation. */
NHID_MUST_CHECK static int hp_annotations(struct hp *h)
{
    int rc = NHID_OK;
    const char *keys[64];
    size_t nkeys = 0;
    while (tok_punct(h, '@')) {
        NHID_TRY(hp_next(h));
        if (h->t.kind != T_IDENT)
            return hp_unexpected(h, "annotation name");
        int line = h->t.line, col = h->t.col;
        const char *key = cs_strndup(h->a, h->t.p, h->t.n);
        NHID_CHECK_ALLOC(key);
        NHID_TRY(hp_next(h));
        for (size_t i = 0; i < nkeys; i++)
            if (strcmp(keys[i], key) == 0)
                return cs_errf(h->err, h->errlen, h->file, line, col,
                               "duplicate annotation @%s", key);
        if (nkeys < NHID_ARRAY_LEN(keys))
            keys[nkeys++] = key;
        if (tok_punct(h, '(')) {
            NHID_TRY(hp_next(h));
            if (h->t.kind != T_STR)
                return hp_unexpected(h, "annotation value string");
            const char *v = NULL;
            NHID_TRY(hp_str(h, &v, NULL));
            NHID_TRY(hp_expect(h, ')'));
        }
    }
out:
    return rc;
}

static struct cs_raw_type *new_type(struct hp *h, enum cs_raw_kind k)
{
    struct cs_raw_type *t = cs_alloc(h->a, sizeof(*t));
    if (t != NULL) {
        t->kind = k;
        t->line = h->t.line;
        t->col = h->t.col;
    }
    return t;
}

NHID_MUST_CHECK static int hp_type(struct hp *h, struct cs_raw_type **out);

/* '{' [AttrDecls] '}' — current token is '{'. */
NHID_MUST_CHECK static int hp_record(struct hp *h, struct cs_raw_type **out)
{
    int rc = NHID_OK;
    size_t cap = 0;
    struct cs_raw_type *t = new_type(h, CSR_RECORD);
    NHID_CHECK_ALLOC(t);
    if (++h->depth > (int)CS_MAX_DEPTH)
        return hp_err(h, h->t.line, h->t.col, "types are nested too deeply", NULL);
    NHID_TRY(hp_expect(h, '{'));
    while (!tok_punct(h, '}')) {
        NHID_TRY(hp_annotations(h));
        struct cs_raw_attr at = {.line = h->t.line, .col = h->t.col, .required = true};
        if (h->t.kind == T_STR) {
            NHID_TRY(hp_str(h, &at.name, &at.name_len));
        } else {
            NHID_TRY(hp_ident(h, &at.name));
            at.name_len = strlen(at.name);
        }
        if (tok_punct(h, '?')) {
            at.required = false;
            NHID_TRY(hp_next(h));
        }
        NHID_TRY(hp_expect(h, ':'));
        NHID_TRY(hp_type(h, &at.type));
        for (size_t i = 0; i < t->nattrs; i++)
            if (cs_bytes_cmp(t->attrs[i].name, t->attrs[i].name_len, at.name, at.name_len) == 0)
                return cs_errf(h->err, h->errlen, h->file, at.line, at.col,
                               "duplicate attribute \"%s\"", at.name);
        NHID_TRY(cs_vec_grow(h->a, (void **)&t->attrs, &cap, t->nattrs, sizeof(at)));
        t->attrs[t->nattrs++] = at;
        if (tok_punct(h, ','))
            NHID_TRY(hp_next(h));
        else if (!tok_punct(h, '}'))
            return hp_unexpected(h, "',' or '}'");
    }
    NHID_TRY(hp_next(h));
    h->depth--;
    *out = t;
out:
    return rc;
}

NHID_MUST_CHECK static int hp_type(struct hp *h, struct cs_raw_type **out)
{
    int rc = NHID_OK;
    struct cs_raw_type *t = NULL;
    if (tok_punct(h, '{'))
        return hp_record(h, out);
    if (tok_is(h, "Set")) {
        t = new_type(h, CSR_SET);
        NHID_CHECK_ALLOC(t);
        NHID_TRY(hp_next(h));
        if (tok_punct(h, '<')) {
            if (++h->depth > (int)CS_MAX_DEPTH)
                return hp_err(h, h->t.line, h->t.col, "types are nested too deeply", NULL);
            NHID_TRY(hp_next(h));
            NHID_TRY(hp_type(h, &t->elem));
            NHID_TRY(hp_expect(h, '>'));
            h->depth--;
            *out = t;
            return NHID_OK;
        }
        /* `Set` used as a plain type name */
        t->kind = CSR_NAME;
        t->name = "Set";
        *out = t;
        return NHID_OK;
    }
    t = new_type(h, CSR_NAME);
    NHID_CHECK_ALLOC(t);
    if (h->t.kind != T_IDENT)
        return hp_unexpected(h, "type");
    NHID_TRY(hp_path(h, &t->name, false, NULL));
    *out = t;
out:
    return rc;
}

/* EntTypes := Path | '[' [Path {',' Path}] ']' */
NHID_MUST_CHECK static int hp_ent_types(struct hp *h, const char ***out, size_t *n)
{
    int rc = NHID_OK;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (!tok_punct(h, '[')) {
        NHID_TRY(cs_vec_grow(h->a, (void **)out, &cap, *n, sizeof(char *)));
        NHID_TRY(hp_path(h, &(*out)[(*n)++], false, NULL));
        return NHID_OK;
    }
    NHID_TRY(hp_next(h));
    while (!tok_punct(h, ']')) {
        NHID_TRY(cs_vec_grow(h->a, (void **)out, &cap, *n, sizeof(char *)));
        NHID_TRY(hp_path(h, &(*out)[(*n)++], false, NULL));
        if (tok_punct(h, ','))
            NHID_TRY(hp_next(h));
        else if (!tok_punct(h, ']'))
            return hp_unexpected(h, "',' or ']'");
    }
    NHID_TRY(hp_next(h));
out:
    return rc;
}

NHID_MUST_CHECK static int hp_entity(struct hp *h, struct cs_raw_ns *ns)
{
    int rc = NHID_OK;
    const char *names[256];
    int lines[256], cols[256];
    size_t nnames = 0;
    struct cs_raw_entity proto = {0};

    NHID_TRY(hp_next(h)); /* 'entity' */
    for (;;) {
        if (nnames == NHID_ARRAY_LEN(names))
            return hp_err(h, h->t.line, h->t.col, "too many names in one entity declaration",
                          NULL);
        lines[nnames] = h->t.line;
        cols[nnames] = h->t.col;
        NHID_TRY(hp_ident(h, &names[nnames]));
        nnames++;
        if (!tok_punct(h, ','))
            break;
        NHID_TRY(hp_next(h));
    }
    if (tok_is(h, "enum")) {
        size_t cap = 0;
        proto.is_enum = true;
        NHID_TRY(hp_next(h));
        NHID_TRY(hp_expect(h, '['));
        for (;;) {
            if (h->t.kind != T_STR)
                return hp_unexpected(h, "string");
            size_t cap2 = cap;
            NHID_TRY(cs_vec_grow(h->a, (void **)&proto.choices, &cap, proto.nchoices,
                                 sizeof(char *)));
            NHID_TRY(cs_vec_grow(h->a, (void **)&proto.choice_lens, &cap2, proto.nchoices,
                                 sizeof(size_t)));
            int l = h->t.line, c = h->t.col;
            size_t clen = 0;
            NHID_TRY(hp_str(h, &proto.choices[proto.nchoices], &clen));
            (void)l;
            (void)c; /* Cedar accepts (and merges) repeated choices */
            proto.choice_lens[proto.nchoices++] = clen;
            if (!tok_punct(h, ','))
                break;
            NHID_TRY(hp_next(h));
        }
        NHID_TRY(hp_expect(h, ']'));
    } else {
        if (tok_is(h, "in")) {
            NHID_TRY(hp_next(h));
            NHID_TRY(hp_ent_types(h, &proto.parents, &proto.nparents));
        }
        if (tok_punct(h, '=')) {
            NHID_TRY(hp_next(h));
            if (!tok_punct(h, '{'))
                return hp_unexpected(h, "'{'");
        }
        if (tok_punct(h, '{'))
            NHID_TRY(hp_record(h, &proto.shape));
        if (tok_is(h, "tags")) {
            NHID_TRY(hp_next(h));
            NHID_TRY(hp_type(h, &proto.tags));
        }
    }
    if (!tok_punct(h, ';'))
        return hp_unexpected(h, "';'");
    NHID_TRY(hp_next(h));
    for (size_t i = 0; i < nnames; i++) {
        NHID_TRY(cs_vec_grow(h->a, (void **)&ns->entities, &ns->capentities, ns->nentities,
                             sizeof(proto)));
        struct cs_raw_entity *e = &ns->entities[ns->nentities++];
        *e = proto;
        e->name = names[i];
        e->line = lines[i];
        e->col = cols[i];
    }
out:
    return rc;
}

/* QualName := Name | Path '::' STR */
NHID_MUST_CHECK static int hp_qualname(struct hp *h, struct cs_raw_aref *r)
{
    int rc = NHID_OK;
    r->line = h->t.line;
    r->col = h->t.col;
    if (h->t.kind == T_STR)
        return hp_str(h, &r->id, &r->id_len);
    bool saw = false;
    const char *path = NULL;
    NHID_TRY(hp_path(h, &path, true, &saw));
    if (saw) {
        r->type = path;
        NHID_TRY(hp_str(h, &r->id, &r->id_len));
    } else {
        if (strstr(path, "::") != NULL)
            return cs_errf(h->err, h->errlen, h->file, r->line, r->col,
                           "expected an action name or Type::\"id\", found %s", path);
        r->id = path;
        r->id_len = strlen(path);
    }
out:
    return rc;
}

NHID_MUST_CHECK static int hp_action(struct hp *h, struct cs_raw_ns *ns)
{
    int rc = NHID_OK;
    const char *names[256];
    size_t lens[256];
    int lines[256], cols[256];
    size_t nnames = 0, cap = 0;
    struct cs_raw_action proto = {0};

    NHID_TRY(hp_next(h)); /* 'action' */
    for (;;) {
        if (nnames == NHID_ARRAY_LEN(names))
            return hp_err(h, h->t.line, h->t.col, "too many names in one action declaration",
                          NULL);
        lines[nnames] = h->t.line;
        cols[nnames] = h->t.col;
        if (h->t.kind == T_STR) {
            NHID_TRY(hp_str(h, &names[nnames], &lens[nnames]));
        } else {
            NHID_TRY(hp_ident(h, &names[nnames]));
            lens[nnames] = strlen(names[nnames]);
        }
        nnames++;
        if (!tok_punct(h, ','))
            break;
        NHID_TRY(hp_next(h));
    }
    if (tok_is(h, "in")) {
        NHID_TRY(hp_next(h));
        if (tok_punct(h, '[')) {
            NHID_TRY(hp_next(h));
            for (;;) {
                NHID_TRY(cs_vec_grow(h->a, (void **)&proto.parents, &cap, proto.nparents,
                                     sizeof(struct cs_raw_aref)));
                NHID_TRY(hp_qualname(h, &proto.parents[proto.nparents++]));
                if (!tok_punct(h, ','))
                    break;
                NHID_TRY(hp_next(h));
            }
            NHID_TRY(hp_expect(h, ']'));
        } else {
            NHID_TRY(cs_vec_grow(h->a, (void **)&proto.parents, &cap, proto.nparents,
                                 sizeof(struct cs_raw_aref)));
            NHID_TRY(hp_qualname(h, &proto.parents[proto.nparents++]));
        }
    }
    if (tok_is(h, "appliesTo")) {
        bool seen_p = false, seen_r = false, seen_c = false;
        int al = h->t.line, ac = h->t.col;
        proto.has_applies = true;
        NHID_TRY(hp_next(h));
        NHID_TRY(hp_expect(h, '{'));
        while (!tok_punct(h, '}')) {
            int l = h->t.line, c = h->t.col;
            if (tok_is(h, "principal") || tok_is(h, "resource")) {
                bool is_p = tok_is(h, "principal");
                if (is_p ? seen_p : seen_r)
                    return cs_errf(h->err, h->errlen, h->file, l, c,
                                   "duplicate %s declaration in appliesTo",
                                   is_p ? "principal" : "resource");
                NHID_TRY(hp_next(h));
                NHID_TRY(hp_expect(h, ':'));
                if (is_p) {
                    seen_p = true;
                    NHID_TRY(hp_ent_types(h, &proto.principals, &proto.nprincipals));
                } else {
                    seen_r = true;
                    NHID_TRY(hp_ent_types(h, &proto.resources, &proto.nresources));
                }
            } else if (tok_is(h, "context")) {
                if (seen_c)
                    return cs_errf(h->err, h->errlen, h->file, l, c,
                                   "duplicate context declaration in appliesTo");
                seen_c = true;
                NHID_TRY(hp_next(h));
                NHID_TRY(hp_expect(h, ':'));
                if (tok_punct(h, '{')) {
                    NHID_TRY(hp_record(h, &proto.context));
                } else {
                    proto.context = new_type(h, CSR_NAME);
                    NHID_CHECK_ALLOC(proto.context);
                    NHID_TRY(hp_path(h, &proto.context->name, false, NULL));
                }
            } else {
                return hp_unexpected(h, "principal, resource or context");
            }
            if (tok_punct(h, ','))
                NHID_TRY(hp_next(h));
            else if (!tok_punct(h, '}'))
                return hp_unexpected(h, "',' or '}'");
        }
        NHID_TRY(hp_next(h));
        if (!seen_p || !seen_r)
            return cs_errf(h->err, h->errlen, h->file, al, ac,
                           "appliesTo must declare both principal and resource (missing %s)",
                           !seen_p ? "principal" : "resource");
    }
    if (tok_is(h, "attributes")) {
        NHID_TRY(hp_next(h));
        NHID_TRY(hp_expect(h, '{'));
        NHID_TRY(hp_expect(h, '}'));
    }
    if (!tok_punct(h, ';'))
        return hp_unexpected(h, "';'");
    NHID_TRY(hp_next(h));
    for (size_t i = 0; i < nnames; i++) {
        NHID_TRY(cs_vec_grow(h->a, (void **)&ns->actions, &ns->capactions, ns->nactions,
                             sizeof(proto)));
        struct cs_raw_action *act = &ns->actions[ns->nactions++];
        *act = proto;
        act->id = names[i];
        act->id_len = lens[i];
        act->line = lines[i];
        act->col = cols[i];
    }
out:
    return rc;
}

NHID_MUST_CHECK static int hp_typedecl(struct hp *h, struct cs_raw_ns *ns)
{
    int rc = NHID_OK;
    struct cs_raw_common c = {0};
    NHID_TRY(hp_next(h)); /* 'type' */
    c.line = h->t.line;
    c.col = h->t.col;
    NHID_TRY(hp_ident(h, &c.name));
    NHID_TRY(hp_expect(h, '='));
    NHID_TRY(hp_type(h, &c.type));
    if (!tok_punct(h, ';'))
        return hp_unexpected(h, "';'");
    NHID_TRY(hp_next(h));
    NHID_TRY(cs_vec_grow(h->a, (void **)&ns->commons, &ns->capcommons, ns->ncommons, sizeof(c)));
    ns->commons[ns->ncommons++] = c;
out:
    return rc;
}

NHID_MUST_CHECK static int hp_decl(struct hp *h, struct cs_raw_ns *ns)
{
    if (tok_is(h, "entity"))
        return hp_entity(h, ns);
    if (tok_is(h, "action"))
        return hp_action(h, ns);
    if (tok_is(h, "type"))
        return hp_typedecl(h, ns);
    return hp_unexpected(h, "entity, action or type declaration");
}

/* Find or add the raw namespace `name`. */
NHID_MUST_CHECK static int raw_ns(struct cs_arena *a, struct cs_raw_schema *raw, const char *name,
                                  int line, int col, struct cs_raw_ns **out)
{
    for (size_t i = 0; i < raw->nns; i++) {
        if (strcmp(raw->ns[i].name, name) == 0) {
            *out = &raw->ns[i];
            return NHID_OK;
        }
    }
    int rc = cs_vec_grow(a, (void **)&raw->ns, &raw->capns, raw->nns, sizeof(struct cs_raw_ns));
    if (rc < 0)
        return rc;
    struct cs_raw_ns *ns = &raw->ns[raw->nns++];
    memset(ns, 0, sizeof(*ns));
    ns->name = name;
    ns->line = line;
    ns->col = col;
    *out = ns;
    return NHID_OK;
}

int cs_parse_human(struct cs_arena *a, const char *text, size_t len, const char *file,
                   struct cs_raw_schema *raw, char *err, size_t errlen)
{
    int rc = NHID_OK;
    struct hp h = {.a = a, .src = text, .len = len, .line = 1, .col = 1, .file = file,
                   .err = err, .errlen = errlen};
    struct cs_raw_ns *ns = NULL;

    NHID_TRY(hp_next(&h));
    while (h.t.kind != T_EOF) {
        NHID_TRY(hp_annotations(&h));
        if (tok_is(&h, "namespace")) {
            int l = h.t.line, c = h.t.col;
            const char *name = NULL;
            NHID_TRY(hp_next(&h));
            NHID_TRY(hp_path(&h, &name, false, NULL));
            /* Two `namespace N {}` blocks with one name are one namespace
             * to Cedar; duplicates are then caught per declaration. */
            NHID_TRY(raw_ns(a, raw, name, l, c, &ns));
            NHID_TRY(hp_expect(&h, '{'));
            while (!tok_punct(&h, '}')) {
                if (h.t.kind == T_EOF)
                    return hp_unexpected(&h, "'}'");
                NHID_TRY(hp_annotations(&h));
                NHID_TRY(hp_decl(&h, ns));
            }
            NHID_TRY(hp_next(&h));
        } else {
            NHID_TRY(raw_ns(a, raw, "", h.t.line, h.t.col, &ns));
            NHID_TRY(hp_decl(&h, ns));
        }
    }
out:
    return rc;
}
