/*
 * schema.c — Cedar schema entry points, arena, and lookups.
 *
 * cedar_schema_parse() parses either syntax into the raw model
 * (schema_human.c / schema_json.c) and resolves it (schema_build.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cedar/cedar.h"
#include "cedar/schema.h"

/* ---- arena ---------------------------------------------------------------- */

#define CS_ARENA_BLOCK (64u * 1024u)

struct cs_block {
    struct cs_block *next;
    size_t used, size;
    max_align_t data[];
};

struct cs_arena {
    struct cs_block *head;
};

struct cs_arena *cs_arena_new(void)
{
    return calloc(1, sizeof(struct cs_arena));
}

void cs_arena_free(struct cs_arena *a)
{
    if (a == NULL)
        return;
    struct cs_block *b = a->head;
    while (b != NULL) {
        struct cs_block *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}

void *cs_alloc(struct cs_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + align - 1) / align * align;
    struct cs_block *b = a->head;
    if (b == NULL || b->size - b->used < n) {
        size_t size = n > CS_ARENA_BLOCK ? n : CS_ARENA_BLOCK;
        b = malloc(sizeof(*b) + size);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->size = size;
        /* A large one-off block goes behind the head so the head's free
         * space is not wasted. */
        if (a->head != NULL && n > CS_ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *cs_strndup(struct cs_arena *a, const char *s, size_t n)
{
    char *p = cs_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cs_strdup(struct cs_arena *a, const char *s)
{
    return cs_strndup(a, s, strlen(s));
}

char *cs_join(struct cs_arena *a, const char *ns, const char *name)
{
    if (ns == NULL || ns[0] == '\0')
        return cs_strdup(a, name);
    size_t l1 = strlen(ns), l2 = strlen(name);
    char *p = cs_alloc(a, l1 + l2 + 3);
    if (p == NULL)
        return NULL;
    memcpy(p, ns, l1);
    memcpy(p + l1, "::", 2);
    memcpy(p + l1 + 2, name, l2 + 1);
    return p;
}

int cs_vec_grow(struct cs_arena *a, void **vec, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return NHID_OK;
    if (n >= CS_MAX_ITEMS)
        return NHID_ERR_TOO_LARGE;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = cs_alloc(a, ncap * elem);
    if (p == NULL)
        return NHID_ERR_NOMEM;
    if (*vec != NULL)
        memcpy(p, *vec, n * elem);
    *vec = p;
    *cap = ncap;
    return NHID_OK;
}

int cs_errf(char *err, size_t errlen, const char *file, int line, int col, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        int n = snprintf(err, errlen, "%s:%d:%d: ", file ? file : "<schema>", line, col);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return NHID_ERR_INVALID;
}

/* ---- lookups --------------------------------------------------------------- */

long cs_find_etype(const struct cedar_schema *s, const char *name)
{
    for (size_t i = 0; i < s->n_etypes; i++)
        if (strcmp(s->etypes[i].name, name) == 0)
            return (long)i;
    return -1;
}

long cs_find_action(const struct cedar_schema *s, const char *type, const char *id,
                    size_t idlen)
{
    for (size_t i = 0; i < s->n_actions; i++)
        if (s->actions[i].id_len == idlen && memcmp(s->actions[i].id, id, idlen) == 0 &&
            strcmp(s->actions[i].type, type) == 0)
            return (long)i;
    return -1;
}

int cs_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

const struct cs_attr *cs_record_get(const struct cs_type *rec, const char *name, size_t len)
{
    if (rec == NULL || rec->kind != CS_RECORD)
        return NULL;
    size_t lo = 0, hi = rec->nattrs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cs_bytes_cmp(rec->attrs[mid].name, rec->attrs[mid].name_len, name, len);
        if (c == 0)
            return &rec->attrs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool cs_is_action_type(const char *name)
{
    const char *base = name;
    for (const char *p = name; *p; p++)
        if (p[0] == ':' && p[1] == ':')
            base = p + 2;
    return strcmp(base, "Action") == 0;
}

static const char *const cs_ext_names[] = {"ipaddr", "decimal", "datetime", "duration"};

static void cs_fmt_rec(const struct cs_type *t, char *buf, size_t len, size_t *pos, int depth)
{
#define PUT(...)                                                                               \
    do {                                                                                       \
        if (*pos < len) {                                                                      \
            int n_ = snprintf(buf + *pos, len - *pos, __VA_ARGS__);                            \
            if (n_ > 0)                                                                        \
                *pos += (size_t)n_;                                                            \
        }                                                                                      \
    } while (0)
    if (depth > (int)CS_MAX_DEPTH) {
        PUT("...");
        return;
    }
    switch (t->kind) {
    case CS_BOOL: PUT("Bool"); break;
    case CS_LONG: PUT("Long"); break;
    case CS_STRING: PUT("String"); break;
    case CS_EXT: PUT("%s", cs_ext_names[t->ext]); break;
    case CS_ENTITY: PUT("%s", t->entity); break;
    case CS_SET:
        PUT("Set<");
        cs_fmt_rec(t->elem, buf, len, pos, depth + 1);
        PUT(">");
        break;
    case CS_RECORD:
        PUT("{");
        for (size_t i = 0; i < t->nattrs; i++) {
            PUT("%s%s%s: ", i ? ", " : "", t->attrs[i].name, t->attrs[i].required ? "" : "?");
            cs_fmt_rec(t->attrs[i].type, buf, len, pos, depth + 1);
        }
        PUT("}");
        break;
    }
#undef PUT
}

void cs_type_format(const struct cs_type *t, char *buf, size_t len)
{
    size_t pos = 0;
    if (len == 0)
        return;
    buf[0] = '\0';
    cs_fmt_rec(t, buf, len, &pos, 0);
}

/* ---- public entry points --------------------------------------------------- */

int cedar_schema_parse(const char *text, size_t len, const char *filename, bool json_format,
                       struct cedar_schema **out, char *err, size_t errlen)
{
    int rc = NHID_OK;
    struct cs_arena *a = NULL;
    struct cedar_schema *s = NULL;
    struct cs_raw_schema raw = {0};
    const char *file = filename ? filename : "<schema>";

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (text == NULL || out == NULL)
        return NHID_ERR_INVALID;
    if (len > CS_MAX_INPUT) {
        cs_errf(err, errlen, file, 1, 1, "schema is %zu bytes, more than the limit of %u", len,
                CS_MAX_INPUT);
        return NHID_ERR_TOO_LARGE;
    }
    a = cs_arena_new();
    NHID_CHECK_ALLOC(a);
    s = cs_alloc(a, sizeof(*s));
    NHID_CHECK_ALLOC(s);
    if (json_format)
        NHID_TRY(cs_parse_json(a, text, len, file, &raw, err, errlen));
    else
        NHID_TRY(cs_parse_human(a, text, len, file, &raw, err, errlen));
    NHID_TRY(cs_build(a, &raw, file, s, err, errlen));
    s->arena = a;
    *out = s;
    a = NULL;
out:
    if (rc == NHID_ERR_NOMEM && err != NULL && errlen > 0 && err[0] == '\0')
        cs_errf(err, errlen, file, 1, 1, "out of memory");
    if (rc == NHID_ERR_TOO_LARGE && err != NULL && errlen > 0 && err[0] == '\0')
        cs_errf(err, errlen, file, 1, 1, "too many declarations (limit %u)", CS_MAX_ITEMS);
    cs_arena_free(a);
    return rc;
}

void cedar_schema_free(struct cedar_schema *s)
{
    if (s == NULL)
        return;
    cs_arena_free(s->arena);
}
