/*
 * audit_record_fuzz — the device serializer against jansson.
 *
 * Input: a JSON document (as the HTTP layer would parse it). If it is an
 * object, audit_serialize() must produce exactly what jansson produces
 * for the reference transform (every string leaf under request.data,
 * request.client_token, response.data, response.auth.client_token,
 * response.auth.metadata and auth.metadata replaced by its HMAC; top-level seq/prev/chain removed), dumped with
 * JSON_COMPACT | JSON_PRESERVE_ORDER - or fail with NHID_ERR_TOO_LARGE
 * for records deeper than AUDIT_DEPTH_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_MAC_CTX *g_mac;

static json_t *ref_hmac(json_t *v)
{
    if (json_is_string(v)) {
        char h[AUDIT_HMAC_STR_LEN];
        if (!audit_hmac_str(g_mac, json_string_value(v), json_string_length(v), h))
            abort();
        return json_stringn(h, sizeof(h));
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it))
            json_object_setn_new(o, json_object_iter_key(it), json_object_iter_key_len(it),
                                 ref_hmac(json_object_iter_value(it)));
        return o;
    }
    if (json_is_array(v)) {
        json_t *o = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(o, ref_hmac(json_array_get(v, i)));
        return o;
    }
    return json_incref(v);
}

static void hmac_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (v != NULL)
        json_object_set_new(obj, key, ref_hmac(v));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[32] = {9, 8, 7};
    if (g_mac == NULL)
        g_mac = audit_hmac_ctx_new(key);
    json_t *rec = json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (!json_is_object(rec)) {
        json_decref(rec);
        return 0;
    }
    struct audit_out o = {NULL, 0, 0};
    int rc = audit_serialize(&o, rec, g_mac);

    json_t *exp = json_copy(rec);
    json_object_del(exp, "seq");
    json_object_del(exp, "prev");
    json_object_del(exp, "chain");
    json_t *req = json_object_get(rec, "request");
    if (json_is_object(req)) {
        json_t *nr = json_copy(req);
        hmac_member(nr, "data");
        hmac_member(nr, "client_token");
        json_object_set_new(exp, "request", nr);
    }
    json_t *tauth = json_object_get(rec, "auth");
    if (json_is_object(tauth)) {
        json_t *na = json_copy(tauth);
        hmac_member(na, "metadata");
        json_object_set_new(exp, "auth", na);
    }
    json_t *resp = json_object_get(rec, "response");
    if (json_is_object(resp)) {
        json_t *nr = json_copy(resp);
        hmac_member(nr, "data");
        json_t *auth = json_object_get(resp, "auth");
        if (json_is_object(auth)) {
            json_t *na = json_copy(auth);
            hmac_member(na, "client_token");
            hmac_member(na, "metadata");
            json_object_set_new(nr, "auth", na);
        }
        json_object_set_new(exp, "response", nr);
    }
    char *want = json_dumps(exp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (rc == NHID_OK) {
        if (want == NULL || strlen(want) != o.len || memcmp(want, o.buf, o.len) != 0)
            abort();
    } else if (rc != NHID_ERR_TOO_LARGE) {
        abort(); /* parsed JSON is valid UTF-8: nothing else may fail */
    }
    free(want);
    json_decref(exp);
    json_decref(rec);
    free(o.buf);
    return 0;
}
