/*
 * cedar/ast.h — internal AST and value model of the Cedar policy language.
 *
 * Shared by the parser (parse.c), the evaluator (eval.c), the entity
 * loader (entities.c), the CLI and the schema validator (schema*.c,
 * validate*.c). The layout is stable: fields may be added, existing ones
 * keep their meaning.
 *
 * Memory model. Every object graph here is allocated from a
 * `struct cedar_arena` owned by its container (a policy set owns the
 * arena holding its policies and expressions; an entity store owns the
 * arena holding entities and attribute values; the evaluator uses a
 * per-call scratch arena). Nothing in this header is freed piecewise.
 * Values are immutable once built, so a value may point into another
 * container's arena as long as that container outlives it (requests and
 * evaluation results never outlive the policy set and entity store they
 * were evaluated against).
 *
 * Strings are byte ranges (`ptr`, `len`): Cedar strings may hold NUL
 * (the `\0` escape). They are always valid UTF-8 and, for convenience,
 * NUL-terminated in memory as well.
 *
 * Reference: https://docs.cedarpolicy.com/policies/syntax-grammar.html
 */
#ifndef NHID_CEDAR_AST_H
#define NHID_CEDAR_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits on untrusted input ------------------------------------------ */

#define CEDAR_MAX_DEPTH 512            /* parser and evaluator nesting depth */
#define CEDAR_MAX_POLICY_TEXT (64u << 20) /* bytes of policy source */
#define CEDAR_MAX_POLICIES 1000000     /* policies + templates in one set */
#define CEDAR_MAX_STRING (1u << 20)    /* bytes in one string literal */
#define CEDAR_MAX_ENTITIES 10000000    /* entities in one store */
#define CEDAR_MAX_SET_ELEMS 1000000    /* elements in one set / record */

/* ---- arena ------------------------------------------------------------------ */

struct cedar_arena_block;
/* Bump allocator; cedar_arena_alloc returns 16-byte aligned zeroed memory. */
struct cedar_arena {
    struct cedar_arena_block *head;
    size_t total; /* bytes handed out, for limits */
    size_t limit; /* 0 = unlimited; allocation beyond it fails */
};

void cedar_arena_init(struct cedar_arena *a);
/* Zeroed, aligned memory or NULL (out of memory or over the limit). */
void *cedar_arena_alloc(struct cedar_arena *a, size_t n);
/* Copy of [s, s+len) plus a NUL terminator. */
char *cedar_arena_strndup(struct cedar_arena *a, const char *s, size_t len);
/* Release every block except the first (kept for reuse), reset counters. */
void cedar_arena_reset(struct cedar_arena *a);
void cedar_arena_free(struct cedar_arena *a);

/* ---- source positions ----------------------------------------------------- */

/* A position in policy source text: 1-based line and column (columns count
 * bytes), 0-based byte offset. line == 0 means "no position" (for example
 * a node built programmatically). */
struct cedar_loc {
    uint32_t line;
    uint32_t col;
    uint32_t off;
};

/* ---- strings and entity uids ----------------------------------------------- */

struct cedar_str {
    const char *ptr; /* NUL-terminated, may also contain NULs */
    size_t len;
};

/*
 * An entity uid `Type::"id"`. `type` is the fully qualified type name
 * with namespaces joined by "::" (e.g. "A::B::Machine"); it never
 * contains NUL. `id` is any string. `hash` is cedar_uid_hash() of both,
 * computed when the uid is built.
 */
struct cedar_uid {
    struct cedar_str type;
    struct cedar_str id;
    uint64_t hash;
};

/* ---- values ------------------------------------------------------------------ */

enum cedar_value_kind {
    CEDAR_V_BOOL = 0,
    CEDAR_V_LONG,
    CEDAR_V_STRING,
    CEDAR_V_ENTITY,
    CEDAR_V_SET,
    CEDAR_V_RECORD,
    CEDAR_V_EXT, /* extension value, see enum cedar_ext_kind */
};

enum cedar_ext_kind {
    CEDAR_EXT_IPADDR = 0, /* ip("...") */
    CEDAR_EXT_DECIMAL,    /* decimal("...") */
    CEDAR_EXT_DATETIME,   /* datetime("...") */
    CEDAR_EXT_DURATION,   /* duration("...") */
};

/* ipaddr: an address plus prefix length ("10.0.0.1" is 10.0.0.1/32). The
 * address bits are stored as written (not masked), as Cedar does. */
struct cedar_ipaddr {
    bool v6;
    uint8_t prefix; /* 0..32 or 0..128 */
    uint8_t addr[16]; /* v4 uses addr[0..3] */
};

