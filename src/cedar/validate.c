/*
 * validate.c — strict-mode Cedar policy validation (the decisions of
 * cedar-policy's validator: rbac.rs checks plus typecheck.rs in
 * ValidationMode::Strict).
 *
 * A policy is valid when
 *  1. every entity type it names is declared (or is an Action type),
 *     every action literal is declared, every enum-entity literal is one of
 *     the declared ids;
 *  2. its scope can match some action's appliesTo ("invalid action
 *     application" otherwise);
 *  3. its condition `principal-scope && action-scope && resource-scope &&
 *     when/unless...` typechecks in every request environment (action x
 *     principal type x resource type of the schema) or is typed `false`
 *     there without errors. A policy that is `false` everywhere is only an
 *     "impossible policy" warning in current Cedar, not an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cedar/internal.h"
#include "cedar/validate_types.h"

#define V_MAX_DEPTH 256u /* recursion limit for expressions */

/* ---- capabilities ----------------------------------------------------------- */

/* (expression, attribute) or (expression, tag-expression) known to exist. */
struct cap {
    const struct cedar_expr *on;
    const char *attr; /* attribute capability */
    size_t alen;
    const struct cedar_expr *tag; /* tag capability when non-NULL */
};

struct caps {
    const struct cap *v;
    size_t n;
};

struct ans {
    bool ok;             /* typechecked */
    const struct vt *ty; /* NULL: no type */
    struct caps caps;
};

struct vctx {
    const struct cedar_schema *s;
    struct cs_arena *a;
    const struct cedar_policy *pol;
    /* request environment */
    long P, R, A;
    const char *pslot, *rslot; /* linked slot types, NULL = unlinked */
    /* diagnostics */
    json_t *diags;
    size_t nerr; /* errors in the current environment */
    int depth;
    bool oom;
};

static const struct vt VT_C_TRUE = {.k = VT_TRUE};
static const struct vt VT_C_FALSE = {.k = VT_FALSE};
static const struct vt VT_C_BOOL = {.k = VT_BOOL};
static const struct vt VT_C_LONG = {.k = VT_LONG};
static const struct vt VT_C_STRING = {.k = VT_STRING};
static const struct vt VT_C_ANY_ENTITY = {.k = VT_ANY_ENTITY};
static const struct vt VT_C_ANY_SET = {.k = VT_SET};
static const struct vt VT_C_ANY_RECORD = {.k = VT_RECORD, .open = true};
static const struct vt VT_C_SET_ENTITY = {.k = VT_SET, .elem = &VT_C_ANY_ENTITY};

/* ---- diagnostics ------------------------------------------------------------ */

static void v_diag(struct vctx *c, const struct cedar_loc *loc, const char *fmt, ...)
    NHID_PRINTF(3, 4);

static void v_diag(struct vctx *c, const struct cedar_loc *loc, const char *fmt, ...)
{
    char msg[512];
    char full[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct cedar_loc *l = (loc != NULL && loc->line != 0) ? loc : &c->pol->start;
    snprintf(full, sizeof(full), "%s:%u:%u: policy %.*s: %s",
             c->pol->filename ? c->pol->filename : "<input>", l->line, l->col,
             (int)(c->pol->id.len > 100 ? 100 : c->pol->id.len), c->pol->id.ptr, msg);
    c->nerr++;
    if (c->diags == NULL)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(c->diags, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), full) == 0)
            return;
    }
    if (json_array_size(c->diags) < 10000)
        json_array_append_new(c->diags, json_string(full));
}

/* ---- types -------------------------------------------------------------------- */

static void vt_fmt(const struct vt *t, char *buf, size_t len);

static const char *vt_str(const struct vt *t, char *buf, size_t len)
{
    if (t == NULL)
        snprintf(buf, len, "<unknown>");
    else
        vt_fmt(t, buf, len);
    return buf;
}

static void vt_fmt_rec(const struct vt *t, char *buf, size_t len, size_t *pos, int depth)
{
#define PUT(...)                                                                               \
    do {                                                                                       \
        if (*pos < len) {                                                                      \
            int n_ = snprintf(buf + *pos, len - *pos, __VA_ARGS__);                            \
            if (n_ > 0)                                                                        \
                *pos += (size_t)n_;                                                            \
        }                                                                                      \
    } while (0)
    static const char *const ext[] = {"ipaddr", "decimal", "datetime", "duration"};
    if (depth > 8) {
        PUT("...");
        return;
    }
    switch (t->k) {
    case VT_NEVER: PUT("Never"); break;
    case VT_TRUE: PUT("True"); break;
    case VT_FALSE: PUT("False"); break;
    case VT_BOOL: PUT("Bool"); break;
    case VT_LONG: PUT("Long"); break;
    case VT_STRING: PUT("String"); break;
    case VT_EXT: PUT("%s", ext[t->ext]); break;
    case VT_ANY_ENTITY: PUT("entity"); break;
    case VT_ACTION: PUT("%s", t->name); break;
    case VT_ENTITY:
        for (size_t i = 0; i < t->nents; i++)
            PUT("%s%s", i ? " | " : "", t->ents[i]);
        break;
    case VT_SET:
        PUT("Set<");
        if (t->elem)
            vt_fmt_rec(t->elem, buf, len, pos, depth + 1);
        else
            PUT("_");
        PUT(">");
        break;
    case VT_RECORD:
        PUT("{");
        for (size_t i = 0; i < t->nattrs; i++) {
            PUT("%s%.*s%s: ", i ? ", " : "", (int)t->attrs[i].len, t->attrs[i].name,
                t->attrs[i].required ? "" : "?");
            vt_fmt_rec(t->attrs[i].type, buf, len, pos, depth + 1);
        }
        PUT("}");
        break;
    }
#undef PUT
}

static void vt_fmt(const struct vt *t, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    vt_fmt_rec(t, buf, len, &pos, 0);
}

static struct vt *vt_new(struct vctx *c, enum vt_kind k)
{
    struct vt *t = cs_alloc(c->a, sizeof(*t));
    if (t == NULL) {
        c->oom = true;
        return NULL;
    }
    t->k = k;
    return t;
}

static const struct vt *vt_entity1(struct vctx *c, const char *name)
{
    struct vt *t = vt_new(c, VT_ENTITY);
    const char **e = cs_alloc(c->a, sizeof(char *));
    if (t == NULL || e == NULL) {
        c->oom = true;
        return NULL;
    }
    e[0] = name;
    t->ents = e;
    t->nents = 1;
    return t;
}

static const struct vt *vt_action(struct vctx *c, const char *type)
{
    struct vt *t = vt_new(c, VT_ACTION);
    if (t != NULL)
        t->name = type;
    return t;
}

static const struct vt *vt_set(struct vctx *c, const struct vt *elem)
{
    struct vt *t = vt_new(c, VT_SET);
    if (t != NULL)
        t->elem = elem;
    return t;
}

/* Schema type -> validator type. */
static const struct vt *vt_from_schema(struct vctx *c, const struct cs_type *st)
{
    switch (st->kind) {
    case CS_BOOL: return &VT_C_BOOL;
    case CS_LONG: return &VT_C_LONG;
    case CS_STRING: return &VT_C_STRING;
    case CS_EXT: {
        struct vt *t = vt_new(c, VT_EXT);
        if (t != NULL)
            t->ext = st->ext;
        return t;
    }
    case CS_ENTITY: return vt_entity1(c, st->entity);
    case CS_SET: {
        const struct vt *e = vt_from_schema(c, st->elem);
        return e ? vt_set(c, e) : NULL;
    }
    case CS_RECORD: {
        struct vt *t = vt_new(c, VT_RECORD);
        if (t == NULL)
            return NULL;
        struct vt_attr *at = cs_alloc(c->a, (st->nattrs + 1) * sizeof(*at));
        if (at == NULL) {
            c->oom = true;
            return NULL;
        }
        for (size_t i = 0; i < st->nattrs; i++) {
            at[i].name = st->attrs[i].name;
            at[i].len = st->attrs[i].name_len;
            at[i].required = st->attrs[i].required;
            at[i].type = vt_from_schema(c, st->attrs[i].type);
            if (at[i].type == NULL)
                return NULL;
        }
        t->attrs = at;
        t->nattrs = st->nattrs;
        return t;
    }
    }
    return NULL;
}

static const struct vt_attr *vt_rec_get(const struct vt *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->nattrs; i++)
        if (cs_bytes_cmp(r->attrs[i].name, r->attrs[i].len, name, len) == 0)
            return &r->attrs[i];
    return NULL;
}

static bool vt_eq(const struct vt *a, const struct vt *b);

static bool ents_eq(const struct vt *a, const struct vt *b)
{
    if (a->nents != b->nents)
        return false;
    for (size_t i = 0; i < a->nents; i++)
        if (strcmp(a->ents[i], b->ents[i]) != 0)
            return false;
    return true;
}

static bool ents_subset(const struct vt *a, const struct vt *b)
{
    for (size_t i = 0; i < a->nents; i++) {
        bool f = false;
        for (size_t j = 0; j < b->nents && !f; j++)
            f = strcmp(a->ents[i], b->ents[j]) == 0;
        if (!f)
            return false;
    }
    return true;
}

static bool ents_has(const struct vt *a, const char *n)
{
    for (size_t i = 0; i < a->nents; i++)
        if (strcmp(a->ents[i], n) == 0)
            return true;
    return false;
}

