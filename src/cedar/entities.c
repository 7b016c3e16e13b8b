/*
 * cedar/entities.c — the entity store: Cedar's JSON entity format
 * (https://docs.cedarpolicy.com/auth/entities-syntax.html), a uid hash
 * table, and transitive ancestor sets computed once at finalize time so
 * that `in` is a binary search during evaluation. Cycles in the parent
 * graph terminate (visited set per entity).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cedar/internal.h"

int cedar_entities_new(struct cedar_entities **out)
{
    struct cedar_entities *es = calloc(1, sizeof(*es));
    if (es == NULL)
        return NHID_ERR_NOMEM;
    cedar_arena_init(&es->arena);
    es->cap = 64;
    es->slots = calloc(es->cap, sizeof(*es->slots));
    if (es->slots == NULL) {
        free(es);
        return NHID_ERR_NOMEM;
    }
    *out = es;
    return NHID_OK;
}

void cedar_entities_free(struct cedar_entities *es)
{
    if (es == NULL)
        return;
    free(es->slots);
    cedar_arena_free(&es->arena);
    free(es);
}

const struct cedar_entity *cedar_entities_get(const struct cedar_entities *es,
                                              const struct cedar_uid *uid)
{
    if (es == NULL || es->n == 0)
        return NULL;
    size_t mask = es->cap - 1;
    for (size_t i = uid->hash & mask;; i = (i + 1) & mask) {
        const struct cedar_entity *e = es->slots[i];
        if (e == NULL)
            return NULL;
        if (cedar_uid_eq(&e->uid, uid))
            return e;
    }
}

static int grow(struct cedar_entities *es)
{
    size_t nc = es->cap * 2;
    struct cedar_entity **ns = calloc(nc, sizeof(*ns));
    if (ns == NULL)
        return NHID_ERR_NOMEM;
    for (size_t i = 0; i < es->cap; i++) {
        struct cedar_entity *e = es->slots[i];
        if (e == NULL)
            continue;
        size_t j = e->uid.hash & (nc - 1);
        while (ns[j] != NULL)
            j = (j + 1) & (nc - 1);
        ns[j] = e;
    }
    free(es->slots);
    es->slots = ns;
    es->cap = nc;
    return NHID_OK;
}

static int insert(struct cedar_entities *es, struct cedar_entity *e)
{
    if (es->n >= CEDAR_MAX_ENTITIES)
        return NHID_ERR_TOO_LARGE;
    if ((es->n + 1) * 4 > es->cap * 3) {
        int rc = grow(es);
        if (rc < 0)
            return rc;
    }
    size_t mask = es->cap - 1;
    size_t i = e->uid.hash & mask;
    while (es->slots[i] != NULL) {
        if (cedar_uid_eq(&es->slots[i]->uid, &e->uid))
            return NHID_ERR_EXISTS;
        i = (i + 1) & mask;
    }
    es->slots[i] = e;
    es->n++;
    es->finalized = false;
    return NHID_OK;
}

static int copy_uid(struct cedar_arena *a, const struct cedar_uid *src, struct cedar_uid *dst)
{
    dst->type.ptr = cedar_arena_strndup(a, src->type.ptr, src->type.len);
    dst->id.ptr = cedar_arena_strndup(a, src->id.ptr, src->id.len);
    if (dst->type.ptr == NULL || dst->id.ptr == NULL)
        return NHID_ERR_NOMEM;
    dst->type.len = src->type.len;
    dst->id.len = src->id.len;
    dst->hash = cedar_uid_hash(dst->type.ptr, dst->type.len, dst->id.ptr, dst->id.len);
    return NHID_OK;
}

int cedar_entities_add_native(struct cedar_entities *es, const struct cedar_uid *uid,
                              const struct cedar_record *attrs, const struct cedar_record *tags,
                              const struct cedar_uid *parents, size_t nparents)
{
    int rc = NHID_OK;
    struct cedar_entity *e = cedar_arena_alloc(&es->arena, sizeof(*e));
    NHID_CHECK_ALLOC(e);
    NHID_TRY(copy_uid(&es->arena, uid, &e->uid));
    e->attrs = attrs ? attrs : &cedar_empty_record;
    e->tags = tags ? tags : &cedar_empty_record;
    e->nparents = nparents;
    e->parents = cedar_arena_alloc(&es->arena, (nparents ? nparents : 1) * sizeof(*e->parents));
    NHID_CHECK_ALLOC(e->parents);
    for (size_t i = 0; i < nparents; i++) {
        struct cedar_uid *p = cedar_arena_alloc(&es->arena, sizeof(*p));
        NHID_CHECK_ALLOC(p);
        NHID_TRY(copy_uid(&es->arena, &parents[i], p));
        e->parents[i] = p;
    }
    NHID_TRY(insert(es, e));
out:
    return rc;
}

int cedar_entities_string_record(struct cedar_entities *es, const char *const *keys,
                                 const char *const *values, size_t n,
                                 const struct cedar_record **out)
{
    struct cedar_record_attr attrs[16];
    if (n > NHID_ARRAY_LEN(attrs))
        return NHID_ERR_TOO_LARGE;
    for (size_t i = 0; i < n; i++) {
        size_t klen = strlen(keys[i]), vlen = strlen(values[i]);
        attrs[i].key.ptr = cedar_arena_strndup(&es->arena, keys[i], klen);
        attrs[i].key.len = klen;
        attrs[i].val = (struct cedar_value){.kind = CEDAR_V_STRING};
        attrs[i].val.u.s.ptr = cedar_arena_strndup(&es->arena, values[i], vlen);
        attrs[i].val.u.s.len = vlen;
        if (attrs[i].key.ptr == NULL || attrs[i].val.u.s.ptr == NULL)
            return NHID_ERR_NOMEM;
    }
    return cedar_record_build(&es->arena, attrs, n, true, out);
}

static int record_from_json(struct cedar_arena *a, const json_t *obj, const char *what,
                            const struct cedar_record **out, char *err, size_t errlen)
{
    if (obj == NULL || json_is_null(obj)) {
        *out = &cedar_empty_record;
        return NHID_OK;
    }
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "\"%s\" must be a JSON object", what);
        return NHID_ERR_INVALID;
    }
    struct cedar_value v;
    int rc = cedar_value_from_json(a, obj, &v, err, errlen);
    if (rc < 0)
        return rc;
    if (v.kind != CEDAR_V_RECORD) {
        snprintf(err, errlen, "\"%s\" must be a record, not an escape", what);
        return NHID_ERR_INVALID;
    }
    *out = v.u.rec;
    return NHID_OK;
}

int cedar_entities_add(struct cedar_entities *es, const struct cedar_uid *uid, const json_t *attrs,
                       const json_t *tags, const struct cedar_uid *parents, size_t nparents,
                       char *err, size_t errlen)
{
    const struct cedar_record *ra, *rt;
    int rc = record_from_json(&es->arena, attrs, "attrs", &ra, err, errlen);
    if (rc < 0)
        return rc;
    rc = record_from_json(&es->arena, tags, "tags", &rt, err, errlen);
    if (rc < 0)
        return rc;
    rc = cedar_entities_add_native(es, uid, ra, rt, parents, nparents);
    if (rc == NHID_ERR_EXISTS)
        snprintf(err, errlen, "duplicate entity %.*s::\"%.*s\"", (int)uid->type.len, uid->type.ptr,
                 (int)(uid->id.len > 60 ? 60 : uid->id.len), uid->id.ptr);
    else if (rc < 0 && rc != NHID_ERR_INVALID)
        snprintf(err, errlen, "%s", nhid_strerror(rc));
    return rc;
}

/* ---- ancestors ------------------------------------------------------------------- */