struct cedar_set;
struct cedar_pattern;
struct cedar_record;

/*
 * A Cedar value. Small, copied by value; sets, records, uids and strings
 * point to immutable arena memory.
 *   decimal:  fixed point, value * 10^4 (4 fractional digits), i64 range.
 *   datetime: milliseconds since the Unix epoch (UTC).
 *   duration: milliseconds.
 */
struct cedar_value {
    uint8_t kind;     /* enum cedar_value_kind */
    uint8_t ext_kind; /* enum cedar_ext_kind when kind == CEDAR_V_EXT */
    union {
        bool b;
        int64_t l;
        struct cedar_str s;
        const struct cedar_uid *uid;
        const struct cedar_set *set;
        const struct cedar_record *rec;
        int64_t decimal;  /* CEDAR_EXT_DECIMAL */
        int64_t datetime; /* CEDAR_EXT_DATETIME */
        int64_t duration; /* CEDAR_EXT_DURATION */
        const struct cedar_ipaddr *ip; /* CEDAR_EXT_IPADDR */
    } u;
};

/* A set: elements deduplicated by Cedar equality. Elements are kept
 * sorted by cedar_value_hash() (parallel array `hashes`) so membership is
 * a binary search; the order carries no meaning. */
struct cedar_set {
    size_t n;
    struct cedar_value *elems;
    const uint64_t *hashes;
};

/* A record: attributes sorted by key (bytewise), keys unique. */
struct cedar_record_attr {
    struct cedar_str key;
    struct cedar_value val;
};
struct cedar_record {
    size_t n;
    struct cedar_record_attr *attrs;
};

/* ---- expressions ----------------------------------------------------------- */

enum cedar_expr_kind {
    CEDAR_E_LIT = 0, /* literal: bool, long, string or entity uid (value) */
    CEDAR_E_VAR,     /* principal/action/resource/context (var) */
    CEDAR_E_SLOT,    /* ?principal / ?resource (slot) in a template body */
    /* unary: a */
    CEDAR_E_NOT,
    CEDAR_E_NEG,
    /* binary: a, b */
    CEDAR_E_AND, /* short circuit */
    CEDAR_E_OR,  /* short circuit */
    CEDAR_E_EQ,
    CEDAR_E_NE,
    CEDAR_E_LT,
    CEDAR_E_LE,
    CEDAR_E_GT,
    CEDAR_E_GE,
    CEDAR_E_ADD,
    CEDAR_E_SUB,
    CEDAR_E_MUL,
    CEDAR_E_IN,
    /* if a then b else c */
    CEDAR_E_IF,
    /* a.attr / a["attr"] (attr) */
    CEDAR_E_GETATTR,
    /* a has attr (attr). `a has x.y.z` is desugared by the parser into
     * `a has x && a.x has y && a.x.y has z`. */
    CEDAR_E_HAS,
    /* a like pattern (pattern) */
    CEDAR_E_LIKE,
    /* a is Type (is_type); a is Type in b (is_type, b != NULL) */
    CEDAR_E_IS,
    /* [args...] */
    CEDAR_E_SET,
    /* {keys[i]: args[i], ...} in source order; keys unique */
    CEDAR_E_RECORD,
    /* function or method call: fn, args (method receiver is args[0]) */
    CEDAR_E_CALL,
};

enum cedar_var {
    CEDAR_VAR_PRINCIPAL = 0,
    CEDAR_VAR_ACTION,
    CEDAR_VAR_RESOURCE,
    CEDAR_VAR_CONTEXT,
};

enum cedar_slot {
    CEDAR_SLOT_PRINCIPAL = 0,
    CEDAR_SLOT_RESOURCE = 1,
};

/*
 * Built-in functions. "method" ones are written `recv.name(args)` and get
 * the receiver as args[0]; "function" ones are written `name(args)`.
 * Calling one in the other style, or an unknown name, is a parse error;
 * a wrong argument count is an evaluation error for extension functions
 * (as in the reference implementation) and a parse error for the
 * set/tag methods.
 */