static bool vt_eq(const struct vt *a, const struct vt *b)
{
    if (a == b)
        return true;
    if (a == NULL || b == NULL || a->k != b->k)
        return false;
    switch (a->k) {
    case VT_SET:
        if (a->elem == NULL || b->elem == NULL)
            return a->elem == b->elem;
        return vt_eq(a->elem, b->elem);
    case VT_RECORD:
        if (a->open != b->open || a->nattrs != b->nattrs)
            return false;
        for (size_t i = 0; i < a->nattrs; i++)
            if (a->attrs[i].required != b->attrs[i].required ||
                cs_bytes_cmp(a->attrs[i].name, a->attrs[i].len, b->attrs[i].name,
                             b->attrs[i].len) != 0 ||
                !vt_eq(a->attrs[i].type, b->attrs[i].type))
                return false;
        return true;
    case VT_ENTITY: return ents_eq(a, b);
    case VT_ACTION: return strcmp(a->name, b->name) == 0;
    case VT_EXT: return a->ext == b->ext;
    default: return true;
    }
}

/* types.rs Type::is_subtype; strict selects ValidationMode::Strict. */
static bool vt_sub(const struct vt *t0, const struct vt *t1, bool strict)
{
    if (t0->k == VT_NEVER)
        return true;
    switch (t1->k) {
    case VT_BOOL: return t0->k == VT_TRUE || t0->k == VT_FALSE || t0->k == VT_BOOL;
    case VT_TRUE:
    case VT_FALSE:
    case VT_LONG:
    case VT_STRING: return t0->k == t1->k;
    case VT_EXT: return t0->k == VT_EXT && t0->ext == t1->ext;
    case VT_NEVER: return false;
    case VT_SET:
        if (t0->k != VT_SET)
            return false;
        if (t1->elem == NULL)
            return true;
        if (t0->elem == NULL)
            return false;
        return vt_sub(t0->elem, t1->elem, strict);
    case VT_RECORD: {
        if (t0->k != VT_RECORD)
            return false;
        if (t0->open && !t1->open)
            return false;
        /* every attribute of t1 must be in t0 with a subtype */
        for (size_t i = 0; i < t1->nattrs; i++) {
            const struct vt_attr *a0 = vt_rec_get(t0, t1->attrs[i].name, t1->attrs[i].len);
            if (a0 == NULL)
                return false;
            bool q = strict ? a0->required == t1->attrs[i].required
                            : (a0->required || !t1->attrs[i].required);
            if (!q || !vt_sub(a0->type, t1->attrs[i].type, strict))
                return false;
        }
        if (t1->open && !strict)
            return true; /* width subtyping */
        return t0->nattrs == t1->nattrs; /* depth only: same key sets */
    }
    case VT_ACTION: return t0->k == VT_ACTION && strcmp(t0->name, t1->name) == 0;
    case VT_ENTITY:
        if (t0->k != VT_ENTITY)
            return false;
        return strict ? ents_eq(t0, t1) : ents_subset(t0, t1);
    case VT_ANY_ENTITY:
        if (t0->k == VT_ANY_ENTITY)
            return true;
        return !strict && (t0->k == VT_ENTITY || t0->k == VT_ACTION);
    }
    return false;
}

/* Strict least upper bound; NULL when there is none. */
static const struct vt *vt_lub(struct vctx *c, const struct vt *t0, const struct vt *t1)
{
    if (vt_sub(t0, t1, true))
        return t1;
    if (vt_sub(t1, t0, true))
        return t0;
    if ((t0->k == VT_TRUE || t0->k == VT_FALSE) && (t1->k == VT_TRUE || t1->k == VT_FALSE))
        return &VT_C_BOOL;
    if (t0->k == VT_SET && t1->k == VT_SET) {
        if (t0->elem == NULL || t1->elem == NULL)
            return &VT_C_ANY_SET;
        const struct vt *e = vt_lub(c, t0->elem, t1->elem);
        return e ? vt_set(c, e) : NULL;
    }
    bool rec0 = t0->k == VT_RECORD, rec1 = t1->k == VT_RECORD;
    if (rec0 && rec1) {
        if (t0->nattrs != t1->nattrs)
            return NULL;
        struct vt *r = vt_new(c, VT_RECORD);
        struct vt_attr *at = cs_alloc(c->a, (t0->nattrs + 1) * sizeof(*at));
        if (r == NULL || at == NULL) {
            c->oom = true;
            return NULL;
        }
        for (size_t i = 0; i < t0->nattrs; i++) {
            const struct vt_attr *b = vt_rec_get(t1, t0->attrs[i].name, t0->attrs[i].len);
            if (b == NULL || b->required != t0->attrs[i].required)
                return NULL;
            at[i] = t0->attrs[i];
            at[i].type = vt_lub(c, t0->attrs[i].type, b->type);
            if (at[i].type == NULL)
                return NULL;
        }
        r->attrs = at;
        r->nattrs = t0->nattrs;
        r->open = t0->open || t1->open;
        return r;
    }
    /* Strict mode: distinct entity types, any-entity mixes, actions of
     * different types, entity/record mixes have no upper bound. */
    return NULL;
}

/* ---- capabilities ------------------------------------------------------------ */

