/*
 * validate_request.c — request and entity-store validation against a
 * schema (Cedar's RequestSchema::validate_request and entity conformance
 * checks in entities/conformance.rs).
 */
#include <stdio.h>
#include <string.h>

#include "cedar/internal.h"
#include "cedar/schema.h"

/* Does value v conform to schema type t? On failure writes why into why. */
static bool conforms(const struct cedar_schema *s, const struct cedar_value *v,
                     const struct cs_type *t, int depth, char *why, size_t whylen)
{
    char tb[128];
    if (depth > (int)CS_MAX_DEPTH) {
        snprintf(why, whylen, "value is nested too deeply");
        return false;
    }
    switch (t->kind) {
    case CS_BOOL:
        if (v->kind == CEDAR_V_BOOL)
            return true;
        break;
    case CS_LONG:
        if (v->kind == CEDAR_V_LONG)
            return true;
        break;
    case CS_STRING:
        if (v->kind == CEDAR_V_STRING)
            return true;
        break;
    case CS_EXT:
        /* enum cedar_ext_kind and enum cs_ext_kind list the same types in
         * the same order */
        if (v->kind == CEDAR_V_EXT && v->ext_kind == (uint8_t)t->ext)
            return true;
        break;
    case CS_ENTITY:
        if (v->kind == CEDAR_V_ENTITY && strcmp(v->u.uid->type.ptr, t->entity) == 0)
            return true;
        break;
    case CS_SET:
        if (v->kind != CEDAR_V_SET)
            break;
        for (size_t i = 0; i < v->u.set->n; i++)
            if (!conforms(s, &v->u.set->elems[i], t->elem, depth + 1, why, whylen))
                return false;
        return true;
    case CS_RECORD: {
        if (v->kind != CEDAR_V_RECORD)
            break;
        const struct cedar_record *r = v->u.rec;
        for (size_t i = 0; i < r->n; i++) {
            const struct cs_attr *a = cs_record_get(t, r->attrs[i].key.ptr, r->attrs[i].key.len);
            if (a == NULL) {
                snprintf(why, whylen, "attribute `%.*s` is not declared in the schema",
                         (int)(r->attrs[i].key.len > 60 ? 60 : r->attrs[i].key.len),
                         r->attrs[i].key.ptr);
                return false;
            }
            if (!conforms(s, &r->attrs[i].val, a->type, depth + 1, why, whylen))
                return false;
        }
        for (size_t i = 0; i < t->nattrs; i++) {
            if (t->attrs[i].required &&
                cedar_record_get(r, t->attrs[i].name, t->attrs[i].name_len) == NULL) {
                snprintf(why, whylen, "required attribute `%.*s` is missing",
                         (int)(t->attrs[i].name_len > 60 ? 60 : t->attrs[i].name_len),
                         t->attrs[i].name);
                return false;
            }
        }
        return true;
    }
    }
    char vb[96];
    cs_type_format(t, tb, sizeof(tb));
    cedar_value_format(v, vb, sizeof(vb));
    snprintf(why, whylen, "value %s does not have type %s", vb, tb);
    return false;
}

static bool type_listed(const struct cedar_schema *s, const size_t *idx, size_t n,
                        const char *type)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->etypes[idx[i]].name, type) == 0)
            return true;
    return false;
}

int cedar_validate_request(const struct cedar_schema *s, const struct cedar_request *req,
                           char *err, size_t errlen)
{
    char why[256];
    if (s == NULL || req == NULL)
        return NHID_ERR_INVALID;
    long ai = cs_find_action(s, req->action.type.ptr, req->action.id.ptr, req->action.id.len);
    if (ai < 0) {
        snprintf(err, errlen, "request's action %s::\"%.*s\" is not declared in the schema",
                 req->action.type.ptr, (int)req->action.id.len, req->action.id.ptr);
        return NHID_ERR_INVALID;
    }
    const struct cs_action *ac = &s->actions[ai];
    if (!type_listed(s, ac->principals, ac->nprincipals, req->principal.type.ptr)) {
        snprintf(err, errlen, "principal type %s is not valid for action %s::\"%s\"",
                 req->principal.type.ptr, ac->type, ac->id);
        return NHID_ERR_INVALID;
    }
    if (!type_listed(s, ac->resources, ac->nresources, req->resource.type.ptr)) {
        snprintf(err, errlen, "resource type %s is not valid for action %s::\"%s\"",
                 req->resource.type.ptr, ac->type, ac->id);
        return NHID_ERR_INVALID;
    }
    long pi = cs_find_etype(s, req->principal.type.ptr);
    long ri = cs_find_etype(s, req->resource.type.ptr);
    const struct cs_entity_type *pe = pi >= 0 ? &s->etypes[pi] : NULL;
    const struct cs_entity_type *re = ri >= 0 ? &s->etypes[ri] : NULL;
    for (int k = 0; k < 2; k++) {
        const struct cs_entity_type *et = k ? re : pe;
        const struct cedar_uid *u = k ? &req->resource : &req->principal;
        if (et == NULL || !et->is_enum)
            continue;
        bool found = false;
        for (size_t i = 0; i < et->nchoices && !found; i++)
            found = et->choice_lens[i] == u->id.len &&
                    memcmp(et->choices[i], u->id.ptr, u->id.len) == 0;
        if (!found) {
            snprintf(err, errlen, "%s::\"%.*s\" is not a declared value of enumerated type %s",
                     u->type.ptr, (int)u->id.len, u->id.ptr, et->name);
            return NHID_ERR_INVALID;
        }
    }
    if (!conforms(s, &req->context, ac->context, 0, why, sizeof(why))) {
        snprintf(err, errlen, "context does not conform to the schema for action %s::\"%s\": %s",
                 ac->type, ac->id, why);
        return NHID_ERR_INVALID;
    }
    return NHID_OK;
}

