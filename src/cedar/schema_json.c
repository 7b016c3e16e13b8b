/*
 * schema_json.c — parser for Cedar's JSON schema syntax
 * (https://docs.cedarpolicy.com/schema/json-schema.html):
 *
 *   { "<namespace>": { "entityTypes": {...}, "actions": {...},
 *                      "commonTypes": {...}, "annotations": {...} } }
 *
 * Type objects: {"type": "String"|"Long"|"Boolean"|"Set"|"Record"|"Entity"|
 * "Extension"|"EntityOrCommon"|<common type name>, ...}. JSON carries no
 * positions after parsing, so semantic errors name the JSON path instead.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cedar/schema.h"

struct jp {
    struct cs_arena *a;
    const char *file;
    char *err;
    size_t errlen;
};

static int jerr(struct jp *j, const char *path, const char *msg)
{
    return cs_errf(j->err, j->errlen, j->file, 1, 1, "%s: %s", path, msg);
}

NHID_MUST_CHECK static int jstr(struct jp *j, json_t *v, const char *path, const char **out)
{
    if (!json_is_string(v))
        return jerr(j, path, "expected a string");
    *out = cs_strndup(j->a, json_string_value(v), json_string_length(v));
    return *out ? NHID_OK : NHID_ERR_NOMEM;
}

static bool known_key(const char *k, const char *const *allowed)
{
    for (; *allowed != NULL; allowed++)
        if (strcmp(k, *allowed) == 0)
            return true;
    return false;
}

NHID_MUST_CHECK static int check_keys(struct jp *j, json_t *obj, const char *path,
                                      const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        (void)v;
        if (!known_key(k, allowed)) {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown field \"%.100s\"", k);
            return jerr(j, path, msg);
        }
    }
    return NHID_OK;
}

NHID_MUST_CHECK static int jtype(struct jp *j, json_t *v, const char *path, int depth,
                                 struct cs_raw_type **out);

NHID_MUST_CHECK static int jrecord_attrs(struct jp *j, json_t *attrs, const char *path,
                                         int depth, struct cs_raw_type *t)
{
    int rc = NHID_OK;
    const char *k;
    json_t *v;
    if (attrs == NULL)
        return NHID_OK;
    if (!json_is_object(attrs))
        return jerr(j, path, "\"attributes\" must be an object");
    size_t n = json_object_size(attrs);
    if (n > CS_MAX_ITEMS)
        return jerr(j, path, "too many attributes");
    t->attrs = cs_alloc(j->a, (n + 1) * sizeof(*t->attrs));
    NHID_CHECK_ALLOC(t->attrs);
    json_object_foreach(attrs, k, v)
    {
        struct cs_raw_attr *at = &t->attrs[t->nattrs++];
        at->name = cs_strdup(j->a, k);
        NHID_CHECK_ALLOC(at->name);
        at->name_len = strlen(k);
        at->required = true;
        if (!json_is_object(v))
            return jerr(j, path, "attribute types must be objects");
        json_t *req = json_object_get(v, "required");
        if (req != NULL) {
            if (!json_is_boolean(req))
                return jerr(j, path, "\"required\" must be a boolean");
            at->required = json_is_true(req);
        }
        NHID_TRY(jtype(j, v, path, depth + 1, &at->type));
    }
out:
    return rc;
}

NHID_MUST_CHECK static int jtype(struct jp *j, json_t *v, const char *path, int depth,
                                 struct cs_raw_type **out)
{
    int rc = NHID_OK;
    static const char *const keys[] = {"type",     "element", "attributes", "additionalAttributes",
                                       "name",     "required", "annotations", NULL};
    if (depth > (int)CS_MAX_DEPTH)
        return jerr(j, path, "types are nested too deeply");
    if (!json_is_object(v))
        return jerr(j, path, "a type must be an object");
    NHID_TRY(check_keys(j, v, path, keys));
    const char *ty = NULL;
    NHID_TRY(jstr(j, json_object_get(v, "type"), path, &ty));
    struct cs_raw_type *t = cs_alloc(j->a, sizeof(*t));
    NHID_CHECK_ALLOC(t);
    t->line = t->col = 1;
    if (strcmp(ty, "String") == 0) {
        t->kind = CSR_STRING;
    } else if (strcmp(ty, "Long") == 0) {
        t->kind = CSR_LONG;
    } else if (strcmp(ty, "Boolean") == 0) {
        t->kind = CSR_BOOL;
    } else if (strcmp(ty, "Set") == 0) {
        t->kind = CSR_SET;
        json_t *el = json_object_get(v, "element");
        if (el == NULL)
            return jerr(j, path, "a Set type needs \"element\"");
        NHID_TRY(jtype(j, el, path, depth + 1, &t->elem));
    } else if (strcmp(ty, "Record") == 0) {
        t->kind = CSR_RECORD;
        json_t *add = json_object_get(v, "additionalAttributes");
        if (add != NULL && json_is_true(add))
            return jerr(j, path, "additionalAttributes: true is not supported");
        NHID_TRY(jrecord_attrs(j, json_object_get(v, "attributes"), path, depth, t));
    } else if (strcmp(ty, "Entity") == 0 || strcmp(ty, "Extension") == 0 ||
               strcmp(ty, "EntityOrCommon") == 0) {
        if (strcmp(ty, "Entity") == 0)
            t->kind = CSR_ENTITY;
        else if (strcmp(ty, "Extension") == 0)
            t->kind = CSR_EXT;
        else
            t->kind = CSR_NAME;
        NHID_TRY(jstr(j, json_object_get(v, "name"), path, &t->name));
    } else {
        t->kind = CSR_NAME; /* common type reference */
        t->name = ty;
    }
    *out = t;