static bool str_eq(const struct cedar_str *a, const struct cedar_str *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

/* Structural ("shape only") equality of expressions, ignoring positions. */
static bool shape_eq(const struct cedar_expr *a, const struct cedar_expr *b, int depth)
{
    if (a == b)
        return true;
    if (a == NULL || b == NULL || a->kind != b->kind || depth > (int)V_MAX_DEPTH)
        return false;
    switch (a->kind) {
    case CEDAR_E_LIT: return cedar_value_equal(&a->u.lit, &b->u.lit);
    case CEDAR_E_VAR: return a->u.var == b->u.var;
    case CEDAR_E_SLOT: return a->u.slot == b->u.slot;
    case CEDAR_E_GETATTR:
    case CEDAR_E_HAS:
        return str_eq(&a->u.attr.attr, &b->u.attr.attr) &&
               shape_eq(a->u.attr.e, b->u.attr.e, depth + 1);
    case CEDAR_E_LIKE: {
        const struct cedar_pattern *p = a->u.like.pat, *q = b->u.like.pat;
        if (p == NULL || q == NULL || p->n != q->n)
            return p == q && shape_eq(a->u.like.e, b->u.like.e, depth + 1);
        for (size_t i = 0; i < p->n; i++)
            if (p->elems[i].wildcard != q->elems[i].wildcard ||
                (!p->elems[i].wildcard && !str_eq(&p->elems[i].lit, &q->elems[i].lit)))
                return false;
        return shape_eq(a->u.like.e, b->u.like.e, depth + 1);
    }
    case CEDAR_E_IS:
        return str_eq(&a->u.is.type, &b->u.is.type) && shape_eq(a->u.is.e, b->u.is.e, depth + 1) &&
               shape_eq(a->u.is.in, b->u.is.in, depth + 1);
    case CEDAR_E_SET:
    case CEDAR_E_RECORD:
    case CEDAR_E_CALL:
        if (a->u.list.n != b->u.list.n)
            return false;
        if (a->kind == CEDAR_E_CALL && a->u.list.fn != b->u.list.fn)
            return false;
        for (size_t i = 0; i < a->u.list.n; i++) {
            if (a->kind == CEDAR_E_RECORD && !str_eq(&a->u.list.keys[i], &b->u.list.keys[i]))
                return false;
            if (!shape_eq(a->u.list.args[i], b->u.list.args[i], depth + 1))
                return false;
        }
        return true;
    default:
        return shape_eq(a->u.op.a, b->u.op.a, depth + 1) &&
               shape_eq(a->u.op.b, b->u.op.b, depth + 1) &&
               shape_eq(a->u.op.c, b->u.op.c, depth + 1);
    }
}

static bool cap_eq(const struct cap *x, const struct cap *y)
{
    if ((x->tag == NULL) != (y->tag == NULL))
        return false;
    if (x->tag != NULL) {
        if (!shape_eq(x->tag, y->tag, 0))
            return false;
    } else if (x->alen != y->alen || memcmp(x->attr, y->attr, x->alen) != 0) {
        return false;
    }
    return shape_eq(x->on, y->on, 0);
}

static bool caps_has(const struct caps *s, const struct cap *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (cap_eq(&s->v[i], x))
            return true;
    return false;
}

static struct caps caps_union(struct vctx *c, struct caps a, struct caps b)
{
    if (b.n == 0)
        return a;
    if (a.n == 0)
        return b;
    struct cap *v = cs_alloc(c->a, (a.n + b.n) * sizeof(*v));
    if (v == NULL) {
        c->oom = true;
        return a;
    }
    size_t n = 0;
    for (size_t i = 0; i < a.n; i++)
        v[n++] = a.v[i];
    for (size_t i = 0; i < b.n; i++)
        if (!caps_has(&a, &b.v[i]))
            v[n++] = b.v[i];
    return (struct caps){v, n};
}

static struct caps caps_intersect(struct vctx *c, struct caps a, struct caps b)
{
    if (a.n == 0 || b.n == 0)
        return (struct caps){0};
    struct cap *v = cs_alloc(c->a, a.n * sizeof(*v));
    if (v == NULL) {
        c->oom = true;
        return (struct caps){0};
    }
    size_t n = 0;
    for (size_t i = 0; i < a.n; i++)
        if (caps_has(&b, &a.v[i]))
            v[n++] = a.v[i];
    return (struct caps){v, n};
}

static struct caps caps_one(struct vctx *c, struct cap x)
{
    struct cap *v = cs_alloc(c->a, sizeof(*v));
    if (v == NULL) {
        c->oom = true;
        return (struct caps){0};
    }
    *v = x;
    return (struct caps){v, 1};
}

/* ---- answers ------------------------------------------------------------------ */

static struct ans ok_t(const struct vt *t)
{
    return (struct ans){.ok = true, .ty = t};
}

static struct ans fail_t(const struct vt *t)
{
    return (struct ans){.ok = false, .ty = t};
}

/* ---- expressions -------------------------------------------------------------- */

static struct ans tc(struct vctx *c, struct caps prior, const struct cedar_expr *e);

/* Typecheck e and require a (permissive) subtype of one of exp[]. */
static struct ans expect(struct vctx *c, struct caps prior, const struct cedar_expr *e,
                         const struct vt *const *exp, size_t nexp, const char *what)
{
    struct ans a = tc(c, prior, e);
    if (a.ty == NULL)
        return fail_t(NULL);
    for (size_t i = 0; i < nexp; i++)
        if (vt_sub(a.ty, exp[i], false))
            return a;
    char buf[160];
    v_diag(c, &e->loc, "unexpected type: expected %s but saw %s", what,
           vt_str(a.ty, buf, sizeof(buf)));
    return fail_t(NULL);
}

static struct ans expect1(struct vctx *c, struct caps prior, const struct cedar_expr *e,
                          const struct vt *t, const char *what)
{
    return expect(c, prior, e, &t, 1, what);
}

static const struct cs_entity_type *etype_of(struct vctx *c, const char *name)
{
    long i = cs_find_etype(c->s, name);
    return i < 0 ? NULL : &c->s->etypes[i];
}

/* Attributes of an entity/record type: NULL (not an entity/record or any
 * entity), else a record type. */
static const struct vt *attrs_of(struct vctx *c, const struct vt *t)
{
    static const struct vt empty_rec = {.k = VT_RECORD};
    if (t->k == VT_RECORD)
        return t;
    if (t->k == VT_ACTION)
        return &empty_rec; /* actions have no attributes in the schema */
    if (t->k == VT_ENTITY) {
        /* strict mode only builds single-type lubs; use the first */
        const struct cs_entity_type *et = etype_of(c, t->ents[0]);
        if (et == NULL)
            return &empty_rec;
        return vt_from_schema(c, et->shape);
    }
    return NULL;
}

/* types.rs may_have_attr */
static bool may_have_attr(struct vctx *c, const struct vt *t, const char *n, size_t len)
{
    if (t->k == VT_NEVER || t->k == VT_ANY_ENTITY)
        return true;
    if (t->k == VT_RECORD)
        return t->open || vt_rec_get(t, n, len) != NULL;
    if (t->k == VT_ENTITY) {
        for (size_t i = 0; i < t->nents; i++) {
            const struct cs_entity_type *et = etype_of(c, t->ents[i]);
            if (et == NULL)
                return true; /* unknown: open attributes */
            if (cs_record_get(et->shape, n, len) != NULL)
                return true;
        }
        return false;
    }
    return false;
}

/* A literal (or the `action` variable, replaced by its uid): the value. */
static const struct cedar_value *lit_of(struct vctx *c, const struct cedar_expr *e,
                                        struct cedar_value *tmp, struct cedar_uid *tmpu)
{
    if (e->kind == CEDAR_E_LIT)
        return &e->u.lit;
    if (e->kind == CEDAR_E_VAR && e->u.var == CEDAR_VAR_ACTION && c->A >= 0) {
        const struct cs_action *ac = &c->s->actions[c->A];
        tmpu->type.ptr = ac->type;
        tmpu->type.len = strlen(ac->type);
        tmpu->id.ptr = ac->id;
        tmpu->id.len = ac->id_len;
        tmpu->hash = cedar_uid_hash(tmpu->type.ptr, tmpu->type.len, ac->id, ac->id_len);
        memset(tmp, 0, sizeof(*tmp));
        tmp->kind = CEDAR_V_ENTITY;
        tmp->u.uid = tmpu;
        return tmp;
    }
    return NULL;
}

static long action_index(struct vctx *c, const struct cedar_uid *u)
{
    return cs_find_action(c->s, u->type.ptr, u->id.ptr, u->id.len);
}

/* Type of an entity uid literal, NULL if undeclared (reported elsewhere). */
static const struct vt *uid_type(struct vctx *c, const struct cedar_uid *u)
{
    if (cs_is_action_type(u->type.ptr)) {
        if (action_index(c, u) < 0)
            return NULL;
        return vt_action(c, c->s->actions[action_index(c, u)].type);
    }
    const struct cs_entity_type *et = etype_of(c, u->type.ptr);
    return et ? vt_entity1(c, et->name) : NULL;
}

static struct ans tc_and(struct vctx *c, struct caps prior, const struct cedar_expr *l,
                         const struct cedar_expr *r)
{
    struct ans al = expect1(c, prior, l, &VT_C_BOOL, "Bool");
    if (al.ty == NULL) {
        /* then_typecheck on failure: continue with no capabilities */
        struct ans ar = expect1(c, prior, r, &VT_C_BOOL, "Bool");
        (void)ar;
        return fail_t(&VT_C_BOOL);
    }
    if (al.ty->k == VT_FALSE)
        return (struct ans){.ok = al.ok, .ty = al.ty};
    struct ans ar = expect1(c, caps_union(c, prior, al.caps), r, &VT_C_BOOL, "Bool");
    bool ok = al.ok && ar.ok;
    if (ar.ty == NULL)
        return fail_t(&VT_C_BOOL);
    if (!ok)
        return fail_t(ar.ty->k == VT_FALSE ? &VT_C_FALSE : &VT_C_BOOL);
    if (ar.ty->k == VT_FALSE)
        return ok_t(&VT_C_FALSE);
    struct ans res = ok_t(ar.ty->k == VT_TRUE ? al.ty : al.ty->k == VT_TRUE ? ar.ty : &VT_C_BOOL);
    res.caps = caps_union(c, al.caps, ar.caps);
    return res;
}

static struct ans tc_or(struct vctx *c, struct caps prior, const struct cedar_expr *l,
                        const struct cedar_expr *r)
{
    struct ans al = expect1(c, prior, l, &VT_C_BOOL, "Bool");
    if (al.ty == NULL) {
        (void)expect1(c, prior, r, &VT_C_BOOL, "Bool");
        return fail_t(&VT_C_BOOL);
    }
    if (al.ty->k == VT_TRUE)
        return (struct ans){.ok = al.ok, .ty = al.ty, .caps = al.ok ? al.caps : (struct caps){0}};
    struct ans ar = expect1(c, prior, r, &VT_C_BOOL, "Bool");
    bool ok = al.ok && ar.ok;
    if (ar.ty == NULL || !ok)
        return fail_t(&VT_C_BOOL);
    if (ar.ty->k == VT_TRUE) {
        struct ans res = ok_t(&VT_C_TRUE);
        res.caps = ar.caps;
        return res;
    }
    if (ar.ty->k == VT_FALSE) {
        struct ans res = ok_t(al.ty);
        res.caps = al.caps;
        return res;
    }
    if (al.ty->k == VT_FALSE) {
        struct ans res = ok_t(ar.ty);
        res.caps = ar.caps;
        return res;
    }
    struct ans res = ok_t(&VT_C_BOOL);
    res.caps = caps_intersect(c, ar.caps, al.caps);
    return res;
}

static struct ans tc_if(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    struct ans at = expect1(c, prior, e->u.op.a, &VT_C_BOOL, "Bool");
    bool tok = at.ty != NULL && at.ok;
    struct caps tcaps = tok ? at.caps : (struct caps){0};
    if (at.ty != NULL && at.ty->k == VT_TRUE) {
        struct ans th = tc(c, caps_union(c, prior, tcaps), e->u.op.b);
        struct ans r = {.ok = tok && th.ok, .ty = th.ty};
        if (r.ok)
            r.caps = caps_union(c, th.caps, tcaps);
        return r;
    }
    if (at.ty != NULL && at.ty->k == VT_FALSE) {
        struct ans el = tc(c, prior, e->u.op.c);
        struct ans r = {.ok = tok && el.ok, .ty = el.ty};
        if (r.ok)
            r.caps = el.caps;
        return r;
    }
    struct ans th = tc(c, caps_union(c, prior, tcaps), e->u.op.b);
    struct caps thcaps = caps_union(c, th.caps, tcaps);
    struct ans el = tc(c, prior, e->u.op.c);
    bool ok = at.ty != NULL && at.ok && th.ok && el.ok;
    if (th.ty == NULL || el.ty == NULL)
        return fail_t(NULL);
    const struct vt *lub = vt_lub(c, th.ty, el.ty);
    if (lub == NULL) {
        char b1[128], b2[128];
        v_diag(c, &e->loc, "the branches of `if` have incompatible types %s and %s",
               vt_str(th.ty, b1, sizeof(b1)), vt_str(el.ty, b2, sizeof(b2)));
        return fail_t(NULL);
    }
    struct ans r = {.ok = ok, .ty = lub};
    if (ok)
        r.caps = caps_intersect(c, el.caps, thcaps);
    return r;
}

static struct ans tc_getattr(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    static const struct vt *const er[] = {&VT_C_ANY_ENTITY, &VT_C_ANY_RECORD};
    const struct cedar_expr *x = e->u.attr.e;
    const struct cedar_str *an = &e->u.attr.attr;
    struct ans a = expect(c, prior, x, er, 2, "an entity or record");
    if (a.ty == NULL)
        return fail_t(NULL);
    const struct vt *at = attrs_of(c, a.ty);
    const struct vt_attr *attr = at ? vt_rec_get(at, an->ptr, an->len) : NULL;
    if (attr != NULL) {
        struct cap k = {.on = x, .attr = an->ptr, .alen = an->len};
        if (attr->required || caps_has(&prior, &k))
            return (struct ans){.ok = a.ok, .ty = attr->type};
        v_diag(c, &e->loc, "unsafe access to optional attribute `%.*s`: guard it with `has`",
               (int)an->len, an->ptr);
        return fail_t(attr->type);
    }
    char buf[160];
    v_diag(c, &e->loc, "attribute `%.*s` not found on %s", (int)an->len, an->ptr,
           vt_str(a.ty, buf, sizeof(buf)));
    return fail_t(NULL);
}

static struct ans tc_has(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    static const struct vt *const er[] = {&VT_C_ANY_ENTITY, &VT_C_ANY_RECORD};
    const struct cedar_expr *x = e->u.attr.e;
    const struct cedar_str *an = &e->u.attr.attr;
    struct ans a = expect(c, prior, x, er, 2, "an entity or record");
    if (a.ty == NULL)
        return fail_t(&VT_C_BOOL);
    const struct vt *at = attrs_of(c, a.ty);
    const struct vt_attr *attr = at ? vt_rec_get(at, an->ptr, an->len) : NULL;
    struct cap k = {.on = x, .attr = an->ptr, .alen = an->len};
    struct ans r = {.ok = a.ok};
    if (attr != NULL) {
        bool known = caps_has(&prior, &k);
        if (attr->required)
            r.ty = (a.ty->k == VT_RECORD || known) ? &VT_C_TRUE : &VT_C_BOOL;
        else
            r.ty = known ? &VT_C_TRUE : &VT_C_BOOL;
        if (r.ok)
            r.caps = caps_one(c, k);
        return r;
    }
    r.ty = may_have_attr(c, a.ty, an->ptr, an->len) ? &VT_C_BOOL : &VT_C_FALSE;
    return r;
}

/* Schema: can an entity of type `lhs` be `in` an entity of type `rhs`? */
static bool etype_may_be_in(struct vctx *c, const char *lhs, const char *rhs)
{
    if (strcmp(lhs, rhs) == 0)
        return true;
    long li = cs_find_etype(c->s, lhs), ri = cs_find_etype(c->s, rhs);
    if (li >= 0 && ri >= 0 && c->s->etypes[ri].desc[li])
        return true;
    /* action hierarchy: an action of type rhs with a descendant of type lhs */
    for (size_t i = 0; i < c->s->n_actions; i++) {
        const struct cs_action *ac = &c->s->actions[i];
        if (strcmp(ac->type, rhs) != 0)
            continue;
        for (size_t j = 0; j < c->s->n_actions; j++)
            if (ac->desc[j] && strcmp(c->s->actions[j].type, lhs) == 0)
                return true;
    }
    return false;
}

/* The entity types of an entity type (entity lub or action), or 0. */
static size_t ent_names(const struct vt *t, const char *const **out, const char **one)
{
    if (t->k == VT_ENTITY) {
        *out = t->ents;
        return t->nents;
    }
    if (t->k == VT_ACTION) {
        *one = t->name;
        *out = one;
        return 1;
    }
    return 0;
}

static struct ans tc_in(struct vctx *c, struct caps prior, const struct cedar_expr *e,
                        const struct cedar_expr *lhs, const struct cedar_expr *rhs)
{
    static const struct vt *const rexp[] = {&VT_C_SET_ENTITY, &VT_C_ANY_ENTITY};
    struct ans al = expect1(c, prior, lhs, &VT_C_ANY_ENTITY, "an entity");
    struct ans ar = expect(c, prior, rhs, rexp, 2, "an entity or a set of entities");
    (void)e;
    if (al.ty == NULL || ar.ty == NULL || !al.ok || !ar.ok)
        return fail_t(&VT_C_BOOL);
    struct cedar_value tv;
    struct cedar_uid tu;
    const struct cedar_value *lv = lit_of(c, lhs, &tv, &tu);
    if (lv != NULL && lv->kind == CEDAR_V_ENTITY && cs_is_action_type(lv->u.uid->type.ptr)) {
        /* rhs: literal, action, or set of those */
        const struct cedar_uid *ru[64];
        struct cedar_value rtv[64];
        struct cedar_uid rtu[64];
        size_t nr = 0;
        bool all = true;
        if (rhs->kind == CEDAR_E_SET) {
            for (size_t i = 0; i < rhs->u.list.n && all; i++) {
                const struct cedar_value *v =
                    i < 64 ? lit_of(c, rhs->u.list.args[i], &rtv[i], &rtu[i]) : NULL;
                if (v == NULL || v->kind != CEDAR_V_ENTITY)
                    all = false;
                else
                    ru[nr++] = v->u.uid;
            }
        } else {
            const struct cedar_value *v = lit_of(c, rhs, &rtv[0], &rtu[0]);
            if (v == NULL || v->kind != CEDAR_V_ENTITY)
                all = false;
            else
                ru[nr++] = v->u.uid;
        }
        if (all) {
            long li = action_index(c, lv->u.uid);
            bool any_action = false, result = false;
            for (size_t i = 0; i < nr; i++) {
                if (!cs_is_action_type(ru[i]->type.ptr))
                    continue;
                any_action = true;
                long ri = action_index(c, ru[i]);
                if (ri < 0)
                    return fail_t(&VT_C_BOOL); /* unknown action: reported elsewhere */
                if (li >= 0 && (ri == li || c->s->actions[ri].desc[li]))
                    result = true;
            }
            if (!any_action)
                return ok_t(&VT_C_FALSE);
            return ok_t(result ? &VT_C_TRUE : &VT_C_FALSE);
        }
    }
    const char *const *ln = NULL, *const *rn = NULL;
    const char *l1 = NULL, *r1 = NULL;
    size_t nl = ent_names(al.ty, &ln, &l1);
    const struct vt *rt = ar.ty->k == VT_SET ? ar.ty->elem : ar.ty;
    size_t nrn = rt ? ent_names(rt, &rn, &r1) : 0;
    if (nl > 0 && nrn > 0) {
        bool may = false;
        for (size_t i = 0; i < nl && !may; i++)
            for (size_t j = 0; j < nrn && !may; j++)
                may = etype_may_be_in(c, ln[i], rn[j]);
        if (!may)
            return ok_t(&VT_C_FALSE);
    }
    return ok_t(&VT_C_BOOL);
}

/* == : types.rs type_of_equality + strict equality check */
static struct ans tc_eq(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    struct ans a = tc(c, prior, e->u.op.a);
    struct ans b = tc(c, prior, e->u.op.b);
    bool ok = a.ok && b.ok;
    const struct vt *ty = &VT_C_BOOL;
    if (a.ty != NULL && b.ty != NULL) {
        const char *const *ln = NULL, *const *rn = NULL;
        const char *l1 = NULL, *r1 = NULL;
        size_t nl = ent_names(a.ty, &ln, &l1), nr = ent_names(b.ty, &rn, &r1);
        bool disjoint = false;
        if (nl > 0 && nr > 0) {
            disjoint = true;
            for (size_t i = 0; i < nl && disjoint; i++)
                for (size_t j = 0; j < nr && disjoint; j++)
                    if (strcmp(ln[i], rn[j]) == 0)
                        disjoint = false;
        }
        if (disjoint) {
            ty = &VT_C_FALSE;
        } else {
            struct cedar_value t1, t2;
            struct cedar_uid u1, u2;
            const struct cedar_value *v1 = lit_of(c, e->u.op.a, &t1, &u1);
            const struct cedar_value *v2 = lit_of(c, e->u.op.b, &t2, &u2);
            if (v1 != NULL && v2 != NULL)
                ty = cedar_value_equal(v1, v2) ? &VT_C_TRUE : &VT_C_FALSE;
        }
    }
    if (ty->k == VT_BOOL && a.ty != NULL && b.ty != NULL && vt_lub(c, a.ty, b.ty) == NULL) {
        char b1[128], b2[128];
        v_diag(c, &e->loc, "cannot compare %s with %s using ==", vt_str(a.ty, b1, sizeof(b1)),
               vt_str(b.ty, b2, sizeof(b2)));
        return fail_t(ty);
    }
    return (struct ans){.ok = ok, .ty = ty};
}

static bool cmp_ok_type(const struct vt *t)
{
    return t->k == VT_LONG ||
           (t->k == VT_EXT && (t->ext == CS_EXT_DATETIME || t->ext == CS_EXT_DURATION));
}

static struct ans tc_cmp(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    struct ans a = tc(c, prior, e->u.op.a);
    if (a.ty == NULL) {
        (void)tc(c, prior, e->u.op.b);
        return fail_t(&VT_C_BOOL);
    }
    struct ans b = tc(c, prior, e->u.op.b);
    if (b.ty == NULL)
        return fail_t(&VT_C_BOOL);
    bool ok = a.ok && b.ok;
    char b1[128], b2[128];
    if (vt_eq(a.ty, b.ty) && cmp_ok_type(a.ty))
        return (struct ans){.ok = ok, .ty = &VT_C_BOOL};
    v_diag(c, &e->loc, "cannot compare %s with %s (expected Long, datetime or duration)",
           vt_str(a.ty, b1, sizeof(b1)), vt_str(b.ty, b2, sizeof(b2)));
    return fail_t(&VT_C_BOOL);
}

static struct ans tc_arith(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    struct ans a = expect1(c, prior, e->u.op.a, &VT_C_LONG, "Long");
    if (a.ty == NULL) {
        (void)expect1(c, prior, e->u.op.b, &VT_C_LONG, "Long");
        return fail_t(&VT_C_LONG);
    }
    struct ans b = expect1(c, prior, e->u.op.b, &VT_C_LONG, "Long");
    return (struct ans){.ok = a.ok && b.ok && b.ty != NULL, .ty = &VT_C_LONG};
}

/* Extension function signatures (the validator's extensions modules). */
struct ext_sig {
    int nargs;
    int8_t args[2]; /* -1 String, else enum cs_ext_kind */
    int8_t ret;     /* -2 Bool, -3 Long, else enum cs_ext_kind */
    bool ctor;      /* literal argument check */
};

static bool ext_sig(uint8_t fn, struct ext_sig *s)
{
    enum { S = -1, B = -2, L = -3 };
    switch (fn) {
    case CEDAR_FN_IP: *s = (struct ext_sig){1, {S, 0}, CS_EXT_IPADDR, true}; return true;
    case CEDAR_FN_IS_IPV4:
    case CEDAR_FN_IS_IPV6:
    case CEDAR_FN_IS_LOOPBACK:
    case CEDAR_FN_IS_MULTICAST: *s = (struct ext_sig){1, {CS_EXT_IPADDR, 0}, B, false}; return true;
    case CEDAR_FN_IS_IN_RANGE:
        *s = (struct ext_sig){2, {CS_EXT_IPADDR, CS_EXT_IPADDR}, B, false};
        return true;
    case CEDAR_FN_DECIMAL: *s = (struct ext_sig){1, {S, 0}, CS_EXT_DECIMAL, true}; return true;
    case CEDAR_FN_LESS_THAN:
    case CEDAR_FN_LESS_THAN_OR_EQUAL:
    case CEDAR_FN_GREATER_THAN:
    case CEDAR_FN_GREATER_THAN_OR_EQUAL:
        *s = (struct ext_sig){2, {CS_EXT_DECIMAL, CS_EXT_DECIMAL}, B, false};
        return true;
    case CEDAR_FN_DATETIME: *s = (struct ext_sig){1, {S, 0}, CS_EXT_DATETIME, true}; return true;
    case CEDAR_FN_DURATION: *s = (struct ext_sig){1, {S, 0}, CS_EXT_DURATION, true}; return true;
    case CEDAR_FN_OFFSET:
        *s = (struct ext_sig){2, {CS_EXT_DATETIME, CS_EXT_DURATION}, CS_EXT_DATETIME, false};
        return true;
    case CEDAR_FN_DURATION_SINCE:
        *s = (struct ext_sig){2, {CS_EXT_DATETIME, CS_EXT_DATETIME}, CS_EXT_DURATION, false};
        return true;
    case CEDAR_FN_TO_DATE:
        *s = (struct ext_sig){1, {CS_EXT_DATETIME, 0}, CS_EXT_DATETIME, false};
        return true;
    case CEDAR_FN_TO_TIME:
        *s = (struct ext_sig){1, {CS_EXT_DATETIME, 0}, CS_EXT_DURATION, false};
        return true;
    case CEDAR_FN_TO_DAYS:
    case CEDAR_FN_TO_HOURS:
    case CEDAR_FN_TO_MINUTES:
    case CEDAR_FN_TO_SECONDS:
    case CEDAR_FN_TO_MILLISECONDS:
        *s = (struct ext_sig){1, {CS_EXT_DURATION, 0}, L, false};
        return true;
    default: return false;
    }
}

static const struct vt *ext_vt(struct vctx *c, int code)
{
    if (code == -1)
        return &VT_C_STRING;
    if (code == -2)
        return &VT_C_BOOL;
    if (code == -3)
        return &VT_C_LONG;
    struct vt *t = vt_new(c, VT_EXT);
    if (t != NULL)
        t->ext = (enum cs_ext_kind)code;
    return t;
}

static struct ans tc_ext(struct vctx *c, struct caps prior, const struct cedar_expr *e,
                         const struct ext_sig *sig)
{
    size_t n = e->u.list.n;
    struct cedar_expr **args = e->u.list.args;
    const struct vt *ret = ext_vt(c, sig->ret);
    bool failed = false;
    const char *fname = cedar_fn_info(e->u.list.fn)->name;
    if ((int)n != sig->nargs) {
        v_diag(c, &e->loc, "wrong number of arguments to %s: expected %d, got %zu", fname,
               sig->nargs, n);
        failed = true;
    }
    if (sig->ctor && n == 1 && args[0]->kind == CEDAR_E_LIT &&
        args[0]->u.lit.kind == CEDAR_V_STRING) {
        const struct cedar_str *s = &args[0]->u.lit.u.s;
        char err[128];
        int r = 0;
        int64_t tmp;
        struct cedar_ipaddr ip;
        switch (e->u.list.fn) {
        case CEDAR_FN_IP: r = cedar_ip_parse(s->ptr, s->len, &ip, err, sizeof(err)); break;
        case CEDAR_FN_DECIMAL: r = cedar_decimal_parse(s->ptr, s->len, &tmp, err, sizeof(err)); break;
        case CEDAR_FN_DATETIME: r = cedar_datetime_parse(s->ptr, s->len, &tmp, err, sizeof(err)); break;
        default: r = cedar_duration_parse(s->ptr, s->len, &tmp, err, sizeof(err)); break;
        }
        if (r < 0) {
            v_diag(c, &e->loc, "invalid argument to %s: %s", fname, err);
            failed = true;
        }
    }
    if (sig->ctor) {
        for (size_t i = 0; i < n; i++)
            if (args[i]->kind != CEDAR_E_LIT) {
                v_diag(c, &e->loc,
                       "%s must be called with a literal argument in strict validation", fname);
                failed = true;
                break;
            }
    }
    if (failed) {
        for (size_t i = 0; i < n; i++)
            (void)tc(c, prior, args[i]);
        return fail_t(ret);
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const struct vt *want = ext_vt(c, sig->args[i]);
        char what[32];
        if (want == NULL)
            return fail_t(ret);
        vt_fmt(want, what, sizeof(what));
        struct ans a = expect1(c, prior, args[i], want, what);
        if (a.ty == NULL || !a.ok)
            ok = false;
    }
    return (struct ans){.ok = ok, .ty = ret};
}

/* Tag types of an entity type (set, deduplicated); returns count. */
static size_t tag_types(struct vctx *c, const struct vt *t, const struct cs_type **out,
                        size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < c->s->n_etypes; i++) {
        const struct cs_entity_type *et = &c->s->etypes[i];
        if (et->tags == NULL)
            continue;
        if (t->k == VT_ENTITY && !ents_has(t, et->name))
            continue;
        if (t->k == VT_ACTION)
            continue;
        if (n < max)
            out[n++] = et->tags;
    }
    return n;
}

