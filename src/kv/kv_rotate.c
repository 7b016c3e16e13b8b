/*
 * kv_rotate — automated rotation of stored secrets.
 *
 * A rotation policy per secret (kv/<mount>/rot/<path>) names an interval, a
 * generator (random password, API key, key pair), how many versions to
 * keep and a grace period. Due rotations are found through an ordered
 * index kv/<mount>/rotation-due/<20-digit unix>/<path> (a range scan up to
 * "now", never a scan of all secrets); the index is stored, so a rotation
 * that fell due while the server was down runs at the first scheduler tick
 * after start/unseal. Each rotation writes a new KV version in one durable
 * write transaction, then an audit record whose generated value sits under
 * response.data (HMAC'd by every audit device, never written in clear).
 *
 * Grace period: the previous version stays readable for grace_period (its
 * deletion_time is set to the end of the grace), then the scheduler
 * destroys it (index kv/<mount>/grace-due/<unix>/<version>/<path>). A grace
 * period of 0 destroys the previous version at once.
 */
#include "kv/kv_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit/audit.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define ROT_BATCH 64              /* due entries handled per mount per tick */
#define ROT_INTERVAL_MIN 1        /* seconds */
#define ROT_INTERVAL_MAX (10LL * 366 * 24 * 3600)
#define TS_DIGITS 20

static const char lower_chars[] = "abcdefghijklmnopqrstuvwxyz";
static const char upper_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char digit_chars[] = "0123456789";
static const char symbol_chars[] = "!#$%&()*+,-./:;<=>?@[]^_{|}~";

/* ---- generators --------------------------------------------------------- */

/* Uniform random integer in [0, n) by rejection sampling (no modulo bias). */
static int random_below(uint32_t n, uint32_t *out)
{
    uint32_t limit = UINT32_MAX - (UINT32_MAX % n);
    for (;;) {
        uint32_t r;
        int rc = nhid_random_bytes(&r, sizeof(r));
        if (rc < 0)
            return rc;
        if (r < limit) {
            *out = r % n;
            return NHID_OK;
        }
    }
}

int nhid_kv_password(size_t len, unsigned classes, char *out)
{
    const char *sets[4] = {lower_chars, upper_chars, digit_chars, symbol_chars};
    char alphabet[128];
    size_t alen = 0;
    unsigned nclasses = 0;
    if (len < NHID_KV_PASSWORD_MIN || len > NHID_KV_PASSWORD_MAX || (classes & 0xf) == 0)
        return NHID_ERR_INVALID;
    for (unsigned c = 0; c < 4; c++) {
        if (!(classes & (1u << c)))
            continue;
        nclasses++;
        size_t l = strlen(sets[c]);
        memcpy(alphabet + alen, sets[c], l);
        alen += l;
    }
    if (len < nclasses)
        return NHID_ERR_INVALID;
    /*
     * Draw every character uniformly from the union and retry until each
     * class appears: the result is uniform over the passwords that contain
     * every class (placing one of each at fixed positions would not be).
     */
    for (int attempt = 0; attempt < 10000; attempt++) {
        unsigned seen = 0;
        for (size_t i = 0; i < len; i++) {
            uint32_t r;
            int rc = random_below((uint32_t)alen, &r);
            if (rc < 0) {
                nhid_wipe(out, len);
                return rc;
            }
            out[i] = alphabet[r];
            for (unsigned c = 0; c < 4; c++)
                if ((classes & (1u << c)) && strchr(sets[c], out[i]))
                    seen |= 1u << c;
        }
        out[len] = '\0';
        if (seen == (classes & 0xf))
            return NHID_OK;
    }
    nhid_wipe(out, len);
    return NHID_ERR_INTERNAL;
}

