/*
 * audit_builder — an audit record assembled field by field.
 *
 * The request pipeline writes one record per request. Building it as a
 * jansson tree costs a few dozen allocations on the event loop, the same
 * again to free it, and a walk of the tree on the audit thread. A builder
 * instead encodes the plain fields as JSON text at once, and keeps only
 * the values that may hold secrets (request and response data, tokens,
 * response auth) by reference, to be HMAC'd with each device's own key
 * when the line is written (audit_serialize.c does both, so the line is
 * byte-for-byte what the equivalent json_t record gives).
 */
#include <stdlib.h>
#include <string.h>

#include "audit/audit_internal.h"

#define BUILDER_DEPTH_MAX 8
#define BUILDER_REFS_MAX 16

/* A value written per device: a JSON value in a mode, or a secret string. */
struct builder_ref {
    size_t at; /* offset in text where the value goes */
    json_t *value;
    char *secret; /* a copy of a secret string (wiped on free), or NULL */
    size_t secret_len;
    enum audit_mode mode;
    unsigned depth;
};

struct nhid_audit_builder {
    struct audit_out text;
    struct builder_ref refs[BUILDER_REFS_MAX];
    size_t nrefs;
    bool need_comma[BUILDER_DEPTH_MAX];
    unsigned depth; /* open objects */
    int error;      /* first error; the record is refused when submitted */
};

struct nhid_audit_builder *nhid_audit_builder_new(void)
{
    struct nhid_audit_builder *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if (audit_out_reserve(&b->text, 1024) < 0) {
        free(b);
        return NULL;
    }
    b->text.buf[b->text.len++] = '{';
    b->depth = 1;
    return b;
}

void nhid_audit_builder_free(struct nhid_audit_builder *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->nrefs; i++) {
        json_decref(b->refs[i].value);
        nhid_free_secret(b->refs[i].secret, b->refs[i].secret_len);
    }
    free(b->text.buf);
    free(b);
}

static void fail(struct nhid_audit_builder *b, int rc)
{
    if (b->error == NHID_OK)
        b->error = rc;
}

static void append(struct nhid_audit_builder *b, const char *s, size_t n)
{
    int rc = audit_out_reserve(&b->text, n);
    if (rc < 0) {
        fail(b, rc);
        return;
    }
    memcpy(b->text.buf + b->text.len, s, n);
    b->text.len += n;
}

/* `,"key":` (comma unless first in its object). */
static void key(struct nhid_audit_builder *b, const char *k)
{
    if (b->depth == 0) {
        fail(b, NHID_ERR_INTERNAL); /* the record is already closed */
        return;
    }
    if (b->need_comma[b->depth - 1])
        append(b, ",", 1);
    b->need_comma[b->depth - 1] = true;
    int rc = audit_put_string(&b->text, k, strlen(k));
    if (rc < 0)
        fail(b, rc);
    append(b, ":", 1);
}

void nhid_audit_builder_open(struct nhid_audit_builder *b, const char *k)
{
    key(b, k);
    if (b->depth >= BUILDER_DEPTH_MAX) {
        fail(b, NHID_ERR_TOO_LARGE);
        return;
    }
    append(b, "{", 1);
    b->need_comma[b->depth++] = false;
}

void nhid_audit_builder_close(struct nhid_audit_builder *b)
{
    if (b->depth <= 1) {
        fail(b, NHID_ERR_INTERNAL); /* the record object is closed when submitted */
        return;
    }
    b->depth--;
    append(b, "}", 1);
}

void nhid_audit_builder_str(struct nhid_audit_builder *b, const char *k, const char *v)
{
    key(b, k);
    int rc = audit_put_string(&b->text, v ? v : "", v ? strlen(v) : 0);
    if (rc < 0)
        fail(b, rc);
}

void nhid_audit_builder_int(struct nhid_audit_builder *b, const char *k, int64_t v)
{
    key(b, k);
    int rc = audit_put_int(&b->text, v);
    if (rc < 0)
        fail(b, rc);
}

void nhid_audit_builder_bool(struct nhid_audit_builder *b, const char *k, bool v)
{
    key(b, k);
    append(b, v ? "true" : "false", v ? 4 : 5);
}

static struct builder_ref *new_ref(struct nhid_audit_builder *b, const char *k)
{
    key(b, k);
    if (b->nrefs == BUILDER_REFS_MAX) {
        fail(b, NHID_ERR_TOO_LARGE);
        return NULL;
    }
    struct builder_ref *r = &b->refs[b->nrefs++];
    memset(r, 0, sizeof(*r));
    r->at = b->text.len;
    r->depth = b->depth;
    return r;
}

void nhid_audit_builder_json(struct nhid_audit_builder *b, const char *k, json_t *v,
                             enum nhid_audit_hmac hmac)
{
    if (v == NULL) {
        key(b, k);
        append(b, "null", 4);
        return;
    }
    if (hmac == NHID_AUDIT_HMAC_NONE) {
        /* Nothing per device: encode now. */
        key(b, k);
        int rc = audit_put_json(&b->text, v, AUDIT_MODE_PLAIN, b->depth, NULL);
        if (rc < 0)
            fail(b, rc);
        return;
    }
    struct builder_ref *r = new_ref(b, k);
    if (r == NULL)
        return;
    r->value = json_incref(v);
    r->mode = hmac == NHID_AUDIT_HMAC_ALL ? AUDIT_MODE_SECRET : AUDIT_MODE_RESPONSE_AUTH;
}

void nhid_audit_builder_secret_str(struct nhid_audit_builder *b, const char *k, const char *v)
{
    struct builder_ref *r = new_ref(b, k);
    if (r == NULL)
        return;
    r->secret_len = strlen(v);
    r->secret = malloc(r->secret_len + 1);
    if (r->secret == NULL) {
        b->nrefs--;
        fail(b, NHID_ERR_NOMEM);
        return;
    }
    memcpy(r->secret, v, r->secret_len + 1);
}

int audit_builder_serialize(struct audit_out *o, const struct nhid_audit_builder *b,
                            EVP_MAC_CTX *mac)
{
    if (b->error < 0)
        return b->error;
    if (b->depth != 1)
        return NHID_ERR_INTERNAL; /* an object left open */
    size_t start = o->len, from = 0;
    int rc = NHID_OK;
    for (size_t i = 0; i < b->nrefs && rc == NHID_OK; i++) {
        const struct builder_ref *r = &b->refs[i];
        rc = audit_out_reserve(o, r->at - from);
        if (rc < 0)
            break;
        memcpy(o->buf + o->len, b->text.buf + from, r->at - from);
        o->len += r->at - from;
        from = r->at;
        if (r->secret != NULL)
            rc = audit_put_hmac(o, mac, r->secret, r->secret_len);
        else
            rc = audit_put_json(o, r->value, r->mode, r->depth, mac);
    }
    if (rc == NHID_OK)
        rc = audit_out_reserve(o, b->text.len - from + 1);
    if (rc < 0) {
        o->len = start;
        return rc;
    }
    memcpy(o->buf + o->len, b->text.buf + from, b->text.len - from);
    o->len += b->text.len - from;
    o->buf[o->len++] = '}';
    return NHID_OK;
}

bool audit_builder_failed(const struct nhid_audit_builder *b)
{
    return b->error < 0 || b->depth != 1;
}
