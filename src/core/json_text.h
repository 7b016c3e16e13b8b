/*
 * json_text — a growing text buffer and a compact JSON writer.
 *
 * nhid_text_json() writes exactly what jansson's json_dumpb(v, ...,
 * JSON_COMPACT | JSON_ENCODE_ANY) writes (RFC 8259: members in insertion
 * order, strings escaped as jansson does), in one pass and without
 * jansson's per-container cycle bookkeeping, which formats each
 * container's address with snprintf and hashes it: for the small records
 * nhid stores and returns that bookkeeping cost more than the output.
 * Nesting deeper than NHID_TEXT_JSON_DEPTH (jansson's own parse limit)
 * fails rather than recursing further.
 *
 * The buffer grows by copy-and-wipe (never realloc), so it may hold
 * secrets: release it with nhid_text_free_secret() when it did.
 */
#ifndef NHID_CORE_JSON_TEXT_H
#define NHID_CORE_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define NHID_TEXT_JSON_DEPTH 2048

struct nhid_text {
    char *buf;
    size_t len, cap;
    bool failed; /* an allocation failed or a value could not be written: discard */
};

/* Append n bytes; a json_dump_callback_t (arg is the struct nhid_text). 0 or -1. */
int nhid_text_add(const char *s, size_t n, void *arg);
/* Append a C string as is. */
void nhid_text_lit(struct nhid_text *t, const char *s);
/* Append s (len bytes, valid UTF-8) as a quoted JSON string. */
void nhid_text_json_string(struct nhid_text *t, const char *s, size_t len);
/* Append v as compact JSON (NULL: "null"). */
void nhid_text_json(struct nhid_text *t, const json_t *v);
/* Free the buffer (after wiping it). */
void nhid_text_free(struct nhid_text *t);
void nhid_text_free_secret(struct nhid_text *t);

#endif