enum cedar_fn {
    /* set methods */
    CEDAR_FN_CONTAINS = 0,  /* set.contains(v) */
    CEDAR_FN_CONTAINS_ALL,  /* set.containsAll(set) */
    CEDAR_FN_CONTAINS_ANY,  /* set.containsAny(set) */
    CEDAR_FN_IS_EMPTY,      /* set.isEmpty() */
    /* entity tags */
    CEDAR_FN_GET_TAG,       /* entity.getTag(string) */
    CEDAR_FN_HAS_TAG,       /* entity.hasTag(string) */
    /* ipaddr extension */
    CEDAR_FN_IP,            /* function ip(string) */
    CEDAR_FN_IS_IPV4,
    CEDAR_FN_IS_IPV6,
    CEDAR_FN_IS_LOOPBACK,
    CEDAR_FN_IS_MULTICAST,
    CEDAR_FN_IS_IN_RANGE,   /* ip.isInRange(ip) */
    /* decimal extension */
    CEDAR_FN_DECIMAL,       /* function decimal(string) */
    CEDAR_FN_LESS_THAN,
    CEDAR_FN_LESS_THAN_OR_EQUAL,
    CEDAR_FN_GREATER_THAN,
    CEDAR_FN_GREATER_THAN_OR_EQUAL,
    /* datetime extension */
    CEDAR_FN_DATETIME,      /* function datetime(string) */
    CEDAR_FN_DURATION,      /* function duration(string) */
    CEDAR_FN_OFFSET,        /* datetime.offset(duration) */
    CEDAR_FN_DURATION_SINCE,/* datetime.durationSince(datetime) */
    CEDAR_FN_TO_DATE,       /* datetime.toDate() */
    CEDAR_FN_TO_TIME,       /* datetime.toTime() -> duration */
    CEDAR_FN_TO_DAYS,       /* duration.toDays() -> long */
    CEDAR_FN_TO_HOURS,
    CEDAR_FN_TO_MINUTES,
    CEDAR_FN_TO_SECONDS,
    CEDAR_FN_TO_MILLISECONDS,
    CEDAR_FN__COUNT
};

/* Static description of a built-in (table in eval.c). */
struct cedar_fn_info {
    const char *name;  /* as written in policies */
    bool is_method;    /* recv.name(...) rather than name(...) */
    uint8_t nargs;     /* argument count including the receiver */
    bool is_extension; /* arity checked at evaluation, not parse */
};
/* Table lookup by id; never NULL for a valid id. */
const struct cedar_fn_info *cedar_fn_info(enum cedar_fn fn);
/* Look a name up; -1 if unknown. */
int cedar_fn_lookup(const char *name, size_t len, bool is_method);

struct cedar_expr {
    uint8_t kind; /* enum cedar_expr_kind */
    struct cedar_loc loc; /* where the expression starts */
    /* Non-NULL when the parser pre-computed this node's constant value
     * (extension constructor calls on valid string literals, set literals
     * of literals). `kind` and the operands stay as written, so tools may
     * ignore this field; the evaluator uses it as a shortcut. */
    const struct cedar_value *folded;
    union {
        struct cedar_value lit; /* CEDAR_E_LIT */
        uint8_t var;            /* CEDAR_E_VAR: enum cedar_var */
        uint8_t slot;           /* CEDAR_E_SLOT: enum cedar_slot */
        struct {                /* unary, binary, CEDAR_E_IF */
            struct cedar_expr *a, *b, *c;
        } op;
        struct {                /* CEDAR_E_GETATTR, CEDAR_E_HAS */
            struct cedar_expr *e;
            struct cedar_str attr;
        } attr;
        struct {                /* CEDAR_E_LIKE */
            struct cedar_expr *e;
            const struct cedar_pattern *pat;
        } like;
        struct {                /* CEDAR_E_IS */
            struct cedar_expr *e;
            struct cedar_str type; /* fully qualified entity type */
            struct cedar_expr *in; /* NULL unless `is T in x` */
        } is;
        struct {                /* CEDAR_E_SET, CEDAR_E_RECORD, CEDAR_E_CALL */
            size_t n;
            struct cedar_expr **args;
            struct cedar_str *keys; /* CEDAR_E_RECORD only */
            uint8_t fn;             /* CEDAR_E_CALL: enum cedar_fn */
        } list;
    } u;
};

/* A `like` pattern: a sequence of literal byte runs and `*` wildcards. */
struct cedar_pattern_elem {
    bool wildcard;        /* true: `*`; false: literal text */
    struct cedar_str lit; /* when !wildcard */
};
struct cedar_pattern {
    size_t n;
    struct cedar_pattern_elem *elems;
};

/* ---- policies ---------------------------------------------------------------- */

enum cedar_effect {
    CEDAR_PERMIT = 0,
    CEDAR_FORBID = 1,
};

/*
 * A scope constraint on principal, action or resource.
 *   ANY      principal
 *   EQ       principal == E        (uid, or slot when is_slot)
 *   IN       principal in E        (uid, or slot when is_slot)
 *   IS       principal is T
 *   IS_IN    principal is T in E   (uid, or slot)
 *   IN_LIST  action in [E1, E2...] (action only; list, nlist)
 */
