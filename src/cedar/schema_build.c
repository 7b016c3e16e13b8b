/*
 * schema_build.c — turn the raw schema model (both syntaxes) into the
 * resolved `struct cedar_schema`, as cedar-policy's
 * ValidatorSchema::from_schema_fragments does:
 *
 *  - names: a qualified name is absolute; an unqualified name N used in
 *    namespace NS means NS::N if declared there, else N in the empty
 *    namespace, else the builtin (Bool, Long, String, ipaddr, decimal,
 *    datetime, duration — always reachable as __cedar::N);
 *  - common types are inlined (cycles are errors);
 *  - entity shapes and action contexts must be records;
 *  - every referenced entity type / action must be declared;
 *  - RFC 70: a namespaced type may not shadow one of the empty namespace;
 *  - entity and action hierarchies are transitively closed; action
 *    hierarchies must be acyclic.
 */
#include <stdlib.h>
#include <string.h>

#include "cedar/schema.h"

/* Entity types and actions each have an n*n descendant matrix. */
#define CS_MAX_TYPES 4096u

struct common_def {
    const char *fq;
    const struct cs_raw_common *raw;
    const char *ns;
    const struct cs_type *resolved;
    int state; /* 0 todo, 1 resolving, 2 done */
};

struct bctx {
    struct cs_arena *a;
    const struct cs_raw_schema *raw;
    const char *file;
    char *err;
    size_t errlen;
    struct common_def *commons;
    size_t ncommons;
    const char **enames; /* declared entity types, fully qualified */
    size_t nenames;
    const char **atypes; /* action entity types "NS::Action" in use */
    size_t natypes;
};

static const char *const builtin_names[] = {"Bool",   "Long",    "String",  "ipaddr",
                                            "decimal", "datetime", "duration"};

static bool has_dcolon(const char *s)
{
    return strstr(s, "::") != NULL;
}

static long find_common(const struct bctx *b, const char *fq)
{
    for (size_t i = 0; i < b->ncommons; i++)
        if (strcmp(b->commons[i].fq, fq) == 0)
            return (long)i;
    return -1;
}

static long find_ename(const struct bctx *b, const char *fq)
{
    for (size_t i = 0; i < b->nenames; i++)
        if (strcmp(b->enames[i], fq) == 0)
            return (long)i;
    return -1;
}

static bool is_atype(const struct bctx *b, const char *fq)
{
    for (size_t i = 0; i < b->natypes; i++)
        if (strcmp(b->atypes[i], fq) == 0)
            return true;
    return false;
}

static struct cs_type *mk(struct bctx *b, enum cs_kind k)
{
    struct cs_type *t = cs_alloc(b->a, sizeof(*t));
    if (t != NULL)
        t->kind = k;
    return t;
}

/* Resolve builtin `n` (without __cedar::). */
static struct cs_type *builtin(struct bctx *b, const char *n)
{
    struct cs_type *t = NULL;
    if (strcmp(n, "Bool") == 0) {
        t = mk(b, CS_BOOL);
    } else if (strcmp(n, "Long") == 0) {
        t = mk(b, CS_LONG);
    } else if (strcmp(n, "String") == 0) {
        t = mk(b, CS_STRING);
    } else {
        static const enum cs_ext_kind ek[] = {CS_EXT_IPADDR, CS_EXT_DECIMAL, CS_EXT_DATETIME,
                                              CS_EXT_DURATION};
        for (size_t i = 3; i < NHID_ARRAY_LEN(builtin_names); i++) {
            if (strcmp(n, builtin_names[i]) == 0) {
                t = mk(b, CS_EXT);
                if (t != NULL)
                    t->ext = ek[i - 3];
            }
        }
    }
    return t;
}

static bool is_builtin(const char *n)
{
    for (size_t i = 0; i < NHID_ARRAY_LEN(builtin_names); i++)
        if (strcmp(n, builtin_names[i]) == 0)
            return true;
    return false;
}

