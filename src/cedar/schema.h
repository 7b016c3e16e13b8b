/*
 * schema.h — internal model of a Cedar schema, shared by the schema
 * parsers (schema_human.c, schema_json.c, schema_build.c) and the policy
 * validator (validate*.c). Not a public header: callers use cedar.h.
 *
 * The model mirrors Cedar's `ValidatorSchema`: common types are inlined,
 * every entity type / action name is fully qualified ("NS::Name"), the
 * entity and action hierarchies are transitively closed (`desc`).
 *
 * See docs/policy-schema.md for the design and the limits enforced.
 */
#ifndef NHID_CEDAR_SCHEMA_H
#define NHID_CEDAR_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include "cedar/cedar.h"
#include "core/core.h"

/* Limits on untrusted schema input (named maxima, see STYLE.md). */
#define CS_MAX_INPUT (8u * 1024u * 1024u) /* bytes of schema text */
#define CS_MAX_DEPTH 64u                  /* nesting of types/records */
#define CS_MAX_ITEMS 100000u              /* declarations, attributes, names */

/* ---- arena ---------------------------------------------------------------- */

/* Every schema object lives in one arena freed with the schema. */
struct cs_arena;
struct cs_arena *cs_arena_new(void);
void cs_arena_free(struct cs_arena *a);
/* Zeroed allocation; NULL on OOM. */
void *cs_alloc(struct cs_arena *a, size_t n);
/* Copy of n bytes plus a NUL; NULL on OOM. */
char *cs_strndup(struct cs_arena *a, const char *s, size_t n);
char *cs_strdup(struct cs_arena *a, const char *s);
/* "a" + "::" + "b" (or just b when a is NULL/empty). */
char *cs_join(struct cs_arena *a, const char *ns, const char *name);

/* ---- resolved types -------------------------------------------------------- */

enum cs_kind {
    CS_BOOL,
    CS_LONG,
    CS_STRING,
    CS_SET,
    CS_RECORD,
    CS_ENTITY,
    CS_EXT,
};

enum cs_ext_kind {
    CS_EXT_IPADDR,
    CS_EXT_DECIMAL,
    CS_EXT_DATETIME,
    CS_EXT_DURATION,
};

struct cs_type;

struct cs_attr {
    const char *name;
    size_t name_len; /* names may contain NUL */
    const struct cs_type *type;
    bool required;
};

struct cs_type {
    enum cs_kind kind;
    const struct cs_type *elem;  /* CS_SET */
    const struct cs_attr *attrs; /* CS_RECORD, sorted by strcmp(name) */
    size_t nattrs;
    const char *entity;          /* CS_ENTITY: fully-qualified type name */
    enum cs_ext_kind ext;        /* CS_EXT */
};

struct cs_entity_type {
    const char *name; /* fully qualified */
    bool is_enum;
    const char **choices; /* enum entity ids */
    const size_t *choice_lens;
    size_t nchoices;
    const struct cs_type *shape; /* always a CS_RECORD (maybe empty) */
    const struct cs_type *tags;  /* NULL when the type has no tags */
    const size_t *parents;       /* indexes into schema->etypes */
    size_t nparents;
    bool *desc; /* desc[j]: etypes[j] may be a (transitive) member of this */
    int line, col;
};

struct cs_action {
    const char *type; /* fully-qualified action entity type, "NS::Action" */
    const char *id;
    size_t id_len; /* ids may contain NUL */
    const size_t *parents; /* indexes into schema->actions */
    size_t nparents;
    bool has_applies;
    const size_t *principals; /* indexes into schema->etypes */
    size_t nprincipals;
    const size_t *resources;
    size_t nresources;
    const struct cs_type *context; /* always a CS_RECORD */
    bool *desc; /* desc[j]: actions[j] is a (transitive) member of this */
    int line, col;
};

struct cedar_schema {
    struct cs_arena *arena;
    struct cs_entity_type *etypes;
    size_t n_etypes;
    struct cs_action *actions;
    size_t n_actions;
};

/* Index of entity type `name` (fully qualified), or -1. */
long cs_find_etype(const struct cedar_schema *s, const char *name);
/* Index of action `type`::"id", or -1. */
long cs_find_action(const struct cedar_schema *s, const char *type, const char *id,
                    size_t idlen);