struct uidset {
    const struct cedar_uid **slots;
    size_t cap, n;
};

static int uidset_add(struct uidset *s, const struct cedar_uid *u, bool *added)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 32;
        const struct cedar_uid **ns = calloc(nc, sizeof(*ns));
        if (ns == NULL)
            return NHID_ERR_NOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slots[i] == NULL)
                continue;
            size_t j = s->slots[i]->hash & (nc - 1);
            while (ns[j] != NULL)
                j = (j + 1) & (nc - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = nc;
    }
    size_t j = u->hash & (s->cap - 1);
    while (s->slots[j] != NULL) {
        if (cedar_uid_eq(s->slots[j], u)) {
            *added = false;
            return NHID_OK;
        }
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = u;
    s->n++;
    *added = true;
    return NHID_OK;
}

static int uid_ptr_cmp(const void *a, const void *b)
{
    const struct cedar_uid *x = *(const struct cedar_uid *const *)a;
    const struct cedar_uid *y = *(const struct cedar_uid *const *)b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    int c = cedar_str_cmp(&x->type, &y->type);
    return c ? c : cedar_str_cmp(&x->id, &y->id);
}

int cedar_entities_finalize(struct cedar_entities *es)
{
    int rc = NHID_OK;
    struct uidset set = {0};
    const struct cedar_uid **stack = NULL;
    size_t scap = 0;
    bool *done = NULL;
    if (es->finalized)
        return NHID_OK;
    /* done[] is indexed by slot; entities are visited in slot order */
    done = calloc(es->cap, sizeof(*done));
    NHID_CHECK_ALLOC(done);
    for (size_t si = 0; si < es->cap; si++) {
        struct cedar_entity *e = es->slots[si];
        if (e == NULL)
            continue;
        if (set.cap)
            memset(set.slots, 0, set.cap * sizeof(*set.slots));
        set.n = 0;
        size_t sp = 0;
        for (size_t i = 0; i < e->nparents; i++) {
            if (sp == scap) {
                scap = scap ? scap * 2 : 64;
                const struct cedar_uid **ns = realloc(stack, scap * sizeof(*ns));
                NHID_CHECK_ALLOC(ns);
                stack = ns;
            }
            stack[sp++] = e->parents[i];
        }
        while (sp > 0) {
            const struct cedar_uid *u = stack[--sp];
            bool added;
            NHID_TRY(uidset_add(&set, u, &added));
            if (!added)
                continue;
            const struct cedar_entity *pe = cedar_entities_get(es, u);
            if (pe == NULL)
                continue;
            /* find its slot to know whether its ancestors are complete */
            size_t mask = es->cap - 1, j = pe->uid.hash & mask;
            while (es->slots[j] != pe)
                j = (j + 1) & mask;
            if (done[j]) {
                for (size_t k = 0; k < pe->nancestors; k++)
                    NHID_TRY(uidset_add(&set, pe->ancestors[k], &added));
                continue;
            }
            for (size_t k = 0; k < pe->nparents; k++) {
                if (sp == scap) {
                    scap = scap ? scap * 2 : 64;
                    const struct cedar_uid **ns = realloc(stack, scap * sizeof(*ns));
                    NHID_CHECK_ALLOC(ns);
                    stack = ns;
                }
                stack[sp++] = pe->parents[k];
            }
        }
        e->nancestors = set.n;
        e->ancestors = cedar_arena_alloc(&es->arena, (set.n ? set.n : 1) * sizeof(*e->ancestors));
        NHID_CHECK_ALLOC(e->ancestors);
        size_t k = 0;
        for (size_t i = 0; i < set.cap; i++)
            if (set.slots[i] != NULL)
                e->ancestors[k++] = set.slots[i];
        if (k > 1)
            qsort(e->ancestors, k, sizeof(*e->ancestors), uid_ptr_cmp);
        done[si] = true;
        /* an entity that is its own ancestor sits on a cycle; Cedar
         * rejects such entity data (the hierarchy must be a DAG) */
        bool self = false;
        for (size_t m = 0; m < k && !self; m++)
            self = cedar_uid_eq(e->ancestors[m], &e->uid);
        if (self) {
            es->cycle_at = &e->uid;
            NHID_FAIL(NHID_ERR_INVALID);
        }
    }
    es->finalized = true;
out:
    free(done);
    free(stack);
    free(set.slots);
    return rc;
}