NHID_MUST_CHECK static int resolve_type(struct bctx *b, const char *ns,
                                        const struct cs_raw_type *r, int depth,
                                        const struct cs_type **out);

NHID_MUST_CHECK static int resolve_common(struct bctx *b, long ci, int line, int col, int depth,
                                          const struct cs_type **out)
{
    struct common_def *c = &b->commons[ci];
    if (c->state == 2) {
        *out = c->resolved;
        return NHID_OK;
    }
    if (c->state == 1)
        return cs_errf(b->err, b->errlen, b->file, line, col,
                       "common type \"%s\" is defined in terms of itself", c->fq);
    c->state = 1;
    int rc = resolve_type(b, c->ns, c->raw->type, depth + 1, &c->resolved);
    if (rc < 0)
        return rc;
    c->state = 2;
    *out = c->resolved;
    return NHID_OK;
}

/* Resolve a reference. entity_only: only entity types qualify (memberOf,
 * appliesTo, JSON "Entity"). Sets *etype_out to the entity name if it
 * resolved to an entity. */
NHID_MUST_CHECK static int resolve_name(struct bctx *b, const char *ns, const char *name,
                                        bool entity_only, int line, int col, int depth,
                                        const struct cs_type **out)
{
    const char *cands[2];
    size_t ncand = 0;
    if (has_dcolon(name) || ns[0] == '\0') {
        cands[ncand++] = name;
    } else {
        cands[ncand] = cs_join(b->a, ns, name);
        if (cands[ncand] == NULL)
            return NHID_ERR_NOMEM;
        ncand++;
        cands[ncand++] = name;
    }
    for (size_t i = 0; i < ncand; i++) {
        if (!entity_only) {
            long ci = find_common(b, cands[i]);
            if (ci >= 0)
                return resolve_common(b, ci, line, col, depth, out);
        }
        if (find_ename(b, cands[i]) >= 0 || is_atype(b, cands[i])) {
            struct cs_type *t = mk(b, CS_ENTITY);
            if (t == NULL)
                return NHID_ERR_NOMEM;
            t->entity = cands[i];
            *out = t;
            return NHID_OK;
        }
    }
    if (!entity_only) {
        const char *bn = NULL;
        if (strncmp(name, "__cedar::", 9) == 0)
            bn = name + 9;
        else if (!has_dcolon(name))
            bn = name;
        if (bn != NULL && is_builtin(bn)) {
            struct cs_type *t = builtin(b, bn);
            if (t == NULL)
                return NHID_ERR_NOMEM;
            *out = t;
            return NHID_OK;
        }
    }
    return cs_errf(b->err, b->errlen, b->file, line, col, "undeclared %s \"%s\"",
                   entity_only ? "entity type" : "type", name);
}

static int attr_cmp(const void *x, const void *y)
{
    const struct cs_attr *a = x, *b = y;
    return cs_bytes_cmp(a->name, a->name_len, b->name, b->name_len);
}

