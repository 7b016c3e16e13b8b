/*
 * audit_serialize — a record to its line JSON, HMAC'ing secrets on the fly.
 *
 * The output is byte-for-byte what jansson's
 *     json_dumpb(transformed, ..., JSON_COMPACT | JSON_PRESERVE_ORDER)
 * produces for the record after the HMAC transform (docs/audit.md), but
 * it is written straight into the device buffer without building the
 * transformed copy: no deep copy, no allocation per node, and none of
 * jansson's per-container cycle bookkeeping (which made json_dumpb cost
 * ~4.6 us for a 320-byte record). Reals are formatted by jansson itself.
 * tests/unit/audit_test.c and tests/fuzz/audit_record_fuzz.c compare the
 * two serializations.
 */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "audit/audit_internal.h"

/* ---- HMAC ------------------------------------------------------------------- */

static EVP_MAC *g_hmac;
static pthread_once_t g_hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

EVP_MAC_CTX *audit_hmac_ctx_new(const uint8_t key[32])
{
    pthread_once(&g_hmac_once, hmac_fetch);
    if (g_hmac == NULL)
        return NULL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(g_hmac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (ctx == NULL || EVP_MAC_init(ctx, key, 32, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

bool audit_hmac_str(EVP_MAC_CTX *ctx, const char *s, size_t len, char out[AUDIT_HMAC_STR_LEN])
{
    uint8_t mac[32];
    size_t maclen = 0;
    /* init with a NULL key restarts with the key already set (OpenSSL 3). */
    if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)s, len) != 1 ||
        EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) != 1 || maclen != sizeof(mac))
        return false;
    memcpy(out, AUDIT_HMAC_PREFIX, AUDIT_HMAC_PREFIX_LEN);
    audit_hex32_encode(mac, out + AUDIT_HMAC_PREFIX_LEN);
    return true;
}

/* ---- output buffer ---------------------------------------------------------- */

int audit_out_reserve(struct audit_out *o, size_t more)
{
    if (more <= o->cap - o->len)
        return NHID_OK;
    if (more > SIZE_MAX / 2 - o->len)
        return NHID_ERR_TOO_LARGE;
    size_t need = o->len + more;
    size_t cap = o->cap != 0 ? o->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(o->buf, cap);
    if (p == NULL)
        return NHID_ERR_NOMEM;
    o->buf = p;
    o->cap = cap;
    return NHID_OK;
}

static inline int put(struct audit_out *o, const char *s, size_t n)
{
    int rc = audit_out_reserve(o, n);
    if (rc < 0)
        return rc;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return NHID_OK;
}

int audit_put_hmac(struct audit_out *o, EVP_MAC_CTX *mac, const char *s, size_t len)
{
    char h[AUDIT_HMAC_STR_LEN + 2];
    h[0] = '"';
    if (mac == NULL || !audit_hmac_str(mac, s, len, h + 1))
        return NHID_ERR_CRYPTO;
    h[sizeof(h) - 1] = '"';
    return put(o, h, sizeof(h));
}

/* ---- serializer -------------------------------------------------------------------- */

static bool key_is(const char *key, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(key, lit, n) == 0;
}

static enum audit_mode child_mode(enum audit_mode m, const char *key, size_t len)
{
    switch (m) {
    case AUDIT_MODE_TOP:
        if (key_is(key, len, "request"))
            return AUDIT_MODE_REQUEST;
        if (key_is(key, len, "response"))
            return AUDIT_MODE_RESPONSE;
        return key_is(key, len, "auth") ? AUDIT_MODE_TOP_AUTH : AUDIT_MODE_PLAIN;
    case AUDIT_MODE_REQUEST:
        return key_is(key, len, "data") || key_is(key, len, "client_token") ? AUDIT_MODE_SECRET
                                                                            : AUDIT_MODE_PLAIN;
    case AUDIT_MODE_RESPONSE:
        if (key_is(key, len, "data"))
            return AUDIT_MODE_SECRET;
        return key_is(key, len, "auth") ? AUDIT_MODE_RESPONSE_AUTH : AUDIT_MODE_PLAIN;
    case AUDIT_MODE_RESPONSE_AUTH:
        /* metadata is caller-supplied (token create "meta") and echoed back. */
        return key_is(key, len, "client_token") || key_is(key, len, "metadata") ? AUDIT_MODE_SECRET
                                                                                : AUDIT_MODE_PLAIN;
    case AUDIT_MODE_TOP_AUTH:
        return key_is(key, len, "metadata") ? AUDIT_MODE_SECRET : AUDIT_MODE_PLAIN;
    case AUDIT_MODE_SECRET:
        return AUDIT_MODE_SECRET;
    case AUDIT_MODE_PLAIN:
        break;
    }
    return AUDIT_MODE_PLAIN;
}