out:
    return rc;
}

NHID_MUST_CHECK static int jnames(struct jp *j, json_t *arr, const char *path,
                                  const char ***out, size_t *n)
{
    int rc = NHID_OK;
    if (arr == NULL || json_is_null(arr)) {
        *n = 0;
        return NHID_OK;
    }
    if (!json_is_array(arr))
        return jerr(j, path, "expected an array of names");
    size_t cnt = json_array_size(arr);
    if (cnt > CS_MAX_ITEMS)
        return jerr(j, path, "too many names");
    *out = cs_alloc(j->a, (cnt + 1) * sizeof(char *));
    NHID_CHECK_ALLOC(*out);
    for (size_t i = 0; i < cnt; i++)
        NHID_TRY(jstr(j, json_array_get(arr, i), path, &(*out)[i]));
    *n = cnt;
out:
    return rc;
}

NHID_MUST_CHECK static int jentity(struct jp *j, const char *name, json_t *v, const char *path,
                                   struct cs_raw_entity *e)
{
    int rc = NHID_OK;
    static const char *const keys[] = {"memberOfTypes", "shape", "tags", "enum", "annotations",
                                       NULL};
    if (!json_is_object(v))
        return jerr(j, path, "an entity type must be an object");
    NHID_TRY(check_keys(j, v, path, keys));
    e->name = cs_strdup(j->a, name);
    NHID_CHECK_ALLOC(e->name);
    e->line = e->col = 1;
    json_t *en = json_object_get(v, "enum");
    if (en != NULL) {
        e->is_enum = true;
        NHID_TRY(jnames(j, en, path, &e->choices, &e->nchoices));
        e->choice_lens = cs_alloc(j->a, (e->nchoices + 1) * sizeof(size_t));
        NHID_CHECK_ALLOC(e->choice_lens);
        for (size_t i = 0; i < e->nchoices; i++)
            e->choice_lens[i] = json_string_length(json_array_get(en, i));
        if (e->nchoices == 0)
            return jerr(j, path, "\"enum\" must list at least one id");
        if (json_object_get(v, "shape") || json_object_get(v, "tags"))
            return jerr(j, path, "an enumerated entity type cannot have a shape or tags");
    }
    NHID_TRY(jnames(j, json_object_get(v, "memberOfTypes"), path, &e->parents, &e->nparents));
    json_t *shape = json_object_get(v, "shape");
    if (shape != NULL)
        NHID_TRY(jtype(j, shape, path, 0, &e->shape));
    json_t *tags = json_object_get(v, "tags");
    if (tags != NULL)
        NHID_TRY(jtype(j, tags, path, 0, &e->tags));
out:
    return rc;
}

NHID_MUST_CHECK static int jaction(struct jp *j, const char *name, json_t *v, const char *path,
                                   struct cs_raw_action *ac)
{
    int rc = NHID_OK;
    static const char *const keys[] = {"memberOf", "appliesTo", "attributes", "annotations",
                                       NULL};
    static const char *const akeys[] = {"principalTypes", "resourceTypes", "context", NULL};
    if (json_is_null(v))
        v = NULL;
    if (v != NULL && !json_is_object(v))
        return jerr(j, path, "an action must be an object");
    ac->id = cs_strdup(j->a, name);
    NHID_CHECK_ALLOC(ac->id);
    ac->id_len = strlen(name);
    ac->line = ac->col = 1;
    if (v == NULL)
        return NHID_OK;
    NHID_TRY(check_keys(j, v, path, keys));
    json_t *mo = json_object_get(v, "memberOf");
    if (mo != NULL && !json_is_null(mo)) {
        if (!json_is_array(mo))
            return jerr(j, path, "\"memberOf\" must be an array");
        size_t n = json_array_size(mo);
        if (n > CS_MAX_ITEMS)
            return jerr(j, path, "too many parents");
        ac->parents = cs_alloc(j->a, (n + 1) * sizeof(*ac->parents));
        NHID_CHECK_ALLOC(ac->parents);
        for (size_t i = 0; i < n; i++) {
            json_t *r = json_array_get(mo, i);
            struct cs_raw_aref *ref = &ac->parents[ac->nparents++];
            ref->line = ref->col = 1;
            if (!json_is_object(r))
                return jerr(j, path, "memberOf entries must be {\"id\": ..., \"type\": ...}");
            NHID_TRY(jstr(j, json_object_get(r, "id"), path, &ref->id));
            ref->id_len = json_string_length(json_object_get(r, "id"));
            json_t *ty = json_object_get(r, "type");
            if (ty != NULL)
                NHID_TRY(jstr(j, ty, path, &ref->type));
        }
    }
    json_t *ap = json_object_get(v, "appliesTo");
    if (ap != NULL && !json_is_null(ap)) {
        if (!json_is_object(ap))
            return jerr(j, path, "\"appliesTo\" must be an object");
        NHID_TRY(check_keys(j, ap, path, akeys));
        ac->has_applies = true;
        NHID_TRY(jnames(j, json_object_get(ap, "principalTypes"), path, &ac->principals,
                        &ac->nprincipals));
        NHID_TRY(jnames(j, json_object_get(ap, "resourceTypes"), path, &ac->resources,
                        &ac->nresources));
        json_t *ctx = json_object_get(ap, "context");
        if (ctx != NULL)
            NHID_TRY(jtype(j, ctx, path, 0, &ac->context));
    }
out:
    return rc;
}