NHID_MUST_CHECK static int resolve_type(struct bctx *b, const char *ns,
                                        const struct cs_raw_type *r, int depth,
                                        const struct cs_type **out)
{
    int rc = NHID_OK;
    struct cs_type *t = NULL;
    if (depth > (int)CS_MAX_DEPTH)
        return cs_errf(b->err, b->errlen, b->file, r->line, r->col,
                       "type definitions are nested too deeply (limit %u)", CS_MAX_DEPTH);
    switch (r->kind) {
    case CSR_NAME: return resolve_name(b, ns, r->name, false, r->line, r->col, depth, out);
    case CSR_ENTITY: return resolve_name(b, ns, r->name, true, r->line, r->col, depth, out);
    case CSR_EXT:
        if (!is_builtin(r->name) || strcmp(r->name, "Bool") == 0 ||
            strcmp(r->name, "Long") == 0 || strcmp(r->name, "String") == 0)
            return cs_errf(b->err, b->errlen, b->file, r->line, r->col,
                           "unknown extension type \"%s\"", r->name);
        t = builtin(b, r->name);
        break;
    case CSR_BOOL: t = mk(b, CS_BOOL); break;
    case CSR_LONG: t = mk(b, CS_LONG); break;
    case CSR_STRING: t = mk(b, CS_STRING); break;
    case CSR_SET: {
        t = mk(b, CS_SET);
        NHID_CHECK_ALLOC(t);
        NHID_TRY(resolve_type(b, ns, r->elem, depth + 1, &t->elem));
        break;
    }
    case CSR_RECORD: {
        t = mk(b, CS_RECORD);
        NHID_CHECK_ALLOC(t);
        struct cs_attr *attrs = cs_alloc(b->a, (r->nattrs ? r->nattrs : 1) * sizeof(*attrs));
        NHID_CHECK_ALLOC(attrs);
        for (size_t i = 0; i < r->nattrs; i++) {
            attrs[i].name = r->attrs[i].name;
            attrs[i].name_len = r->attrs[i].name_len;
            attrs[i].required = r->attrs[i].required;
            NHID_TRY(resolve_type(b, ns, r->attrs[i].type, depth + 1, &attrs[i].type));
        }
        qsort(attrs, r->nattrs, sizeof(*attrs), attr_cmp);
        t->attrs = attrs;
        t->nattrs = r->nattrs;
        break;
    }
    }
    NHID_CHECK_ALLOC(t);
    *out = t;
out:
    return rc;
}

NHID_MUST_CHECK static int resolve_record(struct bctx *b, const char *ns,
                                          const struct cs_raw_type *r, int line, int col,
                                          const char *what, const struct cs_type **out)
{
    if (r == NULL) {
        struct cs_type *t = mk(b, CS_RECORD);
        if (t == NULL)
            return NHID_ERR_NOMEM;
        *out = t;
        return NHID_OK;
    }
    int rc = resolve_type(b, ns, r, 0, out);
    if (rc < 0)
        return rc;
    if ((*out)->kind != CS_RECORD)
        return cs_errf(b->err, b->errlen, b->file, r->line ? r->line : line,
                       r->line ? r->col : col, "%s must be a record type", what);
    return NHID_OK;
}

/* Transitive closure of a child relation given as a parent list per node:
 * desc[i][j] == true when j reaches i through parent edges. */
NHID_MUST_CHECK static int closure(struct cs_arena *a, size_t n,
                                   const size_t *const *parents, const size_t *nparents,
                                   bool **desc_out)
{
    /* children lists */
    size_t *nchild = cs_alloc(a, (n ? n : 1) * sizeof(size_t));
    size_t **child = cs_alloc(a, (n ? n : 1) * sizeof(size_t *));
    size_t *stack = cs_alloc(a, (n ? n : 1) * sizeof(size_t));
    if (nchild == NULL || child == NULL || stack == NULL)
        return NHID_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nparents[i]; k++)
            nchild[parents[i][k]]++;
    for (size_t i = 0; i < n; i++) {
        child[i] = cs_alloc(a, (nchild[i] ? nchild[i] : 1) * sizeof(size_t));
        if (child[i] == NULL)
            return NHID_ERR_NOMEM;
        nchild[i] = 0;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < nparents[i]; k++) {
            size_t p = parents[i][k];
            child[p][nchild[p]++] = i;
        }
    for (size_t i = 0; i < n; i++) {
        bool *d = cs_alloc(a, n ? n : 1);
        if (d == NULL)
            return NHID_ERR_NOMEM;
        size_t sp = 0;
        for (size_t k = 0; k < nchild[i]; k++)
            if (!d[child[i][k]]) {
                d[child[i][k]] = true;
                stack[sp++] = child[i][k];
            }
        while (sp > 0) {
            size_t x = stack[--sp];
            for (size_t k = 0; k < nchild[x]; k++)
                if (!d[child[x][k]]) {
                    d[child[x][k]] = true;
                    stack[sp++] = child[x][k];
                }
        }
        desc_out[i] = d;
    }
    return NHID_OK;
}