static struct ans tc_tag(struct vctx *c, struct caps prior, const struct cedar_expr *e,
                         bool get)
{
    const struct cedar_expr *x = e->u.list.args[0], *k = e->u.list.args[1];
    struct ans a = expect1(c, prior, x, &VT_C_ANY_ENTITY, "an entity");
    if (a.ty == NULL) {
        (void)expect1(c, prior, k, &VT_C_STRING, "String");
        return fail_t(get ? NULL : &VT_C_BOOL);
    }
    struct ans b = expect1(c, prior, k, &VT_C_STRING, "String");
    if (b.ty == NULL)
        return fail_t(get ? NULL : &VT_C_BOOL);
    bool ok = a.ok && b.ok;
    const struct cs_type *tt[64];
    size_t nt = tag_types(c, a.ty, tt, 64);
    struct cap cp = {.on = x, .tag = k};
    bool known = caps_has(&prior, &cp);
    if (!get) {
        struct ans r = {.ok = ok};
        r.ty = nt == 0 ? &VT_C_FALSE : known ? &VT_C_TRUE : &VT_C_BOOL;
        if (ok)
            r.caps = caps_one(c, cp);
        return r;
    }
    if (!known) {
        v_diag(c, &e->loc, "unsafe tag access: guard getTag with hasTag");
        return fail_t(NULL);
    }
    if (nt == 0) {
        v_diag(c, &e->loc, "this entity type cannot have tags");
        return fail_t(NULL);
    }
    const struct vt *lub = vt_from_schema(c, tt[0]);
    for (size_t i = 1; i < nt && lub != NULL; i++) {
        const struct vt *o = vt_from_schema(c, tt[i]);
        lub = o ? vt_lub(c, lub, o) : NULL;
    }
    if (lub == NULL) {
        v_diag(c, &e->loc, "tag types are incompatible");
        return fail_t(NULL);
    }
    return (struct ans){.ok = ok, .ty = lub};
}