static bool prefix_valid(const char *p)
{
    if (strlen(p) > NHID_KV_API_PREFIX_MAX)
        return false;
    for (; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

int nhid_kv_api_key(const char *prefix, char **out)
{
    uint8_t raw[32];
    char *b64 = NULL;
    if (prefix == NULL)
        prefix = "";
    if (!prefix_valid(prefix))
        return NHID_ERR_INVALID;
    int rc = nhid_random_bytes(raw, sizeof(raw));
    if (rc == NHID_OK)
        rc = nhid_base64url_encode(raw, sizeof(raw), &b64);
    nhid_wipe(raw, sizeof(raw));
    if (rc < 0)
        return rc;
    size_t n = strlen(prefix) + strlen(b64) + 1;
    char *s = malloc(n);
    if (s == NULL) {
        nhid_free_secret_str(b64);
        return NHID_ERR_NOMEM;
    }
    snprintf(s, n, "%s%s", prefix, b64);
    nhid_free_secret_str(b64);
    *out = s;
    return NHID_OK;
}

/* Public key of a signer as SubjectPublicKeyInfo PEM (malloc'd). */
static int public_pem(struct nhid_signer *s, char **out)
{
    EVP_PKEY *pk = nhid_signer_public_key(s);
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || pk == NULL || PEM_write_bio_PUBKEY(bio, pk) != 1) {
        BIO_free(bio);
        return NHID_ERR_CRYPTO;
    }
    char *ptr = NULL;
    long len = BIO_get_mem_data(bio, &ptr);
    char *pem = len > 0 ? strndup(ptr, (size_t)len) : NULL;
    BIO_free(bio);
    if (pem == NULL)
        return NHID_ERR_NOMEM;
    *out = pem;
    return NHID_OK;
}

/*
 * Generate a new secret value per generator `gen`: *data (new object),
 * *pub (public PEM for key pairs, else NULL; malloc'd).
 */
static int generate(const json_t *gen, json_t **data, char **pub)
{
    const char *type = nhid_json_str(gen, "type");
    int rc = NHID_OK;
    *pub = NULL;
    if (strcmp(type, "password") == 0) {
        size_t len = (size_t)nhid_json_int(gen, "length");
        char *pw = malloc(len + 1);
        if (pw == NULL)
            return NHID_ERR_NOMEM;
        rc = nhid_kv_password(len, (unsigned)nhid_json_int(gen, "class_bits"), pw);
        if (rc == NHID_OK) {
            *data = json_pack("{s:s}", "password", pw);
            rc = *data ? NHID_OK : NHID_ERR_NOMEM;
        }
        nhid_free_secret(pw, len + 1);
        return rc;
    }
    if (strcmp(type, "api_key") == 0) {
        char *key = NULL;
        rc = nhid_kv_api_key(nhid_json_str(gen, "prefix"), &key);
        if (rc < 0)
            return rc;
        *data = json_pack("{s:s}", "api_key", key);
        nhid_free_secret_str(key);
        return *data ? NHID_OK : NHID_ERR_NOMEM;
    }
    if (strcmp(type, "keypair") == 0) {
        enum nhid_key_type kt =
            strcmp(nhid_json_str(gen, "algorithm"), "ed25519") == 0 ? NHID_KEY_ED25519 : NHID_KEY_EC_P256;
        struct nhid_signer *s = NULL;
        char *priv = NULL, *pubpem = NULL;
        rc = nhid_signer_generate(kt, &s);
        if (rc == NHID_OK)
            rc = nhid_signer_export_pem(s, &priv);
        if (rc == NHID_OK)
            rc = public_pem(s, &pubpem);
        if (rc == NHID_OK) {
            *data = json_pack("{s:s, s:s, s:s}", "private_key", priv, "public_key", pubpem,
                              "algorithm", nhid_json_str(gen, "algorithm"));
            rc = *data ? NHID_OK : NHID_ERR_NOMEM;
        }
        if (rc == NHID_OK)
            *pub = pubpem;
        else
            free(pubpem);
        nhid_free_secret_str(priv);
        nhid_signer_free(s);
        return rc;
    }
    return NHID_ERR_INVALID;
}

/* ---- storage keys ------------------------------------------------------- */

static int key_rot(char *out, const char *mount, const char *path)
{
    return nhid_fmt(out, KV_KEY_MAX, "kv/%s/rot/%s", mount, path);
}

static int key_due(char *out, const char *mount, int64_t when, const char *path)
{
    return nhid_fmt(out, KV_KEY_MAX, "kv/%s/rotation-due/%020" PRId64 "/%s", mount, when, path);
}

static int key_grace(char *out, const char *mount, int64_t when, uint64_t version,
                     const char *path)
{
    return nhid_fmt(out, KV_KEY_MAX, "kv/%s/grace-due/%020" PRId64 "/%020" PRIu64 "/%s", mount,
                    when, version, path);
}

int kv_rotation_forget(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                       const char *path)
{
    char key[KV_KEY_MAX];
    json_t *pol = NULL;
    int rc = key_rot(key, mount, path);
    if (rc < 0)
        return rc;
    rc = nhid_core_load_json(core, txn, key, &pol);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    rc = nhid_txn_delete(txn, key);
    if (rc == NHID_OK && key_due(key, mount, nhid_json_int(pol, "next"), path) == NHID_OK)
        rc = nhid_txn_delete(txn, key);
    json_decref(pol);
    return rc;
}

/* ---- one rotation --------------------------------------------------------- */

struct rot_result {
    uint64_t version;
    int64_t next;
    json_t *data; /* generated value (for the scheduler's audit record), or NULL */
};

/* Rotate mount/path under policy pol (modified and saved) inside writable txn. */
static int rotate_locked(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                         const char *path, json_t *pol, struct rot_result *res)
{
    int rc = NHID_OK;
    json_t *data = NULL;
    char *pub = NULL;
    char key[KV_KEY_MAX];
    int64_t now = nhid_now();
    struct kv_write w = {.mount = mount, .path = path, .cas = -1, .system = true};

    NHID_TRY(generate(json_object_get(pol, "gen"), &data, &pub));
    w.data = data;
    w.max_versions = nhid_json_int(pol, "keep");
    rc = kv_write_version(core, txn, &w);
    if (rc < 0) {
        nhid_warn(KV_MOD, "rotation of %s/%s failed: %s", mount, path,
                  w.err[0] ? w.err : nhid_strerror(rc));
        goto out;
    }
    /* The previous version: readable for the grace period, then destroyed. */
    uint64_t prev = w.version - 1;
    json_t *pv = prev ? kv_meta_version(w.meta, prev) : NULL;
    if (pv && !json_is_true(json_object_get(pv, "x"))) {
        int64_t grace = nhid_json_int(pol, "grace");
        if (grace > 0) {
            int64_t until = now + grace;
            int64_t dt = nhid_json_int(pv, "dt");
            if (dt == 0 || dt > until * 1000000000LL)
                json_object_set_new(pv, "dt", json_integer(until * 1000000000LL));
            NHID_TRY(key_grace(key, mount, until, prev, path));
            NHID_TRY(nhid_txn_put(txn, key, (const uint8_t *)"", 0));
        } else {
            NHID_TRY(kv_destroy_version(core, txn, mount, path, w.meta, prev));
        }
        NHID_TRY(kv_meta_save(core, txn, mount, path, w.meta));
    }
    /* Reschedule: the old index entry goes, the new one comes. */
    NHID_TRY(key_due(key, mount, nhid_json_int(pol, "next"), path));
    NHID_TRY(nhid_txn_delete(txn, key));
    int64_t next = now + nhid_json_int(pol, "interval");
    json_object_set_new(pol, "next", json_integer(next));
    json_object_set_new(pol, "last", json_integer(now));
    json_object_set_new(pol, "last_version", json_integer((json_int_t)w.version));
    json_object_set_new(pol, "count", json_integer(nhid_json_int(pol, "count") + 1));
    if (pub)
        json_object_set_new(pol, "public_key", json_string(pub));
    NHID_TRY(key_due(key, mount, next, path));
    NHID_TRY(nhid_txn_put(txn, key, (const uint8_t *)"", 0));
    NHID_TRY(key_rot(key, mount, path));
    NHID_TRY(nhid_core_save_json(core, txn, key, pol));
    res->version = w.version;
    res->next = next;
    res->data = data;
    data = NULL;
out:
    json_decref(w.meta);
    json_decref(data);
    free(pub);
    return rc;
}

/* ---- endpoints ---------------------------------------------------------- */

static int target(struct nhid_request *req, struct nhid_response *resp, char mount[KV_MOUNT_MAX],
                  const char **path)
{
    const char *p = nhid_req_param(req, "path");
    if (!kv_req_mount(req, mount))
        return nhid_resp_error(resp, 400, "invalid mount in path");
    if (p == NULL || !nhid_kv_path_valid(p))
        return nhid_resp_error(resp, 400,
                               "invalid secret path (at most %d bytes, no empty, \".\" or \"..\" "
                               "segments, no control characters, no trailing \"/\")",
                               KV_PATH_MAX);
    *path = p;
    return NHID_OK;
}

static int load_policy(struct nhid_core *core, struct nhid_txn *txn, const char *mount,
                       const char *path, json_t **out)
{
    char key[KV_KEY_MAX];
    int rc = key_rot(key, mount, path);
    if (rc < 0)
        return NHID_ERR_NOT_FOUND;
    return nhid_core_load_json(core, txn, key, out);
}

static json_t *policy_out(const json_t *pol)
{
    char next[NHID_RFC3339_LEN], last[NHID_RFC3339_LEN], iv[64], gr[64];
    nhid_time_format(nhid_json_int(pol, "next"), next);
    if (nhid_json_int(pol, "last"))
        nhid_time_format(nhid_json_int(pol, "last"), last);
    else
        last[0] = '\0';
    nhid_duration_format(nhid_json_int(pol, "interval"), iv, sizeof(iv));
    nhid_duration_format(nhid_json_int(pol, "grace"), gr, sizeof(gr));
    json_t *gen = json_deep_copy(json_object_get(pol, "gen"));
    if (gen)
        json_object_del(gen, "class_bits");
    return json_pack("{s:s, s:I, s:o, s:I, s:s, s:I, s:s, s:s, s:I, s:I}", "interval", iv,
                     "interval_seconds", (json_int_t)nhid_json_int(pol, "interval"), "generator", gen,
                     "versions_to_keep", (json_int_t)nhid_json_int(pol, "keep"), "grace_period", gr,
                     "grace_period_seconds", (json_int_t)nhid_json_int(pol, "grace"), "next_rotation_time",
                     next, "last_rotation_time", last, "last_version",
                     (json_int_t)nhid_json_int(pol, "last_version"), "rotation_count",
                     (json_int_t)nhid_json_int(pol, "count"));
}

int kv_h_rotation_read(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    const char *path;
    json_t *pol = NULL;
    int rc = target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    rc = load_policy(req->core, req->txn, mount, path, &pol);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no rotation policy for %s/%s", mount, path);
    if (rc < 0)
        return rc;
    resp->data = policy_out(pol);
    json_decref(pol);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

/* Validate and normalise the "generator" object into *out. */
static int parse_generator(struct nhid_response *resp, json_t *g, json_t **out)
{
    if (!json_is_object(g))
        return nhid_resp_error(resp, 400, "field \"generator\": expected an object with \"type\" "
                                          "(password, api_key or keypair)");
    const char *type = nhid_json_str(g, "type");
    const char *k;
    json_t *v;
    if (strcmp(type, "password") == 0) {
        json_int_t len = 32;
        json_t *lv = json_object_get(g, "length");
        if (lv && !json_is_integer(lv))
            return nhid_resp_error(resp, 400, "field \"generator.length\": expected an integer");
        if (lv)
            len = json_integer_value(lv);
        if (len < NHID_KV_PASSWORD_MIN || len > NHID_KV_PASSWORD_MAX)
            return nhid_resp_error(resp, 400, "field \"generator.length\": must be %d to %d",
                                   NHID_KV_PASSWORD_MIN, NHID_KV_PASSWORD_MAX);
        unsigned bits = 0;
        json_t *classes = json_object_get(g, "classes");
        json_t *names = json_array();
        if (classes == NULL || json_is_null(classes)) {
            bits = 0xf;
        } else if (!json_is_array(classes) || json_array_size(classes) == 0) {
            json_decref(names);
            return nhid_resp_error(resp, 400, "field \"generator.classes\": expected a non-empty "
                                              "list of lower, upper, digits, symbols");
        }
        size_t i;
        json_array_foreach(classes, i, v)
        {
            const char *c = json_string_value(v);
            unsigned b = !c ? 0
                         : !strcmp(c, "lower")   ? NHID_KV_LOWER
                         : !strcmp(c, "upper")   ? NHID_KV_UPPER
                         : !strcmp(c, "digits")  ? NHID_KV_DIGITS
                         : !strcmp(c, "symbols") ? NHID_KV_SYMBOLS
                                                 : 0;
            if (b == 0) {
                json_decref(names);
                return nhid_resp_error(resp, 400,
                                       "field \"generator.classes\": element %zu is not one of "
                                       "lower, upper, digits, symbols",
                                       i);
            }
            bits |= b;
        }
        static const char *const cn[] = {"lower", "upper", "digits", "symbols"};
        for (unsigned c = 0; c < 4; c++)
            if (bits & (1u << c))
                json_array_append_new(names, json_string(cn[c]));
        *out = json_pack("{s:s, s:I, s:o, s:I}", "type", "password", "length", len, "classes",
                         names, "class_bits", (json_int_t)bits);
    } else if (strcmp(type, "api_key") == 0) {
        const char *prefix = nhid_json_str(g, "prefix");
        if (!prefix_valid(prefix))
            return nhid_resp_error(resp, 400,
                                   "field \"generator.prefix\": at most %d characters of "
                                   "A-Z a-z 0-9 _ - .",
                                   NHID_KV_API_PREFIX_MAX);
        *out = json_pack("{s:s, s:s, s:i}", "type", "api_key", "prefix", prefix, "bits", 256);
    } else if (strcmp(type, "keypair") == 0) {
        const char *alg = nhid_json_str(g, "algorithm");
        if (*alg == '\0' || !strcmp(alg, "ed25519"))
            alg = "ed25519";
        else if (!strcmp(alg, "ec-p256") || !strcmp(alg, "p256") || !strcmp(alg, "ec") ||
                 !strcmp(alg, "ecdsa-p256"))
            alg = "ec-p256";
        else
            return nhid_resp_error(resp, 400, "field \"generator.algorithm\": use ed25519 or "
                                              "ec-p256");
        *out = json_pack("{s:s, s:s}", "type", "keypair", "algorithm", alg);
    } else {
        return nhid_resp_error(resp, 400, "field \"generator.type\": use password, api_key or "
                                          "keypair");
    }
    /* Refuse fields that belong to no generator (typos must not pass silently). */
    json_object_foreach(g, k, v)
    {
        if (strcmp(k, "type") && strcmp(k, "length") && strcmp(k, "classes") &&
            strcmp(k, "prefix") && strcmp(k, "algorithm")) {
            json_decref(*out);
            *out = NULL;
            return nhid_resp_error(resp, 400, "field \"generator\": unknown member \"%.64s\"", k);
        }
    }
    return *out ? NHID_OK : NHID_ERR_NOMEM;
}

int kv_h_rotation_write(struct nhid_request *req, struct nhid_response *resp)
{
    static const char *const fields[] = {"interval", "generator", "versions_to_keep",
                                         "grace_period", NULL};
    char mount[KV_MOUNT_MAX], key[KV_KEY_MAX];
    const char *path;
    json_t *pol = NULL, *old = NULL, *gen = NULL, *meta = NULL;
    struct rot_result res = {0};
    int64_t interval, keep, grace;
    int rc = target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    NHID_TRY(nhid_body_only(req, resp, fields));
    NHID_TRY(nhid_body_duration(req, resp, "interval", 0, &interval));
    if (interval < ROT_INTERVAL_MIN || interval > ROT_INTERVAL_MAX)
        NHID_FAIL(nhid_resp_error(resp, 400, "field \"interval\": required, between 1s and 10 "
                                             "years (e.g. \"720h\")"));
    NHID_TRY(nhid_body_int(req, resp, "versions_to_keep", 0, 0, KV_MAX_VERSIONS_LIMIT, &keep));
    NHID_TRY(nhid_body_duration(req, resp, "grace_period", 0, &grace));
    NHID_TRY(parse_generator(resp, json_object_get(req->body, "generator"), &gen));

    int64_t now = nhid_now();
    rc = load_policy(req->core, req->txn, mount, path, &old);
    if (rc == NHID_ERR_NOT_FOUND)
        rc = NHID_OK;
    NHID_TRY(rc);
    if (old) {
        NHID_TRY(key_due(key, mount, nhid_json_int(old, "next"), path));
        NHID_TRY(nhid_txn_delete(req->txn, key));
    }
    pol = json_pack("{s:I, s:O, s:I, s:I, s:I, s:I, s:I, s:I}", "interval", (json_int_t)interval,
                    "gen", gen, "keep", (json_int_t)keep, "grace", (json_int_t)grace, "next",
                    (json_int_t)(now + interval), "last", (json_int_t)(old ? nhid_json_int(old, "last") : 0),
                    "last_version", (json_int_t)(old ? nhid_json_int(old, "last_version") : 0), "count",
                    (json_int_t)(old ? nhid_json_int(old, "count") : 0));
    NHID_CHECK_ALLOC(pol);
    /* Keep the public half only while the generator still makes key pairs. */
    if (old && json_object_get(old, "public_key") && !strcmp(nhid_json_str(gen, "type"), "keypair"))
        json_object_set(pol, "public_key", json_object_get(old, "public_key"));
    NHID_TRY(key_due(key, mount, now + interval, path));
    NHID_TRY(nhid_txn_put(req->txn, key, (const uint8_t *)"", 0));
    NHID_TRY(key_rot(key, mount, path));
    NHID_TRY(nhid_core_save_json(req->core, req->txn, key, pol));
    /* A secret with no readable current version gets its first value now. */
    rc = kv_meta_load(req->core, req->txn, mount, path, &meta);
    bool readable = false;
    if (rc == NHID_OK) {
        json_t *v = kv_meta_version(meta, (uint64_t)nhid_json_int(meta, "cur"));
        readable = v && !kv_version_gone(v, nhid_now_ns());
    } else if (rc != NHID_ERR_NOT_FOUND) {
        goto out;
    }
    rc = NHID_OK;
    if (!readable)
        NHID_TRY(rotate_locked(req->core, req->txn, mount, path, pol, &res));
    resp->data = policy_out(pol);
    NHID_CHECK_ALLOC(resp->data);
out:
    json_decref(res.data);
    json_decref(meta);
    json_decref(pol);
    json_decref(old);
    json_decref(gen);
    return rc;
}

int kv_h_rotation_delete(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    const char *path;
    int rc = target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    return kv_rotation_forget(req->core, req->txn, mount, path);
}

/* POST rotate/<path>: rotate now (the reply carries the version, never the value). */
int kv_h_rotate(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    const char *path;
    json_t *pol = NULL;
    struct rot_result res = {0};
    int rc = target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    rc = load_policy(req->core, req->txn, mount, path, &pol);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404,
                               "no rotation policy for %s/%s (write one to %s/rotation/%s)", mount,
                               path, mount, path);
    if (rc < 0)
        return rc;
    rc = rotate_locked(req->core, req->txn, mount, path, pol, &res);
    if (rc == NHID_OK) {
        char next[NHID_RFC3339_LEN];
        nhid_time_format(res.next, next);
        resp->data = json_pack("{s:I, s:s}", "version", (json_int_t)res.version,
                               "next_rotation_time", next);
    }
    json_decref(res.data);
    json_decref(pol);
    return rc;
}

/* GET rotation-public/<path>: the public half of a rotated key pair. */
int kv_h_rotation_public(struct nhid_request *req, struct nhid_response *resp)
{
    char mount[KV_MOUNT_MAX];
    const char *path;
    json_t *pol = NULL;
    int rc = target(req, resp, mount, &path);
    if (rc < 0)
        return rc;
    rc = load_policy(req->core, req->txn, mount, path, &pol);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_resp_error(resp, 404, "no rotation policy for %s/%s", mount, path);
    if (rc < 0)
        return rc;
    const char *pub = json_string_value(json_object_get(pol, "public_key"));
    if (pub == NULL) {
        json_decref(pol);
        return nhid_resp_error(resp, 404, "%s/%s has no key pair (generator type is not keypair)",
                               mount, path);
    }
    resp->data = json_pack("{s:s, s:s, s:I}", "public_key", pub, "algorithm",
                           nhid_json_str(json_object_get(pol, "gen"), "algorithm"), "version",
                           (json_int_t)nhid_json_int(pol, "last_version"));
    json_decref(pol);
    return resp->data ? NHID_OK : NHID_ERR_NOMEM;
}

/* ---- scheduler ---------------------------------------------------------- */

struct due_list {
    char (*keys)[KV_KEY_MAX];
    size_t n, cap;
};

static int due_collect(const char *key, const uint8_t *val, size_t len, void *arg)
{
    (void)val;
    (void)len;
    struct due_list *l = arg;
    if (l->n >= l->cap)
        return 1;
    snprintf(l->keys[l->n++], KV_KEY_MAX, "%s", key);
    return 0;
}

/* Keys under `prefix` whose 20-digit timestamp is <= now. */
static int collect_due(struct nhid_core *core, const char *prefix, int64_t now,
                       struct due_list *l)
{
    char end[KV_KEY_MAX];
    struct nhid_txn *txn = NULL;
    int rc = nhid_fmt(end, sizeof(end), "%s%020" PRId64 "0", prefix, now);
    if (rc < 0)
        return rc;
    /* end = prefix + <now> + '0' > "<prefix><now>/<anything>" ('/' < '0') */
    rc = nhid_store_read_begin(core->store, &txn);
    if (rc < 0)
        return rc;
    l->n = 0;
    rc = nhid_txn_scan(txn, prefix, end, l->cap, true, due_collect, l);
    nhid_store_read_end(txn);
    return rc;
}

struct job_ctx {
    const char *mount;
    const char *key; /* the due index entry */
    char path[KV_PATH_MAX + 1];
    uint64_t version;
    bool done;
    struct rot_result res;
};

static int job_rotate_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct job_ctx *c = arg;
    uint8_t *val = NULL;
    size_t len = 0;
    json_t *pol = NULL;
    int rc = nhid_txn_get(txn, c->key, &val, &len);
    free(val);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK; /* handled meanwhile (rotate now, policy change) */
    if (rc < 0)
        return rc;
    rc = load_policy(core, txn, c->mount, c->path, &pol);
    if (rc == NHID_ERR_NOT_FOUND)
        return nhid_txn_delete(txn, c->key); /* stale index entry */
    if (rc < 0)
        return rc;
    char expect[KV_KEY_MAX];
    if (key_due(expect, c->mount, nhid_json_int(pol, "next"), c->path) < 0 || strcmp(expect, c->key)) {
        json_decref(pol);
        return nhid_txn_delete(txn, c->key);
    }
    rc = rotate_locked(core, txn, c->mount, c->path, pol, &c->res);
    if (rc == NHID_OK)
        c->done = true;
    json_decref(pol);
    return rc;
}