int cs_build(struct cs_arena *a, const struct cs_raw_schema *raw, const char *file,
             struct cedar_schema *out, char *err, size_t errlen)
{
    int rc = NHID_OK;
    struct bctx b = {.a = a, .raw = raw, .file = file, .err = err, .errlen = errlen};
    size_t ncommon = 0, nent = 0, nact = 0;

    for (size_t i = 0; i < raw->nns; i++) {
        ncommon += raw->ns[i].ncommons;
        nent += raw->ns[i].nentities;
        nact += raw->ns[i].nactions;
    }
    if (nent > CS_MAX_TYPES || nact > CS_MAX_TYPES)
        return cs_errf(err, errlen, file, 1, 1,
                       "schema declares %zu entity types and %zu actions (limit %u each)", nent,
                       nact, CS_MAX_TYPES);
    b.commons = cs_alloc(a, (ncommon + 1) * sizeof(*b.commons));
    b.enames = cs_alloc(a, (nent + 1) * sizeof(char *));
    b.atypes = cs_alloc(a, (raw->nns + 1) * sizeof(char *));
    out->etypes = cs_alloc(a, (nent + 1) * sizeof(*out->etypes));
    out->actions = cs_alloc(a, (nact + 1) * sizeof(*out->actions));
    NHID_CHECK_ALLOC(b.commons);
    NHID_CHECK_ALLOC(b.enames);
    NHID_CHECK_ALLOC(b.atypes);
    NHID_CHECK_ALLOC(out->etypes);
    NHID_CHECK_ALLOC(out->actions);

    /* 1. collect definitions, reject duplicates */
    for (size_t i = 0; i < raw->nns; i++) {
        const struct cs_raw_ns *ns = &raw->ns[i];
        for (size_t k = 0; k < ns->ncommons; k++) {
            const struct cs_raw_common *c = &ns->commons[k];
            const char *fq = cs_join(a, ns->name, c->name);
            NHID_CHECK_ALLOC(fq);
            if (find_common(&b, fq) >= 0)
                return cs_errf(err, errlen, file, c->line, c->col,
                               "duplicate common type \"%s\"", fq);
            b.commons[b.ncommons++] = (struct common_def){.fq = fq, .raw = c, .ns = ns->name};
        }
        for (size_t k = 0; k < ns->nentities; k++) {
            const struct cs_raw_entity *e = &ns->entities[k];
            const char *fq = cs_join(a, ns->name, e->name);
            NHID_CHECK_ALLOC(fq);
            if (find_ename(&b, fq) >= 0)
                return cs_errf(err, errlen, file, e->line, e->col,
                               "duplicate entity type \"%s\"", fq);
            if (find_common(&b, fq) >= 0)
                return cs_errf(err, errlen, file, e->line, e->col,
                               "\"%s\" is declared both as an entity type and a common type",
                               fq);
            b.enames[b.nenames++] = fq;
        }
        if (ns->nactions > 0) {
            const char *at = cs_join(a, ns->name, "Action");
            NHID_CHECK_ALLOC(at);
            if (!is_atype(&b, at))
                b.atypes[b.natypes++] = at;
        }
    }
    /* RFC 70: a name in a non-empty namespace may not shadow a name
     * declared in the empty namespace. */
    for (size_t i = 0; i < raw->nns; i++) {
        const struct cs_raw_ns *ns = &raw->ns[i];
        if (ns->name[0] == '\0')
            continue;
        for (size_t k = 0; k < ns->nentities + ns->ncommons; k++) {
            bool is_e = k < ns->nentities;
            const char *bn = is_e ? ns->entities[k].name : ns->commons[k - ns->nentities].name;
            int l = is_e ? ns->entities[k].line : ns->commons[k - ns->nentities].line;
            int c = is_e ? ns->entities[k].col : ns->commons[k - ns->nentities].col;
            if (find_ename(&b, bn) >= 0 || find_common(&b, bn) >= 0)
                return cs_errf(err, errlen, file, l, c,
                               "\"%s::%s\" shadows \"%s\" declared in the empty namespace",
                               ns->name, bn, bn);
        }
    }

