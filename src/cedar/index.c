/*
 * cedar/index.c — scope index: policies are filed under one uid from their
 * scope (principal `==`/`in` uid, else resource `==`/`in` uid, else each
 * action of `action ==`/`in`), or in an "always" list. A request looks up
 * its principal, resource and action and their ancestors, so policies
 * about other principals/resources/actions are never touched. The index
 * only selects candidates; the full scope is re-checked on each.
 */
#include <stdlib.h>
#include <string.h>

#include "cedar/internal.h"

struct ix_entry {
    uint64_t hash;
    const struct cedar_uid *uid;
    uint32_t policy; /* index into ps->policies */
};

struct ix_map {
    size_t n;
    struct ix_entry *v; /* sorted by hash */
};

struct cedar_scope_index {
    struct ix_map principal, resource, action;
    size_t nalways;
    uint32_t *always;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct ix_entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->policy < y->policy ? -1 : x->policy > y->policy;
}

void cedar_index_free(struct cedar_scope_index *ix)
{
    if (ix == NULL)
        return;
    free(ix->principal.v);
    free(ix->resource.v);
    free(ix->action.v);
    free(ix->always);
    free(ix);
}

static bool indexable(const struct cedar_scope *sc)
{
    return (sc->op == CEDAR_SCOPE_EQ || sc->op == CEDAR_SCOPE_IN || sc->op == CEDAR_SCOPE_IS_IN) &&
           !sc->is_slot && sc->uid != NULL;
}

int cedar_index_build(struct cedar_policy_set *ps)
{
    int rc = NHID_OK;
    struct cedar_scope_index *ix = calloc(1, sizeof(*ix));
    NHID_CHECK_ALLOC(ix);
    size_t n = ps->npolicies;
    /* upper bounds */
    size_t nact = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cedar_policy *p = ps->policies[i];
        if (!indexable(&p->principal) && !indexable(&p->resource))
            nact += p->action.op == CEDAR_SCOPE_IN_LIST ? p->action.nlist : 1;
    }
    ix->principal.v = calloc(n ? n : 1, sizeof(struct ix_entry));
    ix->resource.v = calloc(n ? n : 1, sizeof(struct ix_entry));
    ix->action.v = calloc(nact ? nact : 1, sizeof(struct ix_entry));
    ix->always = calloc(n ? n : 1, sizeof(uint32_t));
    if (!ix->principal.v || !ix->resource.v || !ix->action.v || !ix->always)
        NHID_FAIL(NHID_ERR_NOMEM);
    for (size_t i = 0; i < n; i++) {
        const struct cedar_policy *p = ps->policies[i];
        uint32_t pi = (uint32_t)i;
        if (indexable(&p->principal)) {
            ix->principal.v[ix->principal.n++] =
                (struct ix_entry){p->principal.uid->hash, p->principal.uid, pi};
        } else if (indexable(&p->resource)) {
            ix->resource.v[ix->resource.n++] =
                (struct ix_entry){p->resource.uid->hash, p->resource.uid, pi};
        } else if (p->action.op == CEDAR_SCOPE_EQ || p->action.op == CEDAR_SCOPE_IN) {
            ix->action.v[ix->action.n++] = (struct ix_entry){p->action.uid->hash, p->action.uid, pi};
        } else if (p->action.op == CEDAR_SCOPE_IN_LIST) {
            /* an empty list never matches: file nowhere */
            for (size_t k = 0; k < p->action.nlist; k++) {
                bool dup = false;
                for (size_t m = 0; m < k; m++)
                    dup |= cedar_uid_eq(p->action.list[m], p->action.list[k]);
                if (!dup)
                    ix->action.v[ix->action.n++] =
                        (struct ix_entry){p->action.list[k]->hash, p->action.list[k], pi};
            }
        } else {
            ix->always[ix->nalways++] = pi;
        }
    }
    qsort(ix->principal.v, ix->principal.n, sizeof(struct ix_entry), entry_cmp);
    qsort(ix->resource.v, ix->resource.n, sizeof(struct ix_entry), entry_cmp);
    qsort(ix->action.v, ix->action.n, sizeof(struct ix_entry), entry_cmp);
    ps->index = ix;
    ix = NULL;
out:
    cedar_index_free(ix);
    return rc;
}

struct cand {
    uint32_t *v;
    size_t n, cap;
    uint32_t stackbuf[128];
};

static int cand_push(struct cand *c, uint32_t x)
{
    if (c->n == c->cap) {
        size_t nc = c->cap * 2;
        uint32_t *nv = malloc(nc * sizeof(*nv));
        if (nv == NULL)
            return NHID_ERR_NOMEM;
        memcpy(nv, c->v, c->n * sizeof(*nv));
        if (c->v != c->stackbuf)
            free(c->v);
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n++] = x;
    return NHID_OK;
}

static int lookup_uid(const struct ix_map *m, const struct cedar_uid *u, struct cand *c)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].hash < u->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < m->n && m->v[i].hash == u->hash; i++) {
        if (cedar_uid_eq(m->v[i].uid, u)) {
            int rc = cand_push(c, m->v[i].policy);
            if (rc < 0)
                return rc;
        }
    }
    return NHID_OK;
}

/* the uid and its ancestors */
static int lookup_with_ancestors(const struct ix_map *m, const struct cedar_entities *es,
                                 const struct cedar_uid *u, struct cand *c)
{
    if (m->n == 0)
        return NHID_OK;
    int rc = lookup_uid(m, u, c);
    if (rc < 0)
        return rc;
    const struct cedar_entity *e = es ? cedar_entities_get(es, u) : NULL;
    if (e == NULL)
        return NHID_OK;
    for (size_t i = 0; i < e->nancestors; i++)
        if ((rc = lookup_uid(m, e->ancestors[i], c)) < 0)
            return rc;
    return NHID_OK;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int cedar_index_foreach(const struct cedar_policy_set *ps, const struct cedar_entities *es,
                        const struct cedar_request *req,
                        int (*fn)(const struct cedar_policy *p, void *ctx), void *ctx)
{
    const struct cedar_scope_index *ix = ps->index;
    if (ix == NULL) {
        for (size_t i = 0; i < ps->npolicies; i++) {
            int r = fn(ps->policies[i], ctx);
            if (r < 0)
                return r;
        }
        return NHID_OK;
    }
    int rc = NHID_OK;
    struct cand c;
    c.v = c.stackbuf;
    c.n = 0;
    c.cap = NHID_ARRAY_LEN(c.stackbuf);
    NHID_TRY(lookup_with_ancestors(&ix->principal, es, &req->principal, &c));
    NHID_TRY(lookup_with_ancestors(&ix->resource, es, &req->resource, &c));
    NHID_TRY(lookup_with_ancestors(&ix->action, es, &req->action, &c));
    for (size_t i = 0; i < ix->nalways; i++)
        NHID_TRY(cand_push(&c, ix->always[i]));
    /* policy-set order, without duplicates (an action list may name an
     * action and its ancestor) */
    if (c.n > 1) {
        bool sorted = true;
        for (size_t i = 1; i < c.n && sorted; i++)
            sorted = c.v[i - 1] < c.v[i];
        if (!sorted)
            qsort(c.v, c.n, sizeof(*c.v), u32_cmp);
    }
    for (size_t i = 0; i < c.n; i++) {
        if (i > 0 && c.v[i] == c.v[i - 1])
            continue;
        int r = fn(ps->policies[c.v[i]], ctx);
        if (r < 0)
            NHID_FAIL(r);
    }
out:
    if (c.v != c.stackbuf)
        free(c.v);
    return rc;
}