static int job_grace_txn(struct nhid_core *core, struct nhid_txn *txn, void *arg)
{
    struct job_ctx *c = arg;
    json_t *meta = NULL;
    int rc = nhid_txn_delete(txn, c->key);
    if (rc < 0)
        return rc;
    rc = kv_meta_load(core, txn, c->mount, c->path, &meta);
    if (rc == NHID_ERR_NOT_FOUND)
        return NHID_OK;
    if (rc < 0)
        return rc;
    json_t *v = kv_meta_version(meta, c->version);
    /* Undeleted during the grace period: the operator wants it kept. */
    if (v && !json_is_true(json_object_get(v, "x")) && nhid_json_int(v, "dt") > 0 &&
        nhid_json_int(v, "dt") <= nhid_now_ns()) {
        rc = kv_destroy_version(core, txn, c->mount, c->path, meta, c->version);
        if (rc == NHID_OK)
            rc = kv_meta_save(core, txn, c->mount, c->path, meta);
        if (rc == NHID_OK)
            c->done = true;
    }
    json_decref(meta);
    return rc;
}

/* The audit record of a scheduler action; the generated value only under response.data. */
static void audit_job(struct nhid_core *core, const char *op, const char *mount, const char *path,
                      uint64_t version, json_t *data, int64_t next)
{
    if (core->audit == NULL || nhid_audit_device_count(core->audit) == 0) {
        json_decref(data);
        return;
    }
    char ts[NHID_RFC3339_LEN], id[37], full[KV_KEY_MAX];
    nhid_time_format_ns(nhid_now_ns(), ts);
    if (nhid_uuid(id) < 0)
        snprintf(id, sizeof(id), "00000000-0000-4000-8000-000000000000");
    snprintf(full, sizeof(full), "%s/%s/%s", mount, op, path);
    json_t *respdata = data ? data : json_object();
    json_t *rec = json_pack(
        "{s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:b, s:s}, s:{s:b, s:s}, s:{s:i, s:o, s:I}}",
        "time", ts, "type", "rotation", "request_id", id, "request", "operation", op, "path",
        full, "source", "scheduler", "auth", "authenticated", 0, "method", "scheduler", "decision",
        "allowed", 1, "reason", "rotation policy", "response", "status", 200, "data", respdata,
        "version", (json_int_t)version);
    if (rec && next > 0) {
        char nt[NHID_RFC3339_LEN];
        nhid_time_format(next, nt);
        json_object_set_new(json_object_get(rec, "response"), "next_rotation_time",
                            json_string(nt));
    }
    if (rec == NULL || nhid_audit_submit_wait(core->audit, rec) < 0)
        nhid_error(KV_MOD, "audit record of %s %s/%s version %llu could not be written", op, mount,
                   path, (unsigned long long)version);
}

