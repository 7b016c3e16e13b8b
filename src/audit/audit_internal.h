/*
 * audit_internal — the byte-level record format shared by the writer
 * (audit.c) and the verifier (audit_verify.c). Private to src/audit/.
 *
 * A line is (docs/audit.md, "Byte-level definition"):
 *
 *     BODY ,"chain":"<64 lower-case hex>"} \n
 *
 * where BODY is the compact JSON object without its closing brace and
 * ends with  "seq":<decimal>,"prev":"<64 lower-case hex>"  (preceded by
 * '{' when the record had no other field, by ',' otherwise), and
 *
 *     chain = SHA-256(BODY || "}")
 */
#ifndef NHID_AUDIT_INTERNAL_H
#define NHID_AUDIT_INTERNAL_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "core/core.h"

#define AUDIT_HEX_LEN 64
#define AUDIT_CHAIN_KEY ",\"chain\":\""
#define AUDIT_CHAIN_KEY_LEN 10
#define AUDIT_PREV_KEY ",\"prev\":\""
#define AUDIT_PREV_KEY_LEN 9
#define AUDIT_SEQ_KEY "\"seq\":"
#define AUDIT_SEQ_KEY_LEN 6
/* ,"chain":"<64 hex>"} — the bytes after BODY, without the newline. */
#define AUDIT_CHAIN_TAIL_LEN (AUDIT_CHAIN_KEY_LEN + AUDIT_HEX_LEN + 2)
/* ,"prev":"<64 hex>" — the last bytes of BODY. */
#define AUDIT_PREV_TAIL_LEN (AUDIT_PREV_KEY_LEN + AUDIT_HEX_LEN + 1)
/* Longest line the writer produces and the verifier reads (records beyond fail). */
#define AUDIT_LINE_MAX ((size_t)64 << 20)
/* A seq has at most 20 decimal digits (UINT64_MAX). */
#define AUDIT_SEQ_DIGITS_MAX 20

extern const char nhid_audit_zero_chain[AUDIT_HEX_LEN + 1];

/* The fields found at the end of one line. Pointers point into the line. */
struct audit_tail {
    uint64_t seq;
    const char *prev_hex;  /* AUDIT_HEX_LEN bytes */
    const char *chain_hex; /* AUDIT_HEX_LEN bytes */
    size_t body_len;       /* bytes before ,"chain":" */
};

/*
 * Find seq, prev and chain by scanning back from the end of one line
 * (len bytes, no newline). No JSON parsing. Returns NULL and fills *t on
 * success, or a static description of what is missing.
 */
const char *audit_tail_parse(const char *line, size_t len, struct audit_tail *t);

/* Strict lower-case hex of 32 bytes; false on any other character. */
bool audit_hex32_decode(const char *hex, uint8_t out[32]);
/* Lower-case hex of 32 bytes, no NUL written. */
void audit_hex32_encode(const uint8_t in[32], char *out);

/* The process-wide SHA-256 implementation (fetched once). NULL on failure. */
const EVP_MD *audit_sha256_md(void);

/*
 * chain = SHA-256(body || "}"), with a caller-owned reusable context.
 * false if OpenSSL fails.
 */
bool audit_chain_hash(EVP_MD_CTX *ctx, const char *body, size_t body_len, uint8_t out[32]);

/* ---- serialization (audit_serialize.c) ---------------------------------- */

#define AUDIT_HMAC_PREFIX "hmac-sha256:"
#define AUDIT_HMAC_PREFIX_LEN 12
#define AUDIT_HMAC_STR_LEN (AUDIT_HMAC_PREFIX_LEN + AUDIT_HEX_LEN)
/* Nesting depth of a record; deeper records fail with NHID_ERR_TOO_LARGE. */
#define AUDIT_DEPTH_MAX 256

/* A growable byte buffer: buf[0..len) is the content. */
struct audit_out {
    char *buf;
    size_t len;
    size_t cap;
};

/* Make room for `more` bytes after len. NHID_ERR_NOMEM / NHID_ERR_TOO_LARGE. */
NHID_MUST_CHECK int audit_out_reserve(struct audit_out *o, size_t more);

/* HMAC-SHA256 context keyed once with a device key; NULL on failure. */
EVP_MAC_CTX *audit_hmac_ctx_new(const uint8_t key[32]);
/* out = "hmac-sha256:<hex>" (AUDIT_HMAC_STR_LEN bytes, no NUL). Not thread-safe per ctx. */
bool audit_hmac_str(EVP_MAC_CTX *ctx, const char *s, size_t len, char out[AUDIT_HMAC_STR_LEN]);

/* Where a value sits relative to the secret-bearing paths of a record. */
enum audit_mode {
    AUDIT_MODE_PLAIN,         /* ordinary data */
    AUDIT_MODE_TOP,           /* the record object itself */
    AUDIT_MODE_REQUEST,       /* .request */
    AUDIT_MODE_RESPONSE,      /* .response */
    AUDIT_MODE_RESPONSE_AUTH, /* .response.auth: client_token and metadata are secret */
    AUDIT_MODE_TOP_AUTH,      /* .auth (the caller's token): metadata is secret */
    AUDIT_MODE_SECRET,        /* under a secret path: every string leaf is HMAC'd */
};

/* JSON text of a string, as jansson writes it (no flags). NHID_ERR_INVALID: bad UTF-8. */
NHID_MUST_CHECK int audit_put_string(struct audit_out *o, const char *s, size_t len);
/* Decimal integer. */
NHID_MUST_CHECK int audit_put_int(struct audit_out *o, int64_t v);
/* "hmac-sha256:<hex>" of s as a JSON string (NHID_ERR_CRYPTO without a ctx). */
NHID_MUST_CHECK int audit_put_hmac(struct audit_out *o, EVP_MAC_CTX *mac, const char *s,
                                   size_t len);
/*
 * A JSON value in mode m (string leaves under secret paths HMAC'd with
 * mac, which may be NULL for AUDIT_MODE_PLAIN). On error o may hold a
 * partial value: callers reset o->len.
 */
NHID_MUST_CHECK int audit_put_json(struct audit_out *o, json_t *v, enum audit_mode m,
                                   unsigned depth, EVP_MAC_CTX *mac);

/* true if an adder failed or an object was left open: the record is refused. */
bool audit_builder_failed(const struct nhid_audit_builder *b);
/* A built record's line (audit_builder.c), as audit_serialize() would write it. */
NHID_MUST_CHECK int audit_builder_serialize(struct audit_out *o, const struct nhid_audit_builder *b,
                                            EVP_MAC_CTX *mac);

/*
 * Append the record (an object) to o as compact JSON, byte-identical to
 * json_dumpb(JSON_COMPACT | JSON_PRESERVE_ORDER) of the record after
 * every string leaf under request.data, request.client_token,
 * response.data, response.auth.client_token, response.auth.metadata and
 * auth.metadata is replaced by
 * audit_hmac_str() and top-level seq/prev/chain are dropped. On error o
 * is unchanged (NHID_ERR_INVALID: malformed UTF-8; NHID_ERR_TOO_LARGE:
 * deeper than AUDIT_DEPTH_MAX; NHID_ERR_NOMEM; NHID_ERR_CRYPTO).
 */
NHID_MUST_CHECK int audit_serialize(struct audit_out *o, json_t *rec, EVP_MAC_CTX *mac);

#endif /* NHID_AUDIT_INTERNAL_H */