static struct ans tc_call(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    uint8_t fn = e->u.list.fn;
    size_t n = e->u.list.n;
    struct cedar_expr **args = e->u.list.args;
    static const struct vt *const set1[] = {&VT_C_ANY_SET};
    struct ext_sig sig;
    if (ext_sig(fn, &sig))
        return tc_ext(c, prior, e, &sig);
    switch (fn) {
    case CEDAR_FN_IS_EMPTY: {
        if (n != 1)
            break;
        struct ans a = expect(c, prior, args[0], set1, 1, "a set");
        return (struct ans){.ok = a.ok && a.ty != NULL, .ty = &VT_C_BOOL};
    }
    case CEDAR_FN_CONTAINS:
    case CEDAR_FN_CONTAINS_ALL:
    case CEDAR_FN_CONTAINS_ANY: {
        if (n != 2)
            break;
        struct ans a = expect(c, prior, args[0], set1, 1, "a set");
        if (a.ty == NULL) {
            if (fn == CEDAR_FN_CONTAINS)
                (void)tc(c, prior, args[1]);
            else
                (void)expect(c, prior, args[1], set1, 1, "a set");
            return fail_t(&VT_C_BOOL);
        }
        struct ans b = fn == CEDAR_FN_CONTAINS ? tc(c, prior, args[1])
                                               : expect(c, prior, args[1], set1, 1, "a set");
        if (b.ty == NULL)
            return fail_t(&VT_C_BOOL);
        bool ok = a.ok && b.ok;
        const struct vt *l = fn == CEDAR_FN_CONTAINS ? a.ty->elem : a.ty;
        if (l != NULL && vt_lub(c, l, b.ty) == NULL) {
            char b1[128], b2[128];
            v_diag(c, &e->loc, "incompatible types in %s: %s and %s",
                   cedar_fn_info(fn)->name, vt_str(a.ty, b1, sizeof(b1)),
                   vt_str(b.ty, b2, sizeof(b2)));
            return fail_t(&VT_C_BOOL);
        }
        return (struct ans){.ok = ok, .ty = &VT_C_BOOL};
    }
    case CEDAR_FN_HAS_TAG:
    case CEDAR_FN_GET_TAG:
        if (n != 2)
            break;
        return tc_tag(c, prior, e, fn == CEDAR_FN_GET_TAG);
    default: break;
    }
    v_diag(c, &e->loc, "wrong number of arguments to %s", cedar_fn_info(fn)->name);
    return fail_t(NULL);
}

