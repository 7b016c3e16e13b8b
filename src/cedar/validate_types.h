/*
 * validate_types.h — the validator's type lattice (private to validate*.c).
 *
 * Mirrors cedar-policy's validator `types.rs`: singleton booleans,
 * entity least-upper-bounds, action entities, open/closed records, and
 * the strict-mode subtype / least-upper-bound rules.
 */
#ifndef NHID_CEDAR_VALIDATE_TYPES_H
#define NHID_CEDAR_VALIDATE_TYPES_H

#include "cedar/schema.h"

enum vt_kind {
    VT_NEVER,
    VT_TRUE,
    VT_FALSE,
    VT_BOOL,
    VT_LONG,
    VT_STRING,
    VT_SET,
    VT_RECORD,
    VT_ENTITY,     /* one or more named entity types (ents) */
    VT_ANY_ENTITY, /* any entity */
    VT_ACTION,     /* an action entity of type `name` */
    VT_EXT,
};

struct vt;

struct vt_attr {
    const char *name;
    size_t len;
    const struct vt *type;
    bool required;
};

struct vt {
    enum vt_kind k;
    const struct vt *elem; /* VT_SET; NULL = any set (only as an expectation) */
    const struct vt_attr *attrs; /* VT_RECORD, sorted by bytes */
    size_t nattrs;
    bool open; /* VT_RECORD */
    const char **ents; /* VT_ENTITY, sorted by strcmp, unique */
    size_t nents;
    const char *name;     /* VT_ACTION */
    enum cs_ext_kind ext; /* VT_EXT */
};

#endif /* NHID_CEDAR_VALIDATE_TYPES_H */
