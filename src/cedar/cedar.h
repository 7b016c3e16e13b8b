/*
 * cedar — the Cedar policy language (https://docs.cedarpolicy.com):
 * parser, evaluator, entity store, schema validator and the
 * `nhid policy` CLI. See docs/policy-language.md.
 *
 * Thread safety: a prepared struct cedar_policy_set and a finalized
 * struct cedar_entities are immutable; any number of threads may call
 * cedar_authorize() on them concurrently, each with its own
 * struct cedar_decision.
 */
#ifndef NHID_CEDAR_H
#define NHID_CEDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cedar/ast.h"
#include "core/core.h"

/* Entry point for `nhid policy check|eval|test ...` (argv[0] == "policy"). */
int nhid_policy_cli_main(int argc, char **argv);

/* ---- policy sets -------------------------------------------------------------- */

/*
 * Parse Cedar policy text (policies and templates) into a new prepared
 * policy set. `filename` is used in messages (NULL: "<input>"). On a
 * syntax error returns NHID_ERR_INVALID and writes
 * "file:line:col: message" into err; *out untouched. Caller frees with
 * cedar_policy_set_free().
 */
NHID_MUST_CHECK int cedar_policy_set_parse(const char *text, size_t len, const char *filename,
                                           struct cedar_policy_set **out, char *err, size_t errlen);

/*
 * Parse and append more policies to a set (ids continue the policyN
 * numbering of this text from 0; a duplicate id is an error). Re-prepares
 * the index. Not thread-safe against concurrent evaluation.
 */
NHID_MUST_CHECK int cedar_policy_set_add_text(struct cedar_policy_set *ps, const char *text,
                                              size_t len, const char *filename, char *err,
                                              size_t errlen);

/*
 * Link template `template_id` with slot values into a new policy
 * `new_id`. principal/resource may be NULL when the template lacks that
 * slot. Re-prepares the index.
 */
NHID_MUST_CHECK int cedar_policy_set_link(struct cedar_policy_set *ps, const char *template_id,
                                          const char *new_id, const struct cedar_uid *principal,
                                          const struct cedar_uid *resource, char *err,
                                          size_t errlen);

/* Find a policy (static or linked) or template by id; NULL if absent. */
const struct cedar_policy *cedar_policy_set_find(const struct cedar_policy_set *ps, const char *id);

/* Build the scope index (done by parse/add/link; idempotent). */
NHID_MUST_CHECK int cedar_policy_set_prepare(struct cedar_policy_set *ps);

void cedar_policy_set_free(struct cedar_policy_set *ps);

/* Convert a policy to human-readable text for messages: "file:line:col". */
void cedar_policy_describe(const struct cedar_policy *p, char *out, size_t outlen);

/* ---- entity uids and values ------------------------------------------------------ */

uint64_t cedar_uid_hash(const char *type, size_t tlen, const char *id, size_t idlen);

/*
 * Parse an entity uid written as in policies: `Type::"id"`,
 * `NS::Type::"id"` (with string escapes). Strings are copied into arena.
 */
NHID_MUST_CHECK int cedar_uid_parse(struct cedar_arena *arena, const char *text, size_t len,
                                    struct cedar_uid *out, char *err, size_t errlen);

/* Build a uid from type and id (copied into arena). */
NHID_MUST_CHECK int cedar_uid_make(struct cedar_arena *arena, const char *type, const char *id,
                                   struct cedar_uid *out);

/* Cedar equality of two values (never an error; different types are unequal). */
bool cedar_value_equal(const struct cedar_value *a, const struct cedar_value *b);

/*
 * Convert Cedar JSON (the entity/context attribute format: __entity and
 * __extn escapes, plus {"type","id"} only under __entity) to a value in
 * arena. err gets a message naming the problem.
 */
NHID_MUST_CHECK int cedar_value_from_json(struct cedar_arena *arena, const json_t *j,
                                          struct cedar_value *out, char *err, size_t errlen);

/* Convert a value to Cedar JSON (new reference) or NULL on allocation failure. */
json_t *cedar_value_to_json(const struct cedar_value *v);

/* Render a value as Cedar source text into out (truncated to outlen). */
void cedar_value_format(const struct cedar_value *v, char *out, size_t outlen);

/* ---- entities ------------------------------------------------------------------ */

/* New empty store; caller frees with cedar_entities_free(). */
NHID_MUST_CHECK int cedar_entities_new(struct cedar_entities **out);

/*
 * Load entities from Cedar's JSON entity format (an array of
 * {"uid": {"type","id"} | {"__entity": {...}}, "attrs": {...},
 * "parents": [...], "tags": {...}}) into a new store, finalized.
 */
NHID_MUST_CHECK int cedar_entities_from_json(const json_t *arr, struct cedar_entities **out,
                                             char *err, size_t errlen);
/* Add entities in that JSON format to a store (not finalized). */
NHID_MUST_CHECK int cedar_entities_add_json(struct cedar_entities *es, const json_t *arr, char *err,
                                            size_t errlen);
/*
 * A record of n string attributes (keys and values copied into es's
 * arena; keys in any order, unique), for cedar_entities_add_native.
 */
NHID_MUST_CHECK int cedar_entities_string_record(struct cedar_entities *es, const char *const *keys,
                                                 const char *const *values, size_t n,
                                                 const struct cedar_record **out);