static struct ans tc_is(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    struct ans a = expect1(c, prior, e->u.is.e, &VT_C_ANY_ENTITY, "an entity");
    const char *T = e->u.is.type.ptr;
    struct ans r;
    if (a.ty == NULL) {
        r = fail_t(&VT_C_BOOL);
    } else if (a.ty->k == VT_ENTITY) {
        const struct vt *t = !ents_has(a.ty, T)                      ? &VT_C_FALSE
                             : (a.ty->nents == 1)                    ? &VT_C_TRUE
                                                                     : &VT_C_BOOL;
        r = (struct ans){.ok = a.ok, .ty = t};
    } else if (a.ty->k == VT_ACTION) {
        r = (struct ans){.ok = a.ok, .ty = strcmp(a.ty->name, T) == 0 ? &VT_C_TRUE : &VT_C_FALSE};
    } else {
        r = (struct ans){.ok = a.ok, .ty = &VT_C_BOOL};
    }
    if (e->u.is.in == NULL)
        return r;
    /* `x is T in y` is `x is T && x in y` */
    if (r.ty == NULL || r.ty->k == VT_FALSE)
        return r;
    struct ans b = tc_in(c, prior, e, e->u.is.e, e->u.is.in);
    bool ok = r.ok && b.ok;
    if (b.ty == NULL)
        return fail_t(&VT_C_BOOL);
    if (!ok)
        return fail_t(b.ty->k == VT_FALSE ? &VT_C_FALSE : &VT_C_BOOL);
    if (b.ty->k == VT_FALSE)
        return ok_t(&VT_C_FALSE);
    return ok_t(b.ty->k == VT_TRUE ? r.ty : r.ty->k == VT_TRUE ? b.ty : &VT_C_BOOL);
}

static struct ans tc_inner(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    switch (e->kind) {
    case CEDAR_E_LIT:
        switch (e->u.lit.kind) {
        case CEDAR_V_BOOL: return ok_t(e->u.lit.u.b ? &VT_C_TRUE : &VT_C_FALSE);
        case CEDAR_V_LONG: return ok_t(&VT_C_LONG);
        case CEDAR_V_STRING: return ok_t(&VT_C_STRING);
        case CEDAR_V_ENTITY: {
            const struct vt *t = uid_type(c, e->u.lit.u.uid);
            return t ? ok_t(t) : fail_t(NULL);
        }
        default: return fail_t(NULL);
        }
    case CEDAR_E_VAR:
        switch (e->u.var) {
        case CEDAR_VAR_PRINCIPAL: return ok_t(vt_entity1(c, c->s->etypes[c->P].name));
        case CEDAR_VAR_RESOURCE: return ok_t(vt_entity1(c, c->s->etypes[c->R].name));
        case CEDAR_VAR_ACTION: return ok_t(vt_action(c, c->s->actions[c->A].type));
        default: return ok_t(vt_from_schema(c, c->s->actions[c->A].context));
        }
    case CEDAR_E_SLOT: {
        const char *t = e->u.slot == CEDAR_SLOT_PRINCIPAL ? c->pslot : c->rslot;
        return ok_t(t ? vt_entity1(c, t) : &VT_C_ANY_ENTITY);
    }
    case CEDAR_E_NOT: {
        struct ans a = expect1(c, prior, e->u.op.a, &VT_C_BOOL, "Bool");
        if (a.ty == NULL)
            return fail_t(&VT_C_BOOL);
        const struct vt *t = a.ty->k == VT_TRUE    ? &VT_C_FALSE
                             : a.ty->k == VT_FALSE ? &VT_C_TRUE
                                                   : &VT_C_BOOL;
        return (struct ans){.ok = a.ok, .ty = t};
    }
    case CEDAR_E_NEG: {
        struct ans a = expect1(c, prior, e->u.op.a, &VT_C_LONG, "Long");
        return (struct ans){.ok = a.ok && a.ty != NULL, .ty = &VT_C_LONG};
    }
    case CEDAR_E_AND: return tc_and(c, prior, e->u.op.a, e->u.op.b);
    case CEDAR_E_OR: return tc_or(c, prior, e->u.op.a, e->u.op.b);
    case CEDAR_E_EQ: return tc_eq(c, prior, e);
    case CEDAR_E_NE: {
        struct ans a = tc_eq(c, prior, e);
        if (a.ty != NULL)
            a.ty = a.ty->k == VT_TRUE ? &VT_C_FALSE : a.ty->k == VT_FALSE ? &VT_C_TRUE : a.ty;
        a.caps = (struct caps){0};
        return a;
    }
    case CEDAR_E_LT:
    case CEDAR_E_LE:
    case CEDAR_E_GT:
    case CEDAR_E_GE: return tc_cmp(c, prior, e);
    case CEDAR_E_ADD:
    case CEDAR_E_SUB:
    case CEDAR_E_MUL: return tc_arith(c, prior, e);
    case CEDAR_E_IN: return tc_in(c, prior, e, e->u.op.a, e->u.op.b);
    case CEDAR_E_IF: return tc_if(c, prior, e);
    case CEDAR_E_GETATTR: return tc_getattr(c, prior, e);
    case CEDAR_E_HAS: return tc_has(c, prior, e);
    case CEDAR_E_LIKE: {
        struct ans a = expect1(c, prior, e->u.like.e, &VT_C_STRING, "String");
        return (struct ans){.ok = a.ok && a.ty != NULL, .ty = &VT_C_BOOL};
    }
    case CEDAR_E_IS: return tc_is(c, prior, e);
    case CEDAR_E_SET: {
        const struct vt *lub = NULL;
        bool ok = true, have = true;
        struct ans *el = cs_alloc(c->a, (e->u.list.n + 1) * sizeof(*el));
        if (el == NULL) {
            c->oom = true;
            return fail_t(NULL);
        }
        for (size_t i = 0; i < e->u.list.n; i++) {
            el[i] = tc(c, prior, e->u.list.args[i]);
            ok = ok && el[i].ok;
            if (el[i].ty == NULL)
                have = false;
        }
        if (have) {
            lub = e->u.list.n ? el[0].ty : NULL;
            for (size_t i = 1; i < e->u.list.n && lub != NULL; i++)
                lub = vt_lub(c, lub, el[i].ty);
            if (lub == NULL && e->u.list.n > 0)
                v_diag(c, &e->loc, "set elements have incompatible types");
        }
        if (e->u.list.n == 0) {
            v_diag(c, &e->loc, "empty set literals are forbidden in strict validation");
            return fail_t(NULL);
        }
        if (lub == NULL)
            return fail_t(NULL);
        const struct vt *st = vt_set(c, lub);
        return (struct ans){.ok = ok, .ty = st};
    }
    case CEDAR_E_RECORD: {
        size_t n = e->u.list.n;
        bool ok = true, have = true;
        struct vt_attr *at = cs_alloc(c->a, (n + 1) * sizeof(*at));
        if (at == NULL) {
            c->oom = true;
            return fail_t(NULL);
        }
        for (size_t i = 0; i < n; i++) {
            struct ans a = tc(c, prior, e->u.list.args[i]);
            ok = ok && a.ok;
            if (a.ty == NULL)
                have = false;
            at[i] = (struct vt_attr){.name = e->u.list.keys[i].ptr,
                                     .len = e->u.list.keys[i].len,
                                     .type = a.ty,
                                     .required = true};
        }
        if (!have)
            return fail_t(NULL);
        struct vt *r = vt_new(c, VT_RECORD);
        if (r == NULL)
            return fail_t(NULL);
        r->attrs = at;
        r->nattrs = n;
        return (struct ans){.ok = ok, .ty = r};
    }
    case CEDAR_E_CALL: return tc_call(c, prior, e);
    default: return fail_t(NULL);
    }
}