enum cedar_scope_op {
    CEDAR_SCOPE_ANY = 0,
    CEDAR_SCOPE_EQ,
    CEDAR_SCOPE_IN,
    CEDAR_SCOPE_IS,
    CEDAR_SCOPE_IS_IN,
    CEDAR_SCOPE_IN_LIST,
};

struct cedar_scope {
    uint8_t op;    /* enum cedar_scope_op */
    bool is_slot;  /* EQ/IN/IS_IN refer to ?principal / ?resource */
    uint8_t slot;  /* enum cedar_slot when is_slot */
    const struct cedar_uid *uid; /* EQ/IN/IS_IN when !is_slot (or linked) */
    struct cedar_str type;       /* IS/IS_IN */
    size_t nlist;                /* IN_LIST */
    const struct cedar_uid **list;
    struct cedar_loc loc;        /* of the constraint */
};

/* A `when { e }` (is_when) or `unless { e }` condition. */
struct cedar_cond {
    bool is_when;
    struct cedar_expr *expr;
    struct cedar_loc loc;
};

struct cedar_annotation {
    struct cedar_str key;   /* without '@' */
    struct cedar_str value; /* "" when written without a value: @key */
    struct cedar_loc loc;
};

/*
 * A policy, a template, or a template-linked policy.
 *
 * Ids: an unannotated static policy or template is "policyN" where N is
 * its 0-based position among the policies and templates of its source
 * text (the Cedar CLI convention); `@id("x")` sets the id to "x".
 * A linked policy has its own id and points to its template; its scope
 * has the slots filled in (is_slot false, uid set), so it evaluates like a
 * static policy. Conditions never contain slots (Cedar forbids them).
 */
struct cedar_policy {
    struct cedar_str id;
    uint8_t effect;   /* enum cedar_effect */
    bool is_template; /* scope uses ?principal / ?resource */
    const struct cedar_policy *template_of; /* linked: the template, else NULL */
    struct cedar_scope principal, action, resource;
    size_t ncond;
    struct cedar_cond *conds;
    size_t nannot;
    struct cedar_annotation *annots;
    /* Source span [start, end) of the whole policy, and its file name. */
    struct cedar_loc start, end;
    const char *filename;
    size_t index; /* position in the set (static and linked, file order) */
};

struct cedar_scope_index; /* private to index.c */

/*
 * A parsed policy set. `policies` holds the policies that are evaluated
 * (static and template-linked) in order; `templates` holds templates,
 * which are never evaluated directly. Immutable after parsing/linking
 * (cedar_policy_set_prepare builds the scope index), so any number of
 * threads may evaluate against it concurrently.
 */
struct cedar_policy_set {
    size_t npolicies, cap_policies;
    struct cedar_policy **policies;
    size_t ntemplates, cap_templates;
    struct cedar_policy **templates;
    const char *source;   /* source text (owned copy), for diagnostics */
    size_t source_len;
    const char *filename; /* owned copy, "<input>" when none given */
    struct cedar_scope_index *index; /* NULL until prepared */
    struct cedar_arena arena;
};

/* ---- entities ---------------------------------------------------------------- */

/*
 * An entity: uid, attributes, tags, direct parents and (after
 * cedar_entities_finalize) its transitive ancestors, sorted by hash then
 * uid for binary search.
 */
struct cedar_entity {
    struct cedar_uid uid;
    const struct cedar_record *attrs; /* never NULL (may be empty) */
    const struct cedar_record *tags;  /* never NULL (may be empty) */
    size_t nparents;
    const struct cedar_uid **parents;
    size_t nancestors;
    const struct cedar_uid **ancestors;
};

/* Entity store: open-addressing hash table keyed by uid. */
struct cedar_entities {
    size_t n, cap;             /* cap is a power of two */
    struct cedar_entity **slots;
    bool finalized;            /* ancestors computed */
    /* After a failed cedar_entities_finalize: an entity on a parent cycle
     * (Cedar requires the hierarchy to be acyclic). */
    const struct cedar_uid *cycle_at;
    struct cedar_arena arena;
};

/* ---- requests and answers ------------------------------------------------------ */

struct cedar_request {
    struct cedar_uid principal, action, resource;
    struct cedar_value context; /* a CEDAR_V_RECORD */
};

/* One policy that errored during evaluation. */
struct cedar_eval_error {
    const struct cedar_policy *policy;
    char message[160];
};

#endif /* NHID_CEDAR_AST_H */