    /* 2. entity types */
    size_t ei = 0;
    for (size_t i = 0; i < raw->nns; i++) {
        const struct cs_raw_ns *ns = &raw->ns[i];
        for (size_t k = 0; k < ns->nentities; k++, ei++) {
            const struct cs_raw_entity *e = &ns->entities[k];
            struct cs_entity_type *et = &out->etypes[ei];
            et->name = b.enames[ei];
            et->line = e->line;
            et->col = e->col;
            et->is_enum = e->is_enum;
            et->choices = e->choices;
            et->choice_lens = e->choice_lens;
            et->nchoices = e->nchoices;
            NHID_TRY(resolve_record(&b, ns->name, e->shape, e->line, e->col,
                                    "an entity type's shape", &et->shape));
            if (e->tags != NULL)
                NHID_TRY(resolve_type(&b, ns->name, e->tags, 0, &et->tags));
            size_t *parents = cs_alloc(a, (e->nparents + 1) * sizeof(size_t));
            NHID_CHECK_ALLOC(parents);
            for (size_t p = 0; p < e->nparents; p++) {
                const struct cs_type *pt = NULL;
                NHID_TRY(resolve_name(&b, ns->name, e->parents[p], true, e->line, e->col, 0,
                                      &pt));
                long pi = find_ename(&b, pt->entity);
                if (pi < 0)
                    return cs_errf(err, errlen, file, e->line, e->col,
                                   "undeclared entity type \"%s\" in memberOf of \"%s\"",
                                   pt->entity, et->name);
                parents[p] = (size_t)pi;
            }
            et->parents = parents;
            et->nparents = e->nparents;
        }
    }
    out->n_etypes = ei;
    /* every common type must resolve, even if unused */
    for (size_t i = 0; i < b.ncommons; i++) {
        const struct cs_type *t = NULL;
        NHID_TRY(resolve_common(&b, (long)i, b.commons[i].raw->line, b.commons[i].raw->col, 0,
                                &t));
    }