static int run_mount(struct nhid_core *core, const char *mount, struct due_list *l)
{
    char prefix[KV_KEY_MAX];
    int64_t now = nhid_now();
    int rc;

    /* Rotations due. */
    rc = nhid_fmt(prefix, sizeof(prefix), "kv/%s/rotation-due/", mount);
    if (rc == NHID_OK)
        rc = collect_due(core, prefix, now, l);
    for (size_t i = 0; rc == NHID_OK && i < l->n; i++) {
        struct job_ctx c = {.mount = mount, .key = l->keys[i]};
        const char *rest = l->keys[i] + strlen(prefix);
        if (strlen(rest) <= TS_DIGITS + 1)
            continue;
        snprintf(c.path, sizeof(c.path), "%s", rest + TS_DIGITS + 1);
        int wrc = nhid_core_write(core, job_rotate_txn, &c);
        if (wrc < 0) {
            nhid_warn(KV_MOD, "scheduled rotation of %s/%s failed: %s", mount, c.path,
                      nhid_strerror(wrc));
            json_decref(c.res.data);
            continue;
        }
        if (c.done) {
            nhid_info(KV_MOD, "rotated %s/%s to version %llu", mount, c.path,
                      (unsigned long long)c.res.version);
            audit_job(core, "rotate", mount, c.path, c.res.version, c.res.data, c.res.next);
        } else {
            json_decref(c.res.data);
        }
    }
    if (rc < 0)
        return rc;
    /* Grace periods that ended. */
    rc = nhid_fmt(prefix, sizeof(prefix), "kv/%s/grace-due/", mount);
    if (rc == NHID_OK)
        rc = collect_due(core, prefix, now, l);
    for (size_t i = 0; rc == NHID_OK && i < l->n; i++) {
        struct job_ctx c = {.mount = mount, .key = l->keys[i]};
        const char *rest = l->keys[i] + strlen(prefix);
        if (strlen(rest) <= 2 * (TS_DIGITS + 1))
            continue;
        c.version = strtoull(rest + TS_DIGITS + 1, NULL, 10);
        snprintf(c.path, sizeof(c.path), "%s", rest + 2 * (TS_DIGITS + 1));
        int wrc = nhid_core_write(core, job_grace_txn, &c);
        if (wrc < 0) {
            nhid_warn(KV_MOD, "destroying %s/%s version %llu after its grace period failed: %s",
                      mount, c.path, (unsigned long long)c.version, nhid_strerror(wrc));
            continue;
        }
        if (c.done)
            audit_job(core, "grace-destroy", mount, c.path, c.version, NULL, 0);
    }
    return rc;
}

int kv_rotation_job(struct nhid_core *core)
{
    /* Fail closed: no change that could not be audited. */
    if (core->audit && nhid_audit_device_count(core->audit) > 0 &&
        !nhid_audit_healthy(core->audit))
        return NHID_ERR_UNAVAILABLE;
    struct due_list l = {calloc(ROT_BATCH, KV_KEY_MAX), 0, ROT_BATCH};
    if (l.keys == NULL)
        return NHID_ERR_NOMEM;
    int rc = NHID_OK;
    for (size_t m = 0; m < kv_n_mounts && rc == NHID_OK; m++)
        rc = run_mount(core, kv_mounts[m], &l);
    free(l.keys);
    return rc;
}