/* RFC 3629 well-formed UTF-8 (what jansson accepts and dumps). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            unsigned cc = s[i + k];
            if ((cc & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (cc & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

/* A JSON string exactly as jansson's dump_string() writes it (no flags). */
int audit_put_string(struct audit_out *o, const char *s, size_t len)
{
    static const char hexu[] = "0123456789ABCDEF";
    unsigned high = 0;
    if (len > (SIZE_MAX / 2 - 2) / 6)
        return NHID_ERR_TOO_LARGE;
    int rc = audit_out_reserve(o, 6 * len + 2);
    if (rc < 0)
        return rc;
    char *p = o->buf + o->len;
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        high |= c;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"':
            *p++ = '"';
            break;
        case '\\':
            *p++ = '\\';
            break;
        case '\b':
            *p++ = 'b';
            break;
        case '\f':
            *p++ = 'f';
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hexu[c >> 4];
            *p++ = hexu[c & 15];
            break;
        }
    }
    *p++ = '"';
    /* jansson refuses to dump malformed UTF-8 (only json_*_nocheck makes it). */
    if ((high & 0x80) != 0 && !utf8_valid((const unsigned char *)s, len))
        return NHID_ERR_INVALID;
    o->len = (size_t)(p - o->buf);
    return NHID_OK;
}

int audit_put_int(struct audit_out *o, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[sizeof(tmp) - 1 - n++] = '-';
    return put(o, tmp + sizeof(tmp) - n, n);
}

int audit_put_json(struct audit_out *o, json_t *v, enum audit_mode m, unsigned depth,
                   EVP_MAC_CTX *mac)
{
    int rc;
    if (depth > AUDIT_DEPTH_MAX)
        return NHID_ERR_TOO_LARGE; /* also ends reference cycles */
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        bool first = true;
        if ((rc = put(o, "{", 1)) < 0)
            return rc;
        for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it)) {
            const char *key = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            /* The device owns these names at the top level. */
            if (m == AUDIT_MODE_TOP && (key_is(key, klen, "seq") || key_is(key, klen, "prev") ||
                                        key_is(key, klen, "chain")))
                continue;
            if (!first && (rc = put(o, ",", 1)) < 0)
                return rc;
            first = false;
            if ((rc = audit_put_string(o, key, klen)) < 0 || (rc = put(o, ":", 1)) < 0)
                return rc;
            rc = audit_put_json(o, json_object_iter_value(it), child_mode(m, key, klen), depth + 1,
                                mac);
            if (rc < 0)
                return rc;
        }
        return put(o, "}", 1);
    }
    case JSON_ARRAY: {
        enum audit_mode cm = m == AUDIT_MODE_SECRET ? AUDIT_MODE_SECRET : AUDIT_MODE_PLAIN;
        if ((rc = put(o, "[", 1)) < 0)
            return rc;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0 && (rc = put(o, ",", 1)) < 0)
                return rc;
            if ((rc = audit_put_json(o, json_array_get(v, i), cm, depth + 1, mac)) < 0)
                return rc;
        }
        return put(o, "]", 1);
    }
    case JSON_STRING:
        if (m == AUDIT_MODE_SECRET)
            return audit_put_hmac(o, mac, json_string_value(v), json_string_length(v));
        return audit_put_string(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return audit_put_int(o, json_integer_value(v));
    case JSON_REAL: {
        /* jansson's own real formatting (precision 17, ".0" rules). */
        char tmp[64];
        size_t n = json_dumpb(v, tmp, sizeof(tmp), JSON_ENCODE_ANY | JSON_COMPACT);
        if (n == 0 || n > sizeof(tmp))
            return NHID_ERR_INTERNAL;
        return put(o, tmp, n);
    }
    case JSON_TRUE:
        return put(o, "true", 4);
    case JSON_FALSE:
        return put(o, "false", 5);
    case JSON_NULL:
        return put(o, "null", 4);
    }
    return NHID_ERR_INTERNAL;
}

int audit_serialize(struct audit_out *o, json_t *rec, EVP_MAC_CTX *mac)
{
    size_t start = o->len;
    if (!json_is_object(rec))
        return NHID_ERR_INVALID;
    int rc = audit_put_json(o, rec, AUDIT_MODE_TOP, 0, mac);
    if (rc < 0)
        o->len = start;
    return rc;
}