/* Attribute `name` of a record type, or NULL. */
const struct cs_attr *cs_record_get(const struct cs_type *rec, const char *name, size_t len);
/* Bytewise order of two counted strings (shorter first on a tie). */
int cs_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* true if the basename of a (qualified) type name is "Action". */
bool cs_is_action_type(const char *name);
/* Print a type in schema syntax into buf (truncates). */
void cs_type_format(const struct cs_type *t, char *buf, size_t len);

/* ---- raw (unresolved) model produced by both syntaxes ---------------------- */

enum cs_raw_kind {
    CSR_NAME,   /* common-or-entity reference, resolved later */
    CSR_ENTITY, /* JSON {"type":"Entity","name":..} */
    CSR_EXT,    /* JSON {"type":"Extension","name":..} */
    CSR_SET,
    CSR_RECORD,
    CSR_BOOL,
    CSR_LONG,
    CSR_STRING,
};

struct cs_raw_attr;

struct cs_raw_type {
    enum cs_raw_kind kind;
    const char *name;               /* CSR_NAME/ENTITY/EXT */
    struct cs_raw_type *elem;       /* CSR_SET */
    struct cs_raw_attr *attrs;      /* CSR_RECORD */
    size_t nattrs;
    int line, col;
};

struct cs_raw_attr {
    const char *name;
    size_t name_len;
    struct cs_raw_type *type;
    bool required;
    int line, col;
};

struct cs_raw_entity {
    const char *name; /* basename */
    const char **parents;
    size_t nparents;
    struct cs_raw_type *shape; /* NULL = empty record */
    struct cs_raw_type *tags;  /* NULL = no tags */
    bool is_enum;
    const char **choices;
    size_t *choice_lens;
    size_t nchoices;
    int line, col;
};

struct cs_raw_aref {
    const char *type; /* NULL: the Action type of the declaring namespace */
    const char *id;
    size_t id_len;
    int line, col;
};

struct cs_raw_action {
    const char *id;
    size_t id_len;
    struct cs_raw_aref *parents;
    size_t nparents;
    bool has_applies;
    const char **principals;
    size_t nprincipals;
    const char **resources;
    size_t nresources;
    struct cs_raw_type *context; /* NULL = empty record */
    int line, col;
};

struct cs_raw_common {
    const char *name; /* basename */
    struct cs_raw_type *type;
    int line, col;
};

struct cs_raw_ns {
    const char *name; /* "" for the empty namespace */
    struct cs_raw_entity *entities;
    size_t nentities, capentities;
    struct cs_raw_action *actions;
    size_t nactions, capactions;
    struct cs_raw_common *commons;
    size_t ncommons, capcommons;
    int line, col;
};

struct cs_raw_schema {
    struct cs_raw_ns *ns;
    size_t nns, capns;
};

/* Grow an arena-backed vector so one more element fits. */
NHID_MUST_CHECK int cs_vec_grow(struct cs_arena *a, void **vec, size_t *cap, size_t n,
                                size_t elem);

/* Parse the human-readable .cedarschema syntax into raw. */
NHID_MUST_CHECK int cs_parse_human(struct cs_arena *a, const char *text, size_t len,
                                   const char *file, struct cs_raw_schema *raw, char *err,
                                   size_t errlen);
/* Parse the JSON schema syntax into raw. */
NHID_MUST_CHECK int cs_parse_json(struct cs_arena *a, const char *text, size_t len,
                                  const char *file, struct cs_raw_schema *raw, char *err,
                                  size_t errlen);
/* Resolve names, inline common types, close hierarchies. */
NHID_MUST_CHECK int cs_build(struct cs_arena *a, const struct cs_raw_schema *raw,
                             const char *file, struct cedar_schema *out, char *err,
                             size_t errlen);

/* Write "file:line:col: message" into err. Always returns NHID_ERR_INVALID. */
int cs_errf(char *err, size_t errlen, const char *file, int line, int col, const char *fmt, ...)
    NHID_PRINTF(6, 7);

#endif /* NHID_CEDAR_SCHEMA_H */