static struct ans tc(struct vctx *c, struct caps prior, const struct cedar_expr *e)
{
    if (e == NULL || c->oom)
        return fail_t(NULL);
    if (++c->depth > (int)V_MAX_DEPTH) {
        c->depth--;
        v_diag(c, &e->loc, "expression is nested too deeply to validate");
        return fail_t(NULL);
    }
    struct ans a = tc_inner(c, prior, e);
    c->depth--;
    if (c->oom)
        a.ok = false;
    return a;
}

/* ---- policy-level checks -------------------------------------------------------- */

static bool name_known(const struct cedar_schema *s, const char *type)
{
    return cs_is_action_type(type) || cs_find_etype(s, type) >= 0;
}

/* Visit every entity uid literal and `is` type in an expression. */
static void check_expr_names(struct vctx *c, const struct cedar_expr *e, int depth);

static void check_uid(struct vctx *c, const struct cedar_uid *u, const struct cedar_loc *loc)
{
    if (!name_known(c->s, u->type.ptr)) {
        v_diag(c, loc, "unrecognized entity type `%s`", u->type.ptr);
        return;
    }
    if (cs_is_action_type(u->type.ptr)) {
        if (action_index(c, u) < 0)
            v_diag(c, loc, "unrecognized action `%s::\"%.*s\"`", u->type.ptr, (int)u->id.len,
                   u->id.ptr);
        return;
    }
    const struct cs_entity_type *et = etype_of(c, u->type.ptr);
    if (et != NULL && et->is_enum) {
        for (size_t i = 0; i < et->nchoices; i++)
            if (et->choice_lens[i] == u->id.len &&
                memcmp(et->choices[i], u->id.ptr, u->id.len) == 0)
                return;
        v_diag(c, loc, "`%s::\"%.*s\"` is not one of the declared values of enumerated type %s",
               u->type.ptr, (int)u->id.len, u->id.ptr, u->type.ptr);
    }
}

static void check_value_names(struct vctx *c, const struct cedar_value *v,
                              const struct cedar_loc *loc)
{
    if (v->kind == CEDAR_V_ENTITY)
        check_uid(c, v->u.uid, loc);
}

static void check_expr_names(struct vctx *c, const struct cedar_expr *e, int depth)
{
    if (e == NULL || depth > (int)V_MAX_DEPTH)
        return;
    switch (e->kind) {
    case CEDAR_E_LIT: check_value_names(c, &e->u.lit, &e->loc); return;
    case CEDAR_E_VAR:
    case CEDAR_E_SLOT: return;
    case CEDAR_E_GETATTR:
    case CEDAR_E_HAS: check_expr_names(c, e->u.attr.e, depth + 1); return;
    case CEDAR_E_LIKE: check_expr_names(c, e->u.like.e, depth + 1); return;
    case CEDAR_E_IS:
        if (!name_known(c->s, e->u.is.type.ptr))
            v_diag(c, &e->loc, "unrecognized entity type `%s`", e->u.is.type.ptr);
        check_expr_names(c, e->u.is.e, depth + 1);
        check_expr_names(c, e->u.is.in, depth + 1);
        return;
    case CEDAR_E_SET:
    case CEDAR_E_RECORD:
    case CEDAR_E_CALL:
        for (size_t i = 0; i < e->u.list.n; i++)
            check_expr_names(c, e->u.list.args[i], depth + 1);
        return;
    default:
        check_expr_names(c, e->u.op.a, depth + 1);
        check_expr_names(c, e->u.op.b, depth + 1);
        check_expr_names(c, e->u.op.c, depth + 1);
        return;
    }
}

static void check_scope_names(struct vctx *c, const struct cedar_scope *sc)
{
    if (sc->op == CEDAR_SCOPE_IS || sc->op == CEDAR_SCOPE_IS_IN)
        if (!name_known(c->s, sc->type.ptr))
            v_diag(c, &sc->loc, "unrecognized entity type `%s`", sc->type.ptr);
    if (sc->uid != NULL && !sc->is_slot)
        check_uid(c, sc->uid, &sc->loc);
    for (size_t i = 0; i < sc->nlist; i++)
        check_uid(c, sc->list[i], &sc->loc);
}

/* rbac.rs get_entity_types_satisfying_constraint: mark[] over etypes. */
static void scope_types(const struct cedar_schema *s, const struct cedar_scope *sc, bool *mark)
{
    memset(mark, 0, s->n_etypes ? s->n_etypes : 1);
    switch (sc->op) {
    case CEDAR_SCOPE_ANY:
        for (size_t i = 0; i < s->n_etypes; i++)
            mark[i] = true;
        return;
    case CEDAR_SCOPE_EQ:
    case CEDAR_SCOPE_IN: {
        if (sc->is_slot || sc->uid == NULL) {
            for (size_t i = 0; i < s->n_etypes; i++)
                mark[i] = true;
            return;
        }
        long t = cs_find_etype(s, sc->uid->type.ptr);
        if (t < 0)
            return;
        mark[t] = true;
        if (sc->op == CEDAR_SCOPE_IN)
            for (size_t i = 0; i < s->n_etypes; i++)
                if (s->etypes[t].desc[i])
                    mark[i] = true;
        return;
    }
    case CEDAR_SCOPE_IS:
    case CEDAR_SCOPE_IS_IN: {
        long t = cs_find_etype(s, sc->type.ptr);
        if (t < 0)
            return;
        if (sc->op == CEDAR_SCOPE_IS || sc->is_slot || sc->uid == NULL) {
            mark[t] = true;
            return;
        }
        long in = cs_find_etype(s, sc->uid->type.ptr);
        if (in == t || (in >= 0 && s->etypes[in].desc[t]))
            mark[t] = true;
        return;
    }
    default: return;
    }
}

/* rbac.rs validate_action_application */
static void check_action_application(struct vctx *c, const struct cedar_policy *p)
{
    const struct cedar_schema *s = c->s;
    size_t n = s->n_etypes ? s->n_etypes : 1;
    bool *pm = cs_alloc(c->a, n), *rm = cs_alloc(c->a, n);
    bool *am = cs_alloc(c->a, s->n_actions ? s->n_actions : 1);
    if (pm == NULL || rm == NULL || am == NULL) {
        c->oom = true;
        return;
    }
    scope_types(s, &p->principal, pm);
    scope_types(s, &p->resource, rm);
    const struct cedar_scope *as = &p->action;
    switch (as->op) {
    case CEDAR_SCOPE_ANY:
        for (size_t i = 0; i < s->n_actions; i++)
            am[i] = true;
        break;
    case CEDAR_SCOPE_EQ: {
        long ai = as->uid ? action_index(c, as->uid) : -1;
        if (ai >= 0)
            am[ai] = true;
        break;
    }
    case CEDAR_SCOPE_IN:
    case CEDAR_SCOPE_IN_LIST: {
        size_t nl = as->op == CEDAR_SCOPE_IN ? (as->uid != NULL) : as->nlist;
        bool all = true;
        for (size_t k = 0; k < nl && all; k++) {
            const struct cedar_uid *u = as->op == CEDAR_SCOPE_IN ? as->uid : as->list[k];
            if (action_index(c, u) < 0)
                all = false;
        }
        for (size_t k = 0; k < nl && all; k++) {
            const struct cedar_uid *u = as->op == CEDAR_SCOPE_IN ? as->uid : as->list[k];
            long ai = action_index(c, u);
            am[ai] = true;
            for (size_t j = 0; j < s->n_actions; j++)
                if (s->actions[ai].desc[j])
                    am[j] = true;
        }
        break;
    }
    default: break;
    }
    for (size_t i = 0; i < s->n_actions; i++) {
        if (!am[i])
            continue;
        const struct cs_action *ac = &s->actions[i];
        bool mp = false, mr = false;
        for (size_t k = 0; k < ac->nprincipals && !mp; k++)
            mp = pm[ac->principals[k]];
        for (size_t k = 0; k < ac->nresources && !mr; k++)
            mr = rm[ac->resources[k]];
        if (mp && mr)
            return;
    }
    v_diag(c, &p->start,
           "unable to find an applicable action given the policy scope constraints "
           "(invalid action application)");
}

/* ---- condition construction ----------------------------------------------------- */

static struct cedar_expr *mk_expr(struct vctx *c, uint8_t kind, struct cedar_loc loc)
{
    struct cedar_expr *e = cs_alloc(c->a, sizeof(*e));
    if (e == NULL) {
        c->oom = true;
        return NULL;
    }
    e->kind = kind;
    e->loc = loc;
    return e;
}