NHID_MUST_CHECK int cedar_entities_from_json_text(const char *text, size_t len,
                                                  struct cedar_entities **out, char *err,
                                                  size_t errlen);

/*
 * Add one entity programmatically. attrs/tags are jansson objects in the
 * Cedar JSON value format (may be NULL); parents an array of nparents
 * uids. A duplicate uid is NHID_ERR_EXISTS. Call cedar_entities_finalize
 * before evaluating.
 */
NHID_MUST_CHECK int cedar_entities_add(struct cedar_entities *es, const struct cedar_uid *uid,
                                       const json_t *attrs, const json_t *tags,
                                       const struct cedar_uid *parents, size_t nparents, char *err,
                                       size_t errlen);
/* Same with native values: attrs/tags are records (may be NULL) which must
 * live in es->arena or outlive the store. */
NHID_MUST_CHECK int cedar_entities_add_native(struct cedar_entities *es,
                                              const struct cedar_uid *uid,
                                              const struct cedar_record *attrs,
                                              const struct cedar_record *tags,
                                              const struct cedar_uid *parents, size_t nparents);

/* Compute transitive ancestors. A cycle in the parent graph is rejected
 * with NHID_ERR_INVALID (es->cycle_at names an entity on it), as Cedar
 * requires an acyclic hierarchy; the computation itself always ends. */
NHID_MUST_CHECK int cedar_entities_finalize(struct cedar_entities *es);

/* Lookup; NULL when absent. */
const struct cedar_entity *cedar_entities_get(const struct cedar_entities *es,
                                              const struct cedar_uid *uid);

void cedar_entities_free(struct cedar_entities *es);

/* ---- authorization ------------------------------------------------------------ */

/* Result of cedar_authorize. Reuse one per thread to avoid allocations. */
struct cedar_decision {
    bool allow;
    size_t nreasons, cap_reasons; /* determining policies */
    const struct cedar_policy **reasons;
    size_t nerrors, cap_errors; /* policies whose condition errored */
    struct cedar_eval_error *errors;
    struct cedar_arena scratch; /* evaluation temporaries */
};

void cedar_decision_init(struct cedar_decision *d);
void cedar_decision_free(struct cedar_decision *d);

/*
 * Build a request; context is a JSON object in the Cedar value format (NULL
 * = empty record). Strings/values are allocated in `arena`.
 */
NHID_MUST_CHECK int cedar_request_make(struct cedar_arena *arena, const struct cedar_uid *principal,
                                       const struct cedar_uid *action,
                                       const struct cedar_uid *resource, const json_t *context,
                                       struct cedar_request *out, char *err, size_t errlen);

/*
 * Evaluate a request: forbid overrides permit, default deny. Policies
 * whose condition errors are skipped and recorded in d->errors. reasons
 * and errors are listed in policy-set order. Returns NHID_OK or
 * NHID_ERR_NOMEM.
 */
NHID_MUST_CHECK int cedar_authorize(const struct cedar_policy_set *ps,
                                    const struct cedar_entities *es,
                                    const struct cedar_request *req, struct cedar_decision *d);

/*
 * Evaluate one expression against a request (for tests and tools).
 * On an evaluation error returns NHID_ERR_INVALID and writes the message.
 */
NHID_MUST_CHECK int cedar_eval_expr(const struct cedar_expr *e, const struct cedar_entities *es,
                                    const struct cedar_request *req, struct cedar_arena *scratch,
                                    struct cedar_value *out, char *err, size_t errlen);

/* Parse a single expression (for tests and tools); expression lives in arena. */
NHID_MUST_CHECK int cedar_expr_parse(struct cedar_arena *arena, const char *text, size_t len,
                                     struct cedar_expr **out, char *err, size_t errlen);

/* ---- schema and validation (implemented in schema*.c / validate*.c) ---------- */

struct cedar_schema; /* opaque */

/*
 * Parse a schema in the Cedar schema syntax (json_format false) or the
 * JSON schema format. err: "file:line:col: message". Caller frees with
 * cedar_schema_free(). NHID_ERR_UNSUPPORTED while not implemented.
 */
NHID_MUST_CHECK int cedar_schema_parse(const char *text, size_t len, const char *filename,
                                       bool json_format, struct cedar_schema **out, char *err,
                                       size_t errlen);
void cedar_schema_free(struct cedar_schema *s);

/*
 * Strict validation of every policy (and template) in ps. Appends
 * "file:line:col: message" strings to diags (a json array). Returns
 * NHID_OK if valid, NHID_ERR_INVALID if not, NHID_ERR_UNSUPPORTED while
 * not implemented.
 */
NHID_MUST_CHECK int cedar_validate_policies(const struct cedar_schema *s,
                                            const struct cedar_policy_set *ps, json_t *diags);
/* Request validation (principal/action/resource types, context shape). */
NHID_MUST_CHECK int cedar_validate_request(const struct cedar_schema *s,
                                           const struct cedar_request *req, char *err,
                                           size_t errlen);
/* Entity validation against the schema (attribute types, parents). */
NHID_MUST_CHECK int cedar_validate_entities(const struct cedar_schema *s,
                                            const struct cedar_entities *es, char *err,
                                            size_t errlen);

#endif /* NHID_CEDAR_H */