static int check_entity(const struct cedar_schema *s, const struct cedar_entity *e, char *err,
                        size_t errlen)
{
    char why[256];
    const char *type = e->uid.type.ptr;
    if (cs_is_action_type(type)) {
        if (cs_find_action(s, type, e->uid.id.ptr, e->uid.id.len) < 0) {
            snprintf(err, errlen, "entity %s::\"%.*s\": action is not declared in the schema",
                     type, (int)e->uid.id.len, e->uid.id.ptr);
            return NHID_ERR_INVALID;
        }
        return NHID_OK;
    }
    long ti = cs_find_etype(s, type);
    if (ti < 0) {
        snprintf(err, errlen, "entity %s::\"%.*s\": entity type %s is not declared in the schema",
                 type, (int)e->uid.id.len, e->uid.id.ptr, type);
        return NHID_ERR_INVALID;
    }
    const struct cs_entity_type *et = &s->etypes[ti];
    if (et->is_enum) {
        bool found = false;
        for (size_t i = 0; i < et->nchoices && !found; i++)
            found = et->choice_lens[i] == e->uid.id.len &&
                    memcmp(et->choices[i], e->uid.id.ptr, e->uid.id.len) == 0;
        if (!found) {
            snprintf(err, errlen, "entity %s::\"%.*s\": not a declared value of the enumerated type",
                     type, (int)e->uid.id.len, e->uid.id.ptr);
            return NHID_ERR_INVALID;
        }
    }
    struct cedar_value av = {.kind = CEDAR_V_RECORD};
    av.u.rec = e->attrs;
    if (e->attrs != NULL && !conforms(s, &av, et->shape, 0, why, sizeof(why))) {
        snprintf(err, errlen, "entity %s::\"%.*s\": %s", type, (int)e->uid.id.len, e->uid.id.ptr,
                 why);
        return NHID_ERR_INVALID;
    }
    if (e->tags != NULL && e->tags->n > 0) {
        if (et->tags == NULL) {
            snprintf(err, errlen, "entity %s::\"%.*s\": type %s does not allow tags", type,
                     (int)e->uid.id.len, e->uid.id.ptr, type);
            return NHID_ERR_INVALID;
        }
        for (size_t i = 0; i < e->tags->n; i++)
            if (!conforms(s, &e->tags->attrs[i].val, et->tags, 0, why, sizeof(why))) {
                snprintf(err, errlen, "entity %s::\"%.*s\": tag `%.*s`: %s", type,
                         (int)e->uid.id.len, e->uid.id.ptr,
                         (int)(e->tags->attrs[i].key.len > 60 ? 60 : e->tags->attrs[i].key.len),
                         e->tags->attrs[i].key.ptr, why);
                return NHID_ERR_INVALID;
            }
    }
    for (size_t i = 0; i < e->nparents; i++) {
        const char *pt = e->parents[i]->type.ptr;
        bool ok = false;
        for (size_t k = 0; k < et->nparents && !ok; k++)
            ok = strcmp(s->etypes[et->parents[k]].name, pt) == 0;
        if (!ok) {
            snprintf(err, errlen,
                     "entity %s::\"%.*s\": parent of type %s is not allowed by the schema "
                     "(memberOf)",
                     type, (int)e->uid.id.len, e->uid.id.ptr, pt);
            return NHID_ERR_INVALID;
        }
    }
    return NHID_OK;
}

int cedar_validate_entities(const struct cedar_schema *s, const struct cedar_entities *es,
                            char *err, size_t errlen)
{
    if (s == NULL || es == NULL)
        return NHID_ERR_INVALID;
    for (size_t i = 0; i < es->cap; i++) {
        if (es->slots == NULL || es->slots[i] == NULL)
            continue;
        int rc = check_entity(s, es->slots[i], err, errlen);
        if (rc < 0)
            return rc;
    }
    return NHID_OK;
}
