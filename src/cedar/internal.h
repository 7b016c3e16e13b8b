/*
 * cedar/internal.h — helpers shared by the Cedar engine's .c files.
 * Not part of the public API (see cedar.h); the schema validator may use
 * them too.
 */
#ifndef NHID_CEDAR_INTERNAL_H
#define NHID_CEDAR_INTERNAL_H

#include <stdarg.h>

#include "cedar/cedar.h"

/* ---- values ---------------------------------------------------------------- */

/* Hash consistent with cedar_value_equal (equal values hash equal). */
uint64_t cedar_value_hash(const struct cedar_value *v);

/*
 * Build a set from n values (the array is copied): sorted by hash,
 * duplicates removed. *out points into arena.
 */
NHID_MUST_CHECK int cedar_set_build(struct cedar_arena *a, const struct cedar_value *elems,
                                    size_t n, const struct cedar_set **out);
/* true if v is an element of s. */
bool cedar_set_contains(const struct cedar_set *s, const struct cedar_value *v);

/*
 * Build a record from n attributes (copied), sorted by key. A duplicate
 * key is NHID_ERR_EXISTS when dup_error, else the last one wins.
 */
NHID_MUST_CHECK int cedar_record_build(struct cedar_arena *a, const struct cedar_record_attr *attrs,
                                       size_t n, bool dup_error, const struct cedar_record **out);
/* Attribute lookup; NULL when absent. */
const struct cedar_value *cedar_record_get(const struct cedar_record *r, const char *key,
                                           size_t len);
extern const struct cedar_record cedar_empty_record;

int cedar_str_cmp(const struct cedar_str *a, const struct cedar_str *b);
bool cedar_str_eq(const struct cedar_str *a, const struct cedar_str *b);
bool cedar_uid_eq(const struct cedar_uid *a, const struct cedar_uid *b);

/* Type name of a value for messages ("long", "set", "decimal", ...). */
const char *cedar_value_type_name(const struct cedar_value *v);

/* Entity uid in {"type","id"} or {"__entity": {...}} form, copied into arena. */
NHID_MUST_CHECK int cedar_uid_from_json(struct cedar_arena *arena, const json_t *j,
                                        const struct cedar_uid **out, char *err, size_t errlen);

/* json_loadb / json_load_file that accept \u0000 inside keys and strings
 * (see value.c); use these for any JSON turned into Cedar values. */
json_t *cedar_json_loadb(const char *text, size_t len, size_t flags, json_error_t *je);
json_t *cedar_json_load_file(const char *path, size_t flags, json_error_t *je);

/* ---- extension literals (Cedar's extension function semantics) ------------- */

/* Each returns 0 on success or -1 with a message in err. */
int cedar_ip_parse(const char *s, size_t len, struct cedar_ipaddr *out, char *err, size_t errlen);
int cedar_decimal_parse(const char *s, size_t len, int64_t *out, char *err, size_t errlen);
int cedar_datetime_parse(const char *s, size_t len, int64_t *out, char *err, size_t errlen);
int cedar_duration_parse(const char *s, size_t len, int64_t *out, char *err, size_t errlen);

/* ---- strings -------------------------------------------------------------- */

/*
 * Unescape the body of a Cedar string literal (between the quotes):
 * \n \r \t \\ \0 \' \" \xHH (<= 0x7F) \u{H..H}. With `pattern`, `\*` is a
 * literal star and an unescaped `*` a wildcard, and the result goes to
 * *pat; otherwise to *out. On error returns -1, *err_off is the byte
 * offset of the bad escape in raw.
 */
int cedar_unescape(struct cedar_arena *a, const char *raw, size_t len, bool pattern,
                   struct cedar_str *out, struct cedar_pattern **pat, char *err, size_t errlen,
                   size_t *err_off);

/* Validate UTF-8; returns the offset of the first bad byte or len if valid. */
size_t cedar_utf8_check(const char *s, size_t len);

/* Write `s` as a quoted, escaped Cedar string literal into a buffer. */
struct cedar_buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void cedar_buf_put(struct cedar_buf *b, const char *s, size_t n);
void cedar_buf_puts(struct cedar_buf *b, const char *s);
void cedar_buf_printf(struct cedar_buf *b, const char *fmt, ...) NHID_PRINTF(2, 3);
void cedar_buf_quote(struct cedar_buf *b, const char *s, size_t n);
void cedar_buf_free(struct cedar_buf *b);
void cedar_buf_uid(struct cedar_buf *b, const struct cedar_uid *u);
void cedar_buf_value(struct cedar_buf *b, const struct cedar_value *v);

/* ---- evaluation --------------------------------------------------------------- */

/*
 * Evaluate a policy's scope and conditions. Returns 1 if it applies, 0 if
 * not, -1 on an evaluation error (message in err).
 */
int cedar_policy_applies(const struct cedar_policy *p, const struct cedar_entities *es,
                         const struct cedar_request *req, struct cedar_arena *scratch, char *err,
                         size_t errlen);

/* Scope index (index.c): candidate policies for a request, in set order. */
NHID_MUST_CHECK int cedar_index_build(struct cedar_policy_set *ps);
void cedar_index_free(struct cedar_scope_index *ix);
/*
 * Calls fn for every policy that may apply to req (a superset of the
 * policies whose scope matches), in policy-set order. Stops early and
 * returns fn's result if it is negative.
 */
int cedar_index_foreach(const struct cedar_policy_set *ps, const struct cedar_entities *es,
                        const struct cedar_request *req,
                        int (*fn)(const struct cedar_policy *p, void *ctx), void *ctx);

/* Entity-hierarchy test: is `a` equal to or a descendant of `b`? */
bool cedar_entity_in(const struct cedar_entities *es, const struct cedar_uid *a,
                     const struct cedar_uid *b);

#endif /* NHID_CEDAR_INTERNAL_H */