static struct cedar_expr *mk_bin(struct vctx *c, uint8_t kind, struct cedar_expr *a,
                                 struct cedar_expr *b, struct cedar_loc loc)
{
    struct cedar_expr *e = mk_expr(c, kind, loc);
    if (e != NULL) {
        e->u.op.a = a;
        e->u.op.b = b;
    }
    return e;
}

static struct cedar_expr *mk_uid(struct vctx *c, const struct cedar_uid *u, struct cedar_loc loc)
{
    struct cedar_expr *e = mk_expr(c, CEDAR_E_LIT, loc);
    if (e != NULL) {
        e->u.lit.kind = CEDAR_V_ENTITY;
        e->u.lit.u.uid = u;
    }
    return e;
}

static struct cedar_expr *mk_bool(struct vctx *c, bool v, struct cedar_loc loc)
{
    struct cedar_expr *e = mk_expr(c, CEDAR_E_LIT, loc);
    if (e != NULL) {
        e->u.lit.kind = CEDAR_V_BOOL;
        e->u.lit.u.b = v;
    }
    return e;
}

/* The scope constraint on `var` as an expression (ast::*Constraint::as_expr). */
static struct cedar_expr *scope_expr(struct vctx *c, const struct cedar_scope *sc, uint8_t var)
{
    struct cedar_loc loc = sc->loc;
    struct cedar_expr *v = mk_expr(c, CEDAR_E_VAR, loc);
    if (v == NULL)
        return NULL;
    v->u.var = var;
    struct cedar_expr *rhs = NULL;
    if (sc->op == CEDAR_SCOPE_EQ || sc->op == CEDAR_SCOPE_IN || sc->op == CEDAR_SCOPE_IS_IN) {
        if (sc->is_slot || sc->uid == NULL) {
            rhs = mk_expr(c, CEDAR_E_SLOT, loc);
            if (rhs != NULL)
                rhs->u.slot = sc->slot;
        } else {
            rhs = mk_uid(c, sc->uid, loc);
        }
        if (rhs == NULL)
            return NULL;
    }
    switch (sc->op) {
    case CEDAR_SCOPE_ANY: return mk_bool(c, true, loc);
    case CEDAR_SCOPE_EQ: return mk_bin(c, CEDAR_E_EQ, v, rhs, loc);
    case CEDAR_SCOPE_IN:
        if (var == CEDAR_VAR_ACTION) {
            /* `action in A` is `action in [A]` */
            struct cedar_expr *set = mk_expr(c, CEDAR_E_SET, loc);
            struct cedar_expr **args = cs_alloc(c->a, sizeof(*args));
            if (set == NULL || args == NULL)
                return NULL;
            args[0] = rhs;
            set->u.list.n = 1;
            set->u.list.args = args;
            rhs = set;
        }
        return mk_bin(c, CEDAR_E_IN, v, rhs, loc);
    case CEDAR_SCOPE_IS:
    case CEDAR_SCOPE_IS_IN: {
        struct cedar_expr *e = mk_expr(c, CEDAR_E_IS, loc);
        if (e == NULL)
            return NULL;
        e->u.is.e = v;
        e->u.is.type = sc->type;
        e->u.is.in = rhs;
        return e;
    }
    case CEDAR_SCOPE_IN_LIST: {
        struct cedar_expr *set = mk_expr(c, CEDAR_E_SET, loc);
        struct cedar_expr **args = cs_alloc(c->a, (sc->nlist + 1) * sizeof(*args));
        if (set == NULL || args == NULL)
            return NULL;
        for (size_t i = 0; i < sc->nlist; i++)
            if ((args[i] = mk_uid(c, sc->list[i], loc)) == NULL)
                return NULL;
        set->u.list.n = sc->nlist;
        set->u.list.args = args;
        return mk_bin(c, CEDAR_E_IN, v, set, loc);
    }
    default: return mk_bool(c, true, loc);
    }
}

/* Template::condition(): ((p && a) && r) && (c1 && c2 ...) */
static struct cedar_expr *policy_condition(struct vctx *c, const struct cedar_policy *p)
{
    struct cedar_expr *pe = scope_expr(c, &p->principal, CEDAR_VAR_PRINCIPAL);
    struct cedar_expr *ae = scope_expr(c, &p->action, CEDAR_VAR_ACTION);
    struct cedar_expr *re = scope_expr(c, &p->resource, CEDAR_VAR_RESOURCE);
    if (pe == NULL || ae == NULL || re == NULL)
        return NULL;
    struct cedar_expr *body = NULL;
    for (size_t i = 0; i < p->ncond; i++) {
        struct cedar_expr *ce = p->conds[i].expr;
        if (!p->conds[i].is_when) {
            struct cedar_expr *n = mk_expr(c, CEDAR_E_NOT, p->conds[i].loc);
            if (n == NULL)
                return NULL;
            n->u.op.a = ce;
            ce = n;
        }
        body = body ? mk_bin(c, CEDAR_E_AND, body, ce, p->conds[i].loc) : ce;
        if (body == NULL)
            return NULL;
    }
    if (body == NULL)
        body = mk_bool(c, true, p->start);
    struct cedar_expr *x = mk_bin(c, CEDAR_E_AND, pe, ae, p->start);
    x = x ? mk_bin(c, CEDAR_E_AND, x, re, p->start) : NULL;
    return x ? mk_bin(c, CEDAR_E_AND, x, body, p->start) : NULL;
}

/* Slot link candidates (typecheck.rs possible_slot_links). */
static size_t slot_links(const struct cedar_schema *s, const struct cedar_scope *sc, long var,
                         const char **out)
{
    if (!sc->is_slot) {
        out[0] = NULL;
        return 1;
    }
    size_t n = 0;
    if (sc->op == CEDAR_SCOPE_EQ) {
        out[n++] = s->etypes[var].name;
    } else if (sc->op == CEDAR_SCOPE_IN || sc->op == CEDAR_SCOPE_IS_IN) {
        for (size_t i = 0; i < s->n_etypes; i++)
            if (s->etypes[i].desc[var])
                out[n++] = s->etypes[i].name;
        out[n++] = s->etypes[var].name;
    } else {
        for (size_t i = 0; i < s->n_etypes; i++)
            out[n++] = s->etypes[i].name;
    }
    return n;
}

static bool validate_one(const struct cedar_schema *s, const struct cedar_policy *p, json_t *diags,
                         bool *oom)
{
    struct vctx c = {.s = s, .pol = p, .diags = diags, .A = -1};
    bool valid = true;
    c.a = cs_arena_new();
    if (c.a == NULL) {
        *oom = true;
        return false;
    }
    check_scope_names(&c, &p->principal);
    check_scope_names(&c, &p->action);
    check_scope_names(&c, &p->resource);
    for (size_t i = 0; i < p->ncond; i++)
        check_expr_names(&c, p->conds[i].expr, 0);
    check_action_application(&c, p);
    if (c.nerr > 0)
        valid = false;

    const char **pl = calloc(s->n_etypes + 1, sizeof(char *));
    const char **rl = calloc(s->n_etypes + 1, sizeof(char *));
    if (pl == NULL || rl == NULL) {
        c.oom = true;
        goto done;
    }
    for (size_t ai = 0; ai < s->n_actions && !c.oom; ai++) {
        const struct cs_action *ac = &s->actions[ai];
        for (size_t pi = 0; pi < ac->nprincipals; pi++) {
            for (size_t ri = 0; ri < ac->nresources; ri++) {
                long P = (long)ac->principals[pi], R = (long)ac->resources[ri];
                size_t np = slot_links(s, &p->principal, P, pl);
                size_t nr = slot_links(s, &p->resource, R, rl);
                for (size_t x = 0; x < np; x++) {
                    for (size_t y = 0; y < nr; y++) {
                        struct cs_arena *env = cs_arena_new();
                        if (env == NULL) {
                            c.oom = true;
                            goto done;
                        }
                        struct cs_arena *keep = c.a;
                        c.a = env;
                        c.P = P;
                        c.R = R;
                        c.A = (long)ai;
                        c.pslot = pl[x];
                        c.rslot = rl[y];
                        c.nerr = 0;
                        c.depth = 0;
                        struct cedar_expr *cond = policy_condition(&c, p);
                        struct ans r = cond ? tc(&c, (struct caps){0}, cond) : fail_t(NULL);
                        bool is_false = r.ty != NULL && r.ty->k == VT_FALSE;
                        if (c.nerr > 0 || (!is_false && (!r.ok || r.ty == NULL)))
                            valid = false;
                        c.a = keep;
                        cs_arena_free(env);
                    }
                }
            }
        }
    }
done:
    free(pl);
    free(rl);
    cs_arena_free(c.a);
    if (c.oom)
        *oom = true;
    return valid && !c.oom;
}

int cedar_validate_policies(const struct cedar_schema *s, const struct cedar_policy_set *ps,
                            json_t *diags)
{
    bool valid = true, oom = false;
    if (s == NULL || ps == NULL)
        return NHID_ERR_INVALID;
    for (size_t i = 0; i < ps->ntemplates; i++)
        if (!validate_one(s, ps->templates[i], diags, &oom))
            valid = false;
    for (size_t i = 0; i < ps->npolicies; i++) {
        if (ps->policies[i]->template_of != NULL)
            continue; /* linked: its template was validated */
        if (!validate_one(s, ps->policies[i], diags, &oom))
            valid = false;
    }
    if (oom)
        return NHID_ERR_NOMEM;
    return valid ? NHID_OK : NHID_ERR_INVALID;
}