/* ---- JSON ----------------------------------------------------------------------- */

int cedar_entities_add_json(struct cedar_entities *es, const json_t *arr, char *err, size_t errlen)
{
    int rc = NHID_OK;
    struct cedar_uid *parents = NULL;
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "entities must be a JSON array");
        return NHID_ERR_INVALID;
    }
    if (json_array_size(arr) + es->n > CEDAR_MAX_ENTITIES) {
        snprintf(err, errlen, "more than %d entities", CEDAR_MAX_ENTITIES);
        return NHID_ERR_TOO_LARGE;
    }
    size_t idx;
    json_t *ej;
    json_array_foreach(arr, idx, ej)
    {
        char e2[200];
        const struct cedar_uid *uid;
        if (!json_is_object(ej)) {
            snprintf(err, errlen, "entity #%zu: must be a JSON object", idx);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        const char *k;
        json_t *v;
        json_object_foreach(ej, k, v)
        {
            if (strcmp(k, "uid") && strcmp(k, "attrs") && strcmp(k, "parents") &&
                strcmp(k, "tags")) {
                snprintf(err, errlen, "entity #%zu: unexpected field \"%.40s\"", idx, k);
                NHID_FAIL(NHID_ERR_INVALID);
            }
        }
        rc = cedar_uid_from_json(&es->arena, json_object_get(ej, "uid"), &uid, e2, sizeof(e2));
        if (rc < 0) {
            snprintf(err, errlen, "entity #%zu: uid: %s", idx, e2);
            goto out;
        }
        json_t *pj = json_object_get(ej, "parents");
        size_t np = 0;
        if (pj != NULL && !json_is_array(pj)) {
            snprintf(err, errlen, "entity #%zu: \"parents\" must be an array", idx);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        np = pj ? json_array_size(pj) : 0;
        free(parents);
        parents = np ? calloc(np, sizeof(*parents)) : NULL;
        if (np)
            NHID_CHECK_ALLOC(parents);
        for (size_t i = 0; i < np; i++) {
            const struct cedar_uid *pu;
            rc = cedar_uid_from_json(&es->arena, json_array_get(pj, i), &pu, e2, sizeof(e2));
            if (rc < 0) {
                snprintf(err, errlen, "entity #%zu: parent %zu: %s", idx, i, e2);
                goto out;
            }
            parents[i] = *pu;
        }
        rc = cedar_entities_add(es, uid, json_object_get(ej, "attrs"), json_object_get(ej, "tags"),
                                parents, np, e2, sizeof(e2));
        if (rc < 0) {
            snprintf(err, errlen, "entity #%zu: %s", idx, e2);
            goto out;
        }
    }
out:
    if (rc == NHID_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    free(parents);
    return rc;
}

int cedar_entities_from_json(const json_t *arr, struct cedar_entities **out, char *err,
                             size_t errlen)
{
    int rc = NHID_OK;
    struct cedar_entities *es = NULL;
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "entities must be a JSON array");
        return NHID_ERR_INVALID;
    }
    NHID_TRY(cedar_entities_new(&es));
    rc = cedar_entities_add_json(es, arr, err, errlen);
    if (rc < 0) {
        cedar_entities_free(es);
        return rc;
    }
    rc = cedar_entities_finalize(es);
    if (rc == NHID_ERR_INVALID && es->cycle_at != NULL) {
        snprintf(err, errlen, "entity hierarchy has a cycle containing %.*s::\"%.*s\"",
                 (int)es->cycle_at->type.len, es->cycle_at->type.ptr,
                 (int)(es->cycle_at->id.len > 60 ? 60 : es->cycle_at->id.len),
                 es->cycle_at->id.ptr);
        goto out;
    }
    NHID_TRY(rc);
    *out = es;
    es = NULL;
out:
    if (rc == NHID_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    cedar_entities_free(es);
    return rc;
}

int cedar_entities_from_json_text(const char *text, size_t len, struct cedar_entities **out,
                                  char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = cedar_json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        snprintf(err, errlen, "%d:%d: %s", je.line, je.column, je.text);
        return NHID_ERR_INVALID;
    }
    int rc = cedar_entities_from_json(j, out, err, errlen);
    json_decref(j);
    return rc;
}