    /* 3. actions */
    size_t ai = 0;
    for (size_t i = 0; i < raw->nns; i++) {
        const struct cs_raw_ns *ns = &raw->ns[i];
        const char *at = ns->nactions ? cs_join(a, ns->name, "Action") : NULL;
        if (ns->nactions)
            NHID_CHECK_ALLOC(at);
        for (size_t k = 0; k < ns->nactions; k++, ai++) {
            const struct cs_raw_action *r = &ns->actions[k];
            struct cs_action *ac = &out->actions[ai];
            ac->type = at;
            ac->id = r->id;
            ac->id_len = r->id_len;
            ac->line = r->line;
            ac->col = r->col;
            for (size_t j = 0; j < ai; j++)
                if (strcmp(out->actions[j].type, at) == 0 && out->actions[j].id_len == r->id_len &&
                    memcmp(out->actions[j].id, r->id, r->id_len) == 0)
                    return cs_errf(err, errlen, file, r->line, r->col,
                                   "duplicate action %s::\"%s\"", at, r->id);
            ac->has_applies = r->has_applies;
            size_t *pr = cs_alloc(a, (r->nprincipals + 1) * sizeof(size_t));
            size_t *rs = cs_alloc(a, (r->nresources + 1) * sizeof(size_t));
            NHID_CHECK_ALLOC(pr);
            NHID_CHECK_ALLOC(rs);
            for (size_t j = 0; j < r->nprincipals + r->nresources; j++) {
                bool isp = j < r->nprincipals;
                const char *n = isp ? r->principals[j] : r->resources[j - r->nprincipals];
                const struct cs_type *pt = NULL;
                NHID_TRY(resolve_name(&b, ns->name, n, true, r->line, r->col, 0, &pt));
                long pi = find_ename(&b, pt->entity);
                if (pi < 0)
                    return cs_errf(err, errlen, file, r->line, r->col,
                                   "undeclared entity type \"%s\" in appliesTo of action \"%s\"",
                                   pt->entity, r->id);
                if (isp)
                    pr[ac->nprincipals++] = (size_t)pi;
                else
                    rs[ac->nresources++] = (size_t)pi;
            }
            ac->principals = pr;
            ac->resources = rs;
            NHID_TRY(resolve_record(&b, ns->name, r->context, r->line, r->col,
                                    "an action's context", &ac->context));
        }
    }
    out->n_actions = ai;
    ai = 0;
    for (size_t i = 0; i < raw->nns; i++) {
        const struct cs_raw_ns *ns = &raw->ns[i];
        for (size_t k = 0; k < ns->nactions; k++, ai++) {
            const struct cs_raw_action *r = &ns->actions[k];
            size_t *parents = cs_alloc(a, (r->nparents + 1) * sizeof(size_t));
            NHID_CHECK_ALLOC(parents);
            for (size_t p = 0; p < r->nparents; p++) {
                const struct cs_raw_aref *ref = &r->parents[p];
                long idx = -1;
                if (ref->type == NULL) {
                    idx = cs_find_action(out, out->actions[ai].type, ref->id, ref->id_len);
                } else {
                    if (!has_dcolon(ref->type) && ns->name[0] != '\0') {
                        const char *q = cs_join(a, ns->name, ref->type);
                        NHID_CHECK_ALLOC(q);
                        idx = cs_find_action(out, q, ref->id, ref->id_len);
                    }
                    if (idx < 0)
                        idx = cs_find_action(out, ref->type, ref->id, ref->id_len);
                }
                if (idx < 0)
                    return cs_errf(err, errlen, file, ref->line, ref->col,
                                   "undeclared action %s::\"%s\" in memberOf of \"%s\"",
                                   ref->type ? ref->type : out->actions[ai].type, ref->id,
                                   r->id);
                parents[p] = (size_t)idx;
            }
            out->actions[ai].parents = parents;
            out->actions[ai].nparents = r->nparents;
        }
    }

    /* 4. transitive closures */
    {
        size_t n = out->n_etypes;
        const size_t **par = cs_alloc(a, (n + 1) * sizeof(size_t *));
        size_t *np = cs_alloc(a, (n + 1) * sizeof(size_t));
        bool **desc = cs_alloc(a, (n + 1) * sizeof(bool *));
        NHID_CHECK_ALLOC(par);
        NHID_CHECK_ALLOC(np);
        NHID_CHECK_ALLOC(desc);
        for (size_t i = 0; i < n; i++) {
            par[i] = out->etypes[i].parents;
            np[i] = out->etypes[i].nparents;
        }
        NHID_TRY(closure(a, n, par, np, desc));
        for (size_t i = 0; i < n; i++)
            out->etypes[i].desc = desc[i];
    }
    {
        size_t n = out->n_actions;
        const size_t **par = cs_alloc(a, (n + 1) * sizeof(size_t *));
        size_t *np = cs_alloc(a, (n + 1) * sizeof(size_t));
        bool **desc = cs_alloc(a, (n + 1) * sizeof(bool *));
        NHID_CHECK_ALLOC(par);
        NHID_CHECK_ALLOC(np);
        NHID_CHECK_ALLOC(desc);
        for (size_t i = 0; i < n; i++) {
            par[i] = out->actions[i].parents;
            np[i] = out->actions[i].nparents;
        }
        NHID_TRY(closure(a, n, par, np, desc));
        for (size_t i = 0; i < n; i++) {
            out->actions[i].desc = desc[i];
            if (desc[i][i])
                return cs_errf(err, errlen, file, out->actions[i].line, out->actions[i].col,
                               "action %s::\"%s\" is a member of itself (cycle in the action "
                               "hierarchy)",
                               out->actions[i].type, out->actions[i].id);
        }
    }
out:
    return rc;
}