int cs_parse_json(struct cs_arena *a, const char *text, size_t len, const char *file,
                  struct cs_raw_schema *raw, char *err, size_t errlen)
{
    int rc = NHID_OK;
    struct jp j = {.a = a, .file = file, .err = err, .errlen = errlen};
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    char path[512];
    const char *nsname;
    json_t *nsv;
    static const char *const nskeys[] = {"entityTypes", "actions", "commonTypes", "annotations",
                                         NULL};

    if (root == NULL)
        return cs_errf(err, errlen, file, je.line > 0 ? je.line : 1,
                       je.column > 0 ? je.column : 1, "invalid JSON: %s", je.text);
    if (!json_is_object(root))
        NHID_FAIL(jerr(&j, "$", "a JSON schema must be an object of namespaces"));
    json_object_foreach(root, nsname, nsv)
    {
        snprintf(path, sizeof(path), "namespace \"%.200s\"", nsname);
        if (!json_is_object(nsv))
            NHID_FAIL(jerr(&j, path, "a namespace must be an object"));
        NHID_TRY(check_keys(&j, nsv, path, nskeys));
        NHID_TRY(cs_vec_grow(a, (void **)&raw->ns, &raw->capns, raw->nns, sizeof(*raw->ns)));
        struct cs_raw_ns *ns = &raw->ns[raw->nns++];
        memset(ns, 0, sizeof(*ns));
        ns->name = cs_strdup(a, nsname);
        NHID_CHECK_ALLOC(ns->name);
        ns->line = ns->col = 1;
        const char *k;
        json_t *v;
        json_t *ets = json_object_get(nsv, "entityTypes");
        json_t *acts = json_object_get(nsv, "actions");
        json_t *cts = json_object_get(nsv, "commonTypes");
        if ((ets && !json_is_object(ets)) || (acts && !json_is_object(acts)) ||
            (cts && !json_is_object(cts)))
            NHID_FAIL(jerr(&j, path, "entityTypes, actions and commonTypes must be objects"));
        if (json_object_size(ets) + json_object_size(acts) + json_object_size(cts) >
            CS_MAX_ITEMS)
            NHID_FAIL(jerr(&j, path, "too many declarations"));
        ns->entities = cs_alloc(a, (json_object_size(ets) + 1) * sizeof(*ns->entities));
        ns->actions = cs_alloc(a, (json_object_size(acts) + 1) * sizeof(*ns->actions));
        ns->commons = cs_alloc(a, (json_object_size(cts) + 1) * sizeof(*ns->commons));
        NHID_CHECK_ALLOC(ns->entities);
        NHID_CHECK_ALLOC(ns->actions);
        NHID_CHECK_ALLOC(ns->commons);
        json_object_foreach(ets, k, v)
        {
            snprintf(path, sizeof(path), "entity type \"%.200s\" in namespace \"%.200s\"", k,
                     nsname);
            NHID_TRY(jentity(&j, k, v, path, &ns->entities[ns->nentities++]));
        }
        json_object_foreach(acts, k, v)
        {
            snprintf(path, sizeof(path), "action \"%.200s\" in namespace \"%.200s\"", k, nsname);
            NHID_TRY(jaction(&j, k, v, path, &ns->actions[ns->nactions++]));
        }
        json_object_foreach(cts, k, v)
        {
            snprintf(path, sizeof(path), "common type \"%.200s\" in namespace \"%.200s\"", k,
                     nsname);
            struct cs_raw_common *c = &ns->commons[ns->ncommons++];
            c->name = cs_strdup(a, k);
            NHID_CHECK_ALLOC(c->name);
            c->line = c->col = 1;
            NHID_TRY(jtype(&j, v, path, 0, &c->type));
        }
    }
out:
    json_decref(root);
    return rc;
}
