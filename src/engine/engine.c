/* engine — routing table, request/response helpers, JSON storage helpers. */
#include "engine/engine.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barrier/barrier.h"
#include "core/json_text.h"
#include "store/store.h"

#define ROUTE_SEGMENTS_MAX 16

enum seg_kind { SEG_LITERAL, SEG_PARAM, SEG_REST };

struct compiled_route {
    const struct nhid_route *route;
    const struct nhid_engine *engine;
    unsigned nseg;
    enum seg_kind kind[ROUTE_SEGMENTS_MAX];
    char *seg[ROUTE_SEGMENTS_MAX]; /* literal text, or parameter name */
};

struct nhid_router {
    struct compiled_route *routes;
    size_t n;
};

static int compile_route(const struct nhid_engine *eng, const struct nhid_route *rt,
                         struct compiled_route *out)
{
    memset(out, 0, sizeof(*out));
    out->route = rt;
    out->engine = eng;
    const char *p = rt->pattern;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || out->nseg >= ROUTE_SEGMENTS_MAX)
            return NHID_ERR_INVALID;
        unsigned i = out->nseg++;
        if (p[0] == ':') {
            out->kind[i] = SEG_PARAM;
            out->seg[i] = strndup(p + 1, len - 1);
        } else if (p[0] == '*') {
            if (slash)
                return NHID_ERR_INVALID; /* rest must be last */
            out->kind[i] = SEG_REST;
            out->seg[i] = strndup(p + 1, len - 1);
        } else {
            out->kind[i] = SEG_LITERAL;
            out->seg[i] = strndup(p, len);
        }
        if (out->seg[i] == NULL)
            return NHID_ERR_NOMEM;
        p += len;
        if (*p == '/')
            p++;
    }
    return NHID_OK;
}

void nhid_router_free(struct nhid_router *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        for (unsigned s = 0; s < r->routes[i].nseg; s++)
            free(r->routes[i].seg[s]);
    free(r->routes);
    free(r);
}

int nhid_router_new(const struct nhid_engine *const *engines, size_t n, struct nhid_router **out)
{
    int rc = NHID_OK;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += engines[i]->n_routes;
    struct nhid_router *r = calloc(1, sizeof(*r));
    NHID_CHECK_ALLOC(r);
    r->routes = calloc(total ? total : 1, sizeof(*r->routes));
    NHID_CHECK_ALLOC(r->routes);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < engines[i]->n_routes; j++) {
            rc = compile_route(engines[i], &engines[i]->routes[j], &r->routes[r->n]);
            r->n++;
            if (rc < 0) {
                nhid_error("router", "bad route pattern \"%s\" in engine %s",
                           engines[i]->routes[j].pattern, engines[i]->name);
                goto out;
            }
        }
    }
    *out = r;
    r = NULL;
out:
    nhid_router_free(r);
    return rc;
}

size_t nhid_router_count(const struct nhid_router *r)
{
    return r->n;
}

const struct nhid_route *nhid_router_route(const struct nhid_router *r, size_t i)
{
    return i < r->n ? r->routes[i].route : NULL;
}

void nhid_request_clear_params(struct nhid_request *req)
{
    for (unsigned i = 0; i < req->n_params; i++) {
        free(req->param_values[i]);
        req->param_values[i] = NULL;
        req->param_names[i] = NULL;
    }
    req->n_params = 0;
}

/* Try one compiled route against the path's segments. */
static bool match_route(const struct compiled_route *cr, const char *path, struct nhid_request *req)
{
    const char *p = path;
    unsigned np = 0;
    const char *pstart[ROUTE_SEGMENTS_MAX];
    size_t plen[ROUTE_SEGMENTS_MAX];
    for (unsigned i = 0; i < cr->nseg; i++) {
        if (cr->kind[i] == SEG_REST) {
            if (*p == '\0')
                return false;
            pstart[np] = p;
            plen[np++] = strlen(p);
            p += strlen(p);
            break;
        }
        if (*p == '\0')
            return false;
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (cr->kind[i] == SEG_LITERAL) {
            if (strlen(cr->seg[i]) != len || memcmp(cr->seg[i], p, len) != 0)
                return false;
        } else {
            if (len == 0)
                return false;
            pstart[np] = p;
            plen[np++] = len;
        }
        p += len;
        if (*p == '/') {
            p++;
            /* a single trailing slash after the last segment is accepted */
            if (*p == '\0' && i + 1 == cr->nseg)
                break;
        }
    }
    if (*p != '\0')
        return false;
    if (req) {
        nhid_request_clear_params(req);
        unsigned k = 0;
        for (unsigned i = 0; i < cr->nseg && k < np; i++) {
            if (cr->kind[i] == SEG_LITERAL)
                continue;
            req->param_names[k] = cr->seg[i];
            req->param_values[k] = strndup(pstart[k], plen[k]);
            k++;
        }
        req->n_params = k;
    }
    return true;
}

const struct nhid_route *nhid_router_match(const struct nhid_router *r, const char *path,
                                           enum nhid_method method, struct nhid_request *req,
                                           const struct nhid_engine **engine, unsigned *allowed)
{
    *allowed = 0;
    /* Literal routes win over parameterised ones: two passes. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < r->n; i++) {
            const struct compiled_route *cr = &r->routes[i];
            bool literal = true;
            for (unsigned s = 0; s < cr->nseg; s++)
                if (cr->kind[s] != SEG_LITERAL)
                    literal = false;
            if ((pass == 0) != literal)
                continue;
            if (!match_route(cr, path, NULL))
                continue;
            if (cr->route->methods & method) {
                match_route(cr, path, req);
                if (req)
                    req->route_index = (int)i;
                *engine = cr->engine;
                return cr->route;
            }
            *allowed |= cr->route->methods;
        }
        if (*allowed)
            return NULL;
    }
    return NULL;
}

static int hexdigit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int nhid_path_normalize(const char *raw, size_t rawlen, char *out, size_t outlen, char *errbuf,
                        size_t errlen)
{
    size_t o = 0;
    for (size_t i = 0; i < rawlen; i++) {
        int c = (unsigned char)raw[i];
        if (c == '%') {
            int hi = i + 2 < rawlen ? hexdigit((unsigned char)raw[i + 1]) : -1;
            int lo = i + 2 < rawlen ? hexdigit((unsigned char)raw[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                snprintf(errbuf, errlen, "path: bad percent-encoding at byte %zu", i);
                return NHID_ERR_INVALID;
            }
            c = hi << 4 | lo;
            i += 2;
            if (c == '/') {
                /* Kept encoded: a separator only ever comes from a literal '/'. */
                if (o + 3 >= outlen) {
                    snprintf(errbuf, errlen, "path: longer than %zu bytes", outlen - 1);
                    return NHID_ERR_TOO_LARGE;
                }
                memcpy(out + o, "%2F", 3);
                o += 3;
                continue;
            }
        }
        if (c < 0x20 || c == 0x7f) {
            snprintf(errbuf, errlen, "path: control character 0x%02x is not allowed", c);
            return NHID_ERR_INVALID;
        }
        if (o + 1 >= outlen) {
            snprintf(errbuf, errlen, "path: longer than %zu bytes", outlen - 1);
            return NHID_ERR_TOO_LARGE;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    /* Segment rules: no empty segment (except one trailing '/'), no "." or "..". */
    const char *p = out;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0) {
            snprintf(errbuf, errlen, "path: empty segment (\"//\") is not allowed");
            return NHID_ERR_INVALID;
        }
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
            snprintf(errbuf, errlen, "path: \".\" and \"..\" segments are not allowed");
            return NHID_ERR_INVALID;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    return NHID_OK;
}

const char *nhid_method_name(enum nhid_method m)
{
    switch (m) {
    case NHID_M_GET:
        return "GET";
    case NHID_M_PUT:
        return "PUT";
    case NHID_M_POST:
        return "POST";
    case NHID_M_DELETE:
        return "DELETE";
    case NHID_M_LIST:
        return "LIST";
    case NHID_M_PATCH:
        return "PATCH";
    case NHID_M_HEAD:
        return "HEAD";
    }
    return "?";
}

const char *nhid_method_action(enum nhid_method m)
{
    switch (m) {
    case NHID_M_GET:
    case NHID_M_HEAD:
        return "read";
    case NHID_M_LIST:
        return "list";
    case NHID_M_DELETE:
        return "delete";
    default:
        return "update";
    }
}

/* ---- request helpers ---------------------------------------------------- */

const char *nhid_req_param(const struct nhid_request *req, const char *name)
{
    for (unsigned i = 0; i < req->n_params; i++)
        if (strcmp(req->param_names[i], name) == 0)
            return req->param_values[i];
    return NULL;
}

char *nhid_req_query(const struct nhid_request *req, const char *name)
{
    if (req->query == NULL)
        return NULL;
    size_t nlen = strlen(name);
    const char *p = req->query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len >= nlen && strncmp(p, name, nlen) == 0 && (len == nlen || p[nlen] == '=')) {
            const char *v = len == nlen ? p + len : p + nlen + 1;
            size_t vlen = (size_t)(p + len - v);
            char *out = malloc(vlen + 1);
            if (out == NULL)
                return NULL;
            size_t o = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] == '+') {
                    out[o++] = ' ';
                } else if (v[i] == '%' && i + 2 < vlen && hexdigit((unsigned char)v[i + 1]) >= 0 &&
                           hexdigit((unsigned char)v[i + 2]) >= 0) {
                    out[o++] = (char)(hexdigit((unsigned char)v[i + 1]) << 4 |
                                      hexdigit((unsigned char)v[i + 2]));
                    i += 2;
                } else {
                    out[o++] = v[i];
                }
            }
            out[o] = '\0';
            return out;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return NULL;
}

/* ---- response helpers --------------------------------------------------- */

int nhid_resp_error(struct nhid_response *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp->status = status;
    if (resp->errors == NULL)
        resp->errors = json_array();
    if (resp->errors)
        json_array_append_new(resp->errors, json_string(msg));
    switch (status) {
    case 400:
        return NHID_ERR_INVALID;
    case 403:
        return NHID_ERR_DENIED;
    case 404:
        return NHID_ERR_NOT_FOUND;
    case 409:
        return NHID_ERR_CONFLICT;
    case 413:
        return NHID_ERR_TOO_LARGE;
    case 429:
        return NHID_ERR_RATE_LIMIT;
    case 502:
        return NHID_ERR_UPSTREAM;
    case 503:
        return NHID_ERR_UNAVAILABLE;
    default:
        return status >= 500 ? NHID_ERR_INTERNAL : NHID_ERR_INVALID;
    }
}

int nhid_resp_fail(struct nhid_response *resp, int err, const char *msg)
{
    nhid_resp_error(resp, nhid_err_http_status(err), "%s", msg ? msg : nhid_strerror(err));
    return err;
}

void nhid_response_clear(struct nhid_response *resp)
{
    json_decref(resp->data);
    json_decref(resp->auth);
    json_decref(resp->warnings);
    json_decref(resp->raw);
    json_decref(resp->errors);
    json_decref(resp->audit_extra);
    free(resp->lease_id);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

void nhid_auth_clear(struct nhid_auth *auth)
{
    json_decref(auth->policies);
    json_decref(auth->metadata);
    json_decref(auth->token);
    memset(auth, 0, sizeof(*auth));
}

void nhid_decision_clear(struct nhid_decision *d)
{
    json_decref(d->policies);
    json_decref(d->errors);
    memset(d, 0, sizeof(*d));
}

/* ---- body accessors ----------------------------------------------------- */

static json_t *body_get(struct nhid_request *req, const char *field)
{
    return req->body ? json_object_get(req->body, field) : NULL;
}

int nhid_body_string(struct nhid_request *req, struct nhid_response *resp, const char *field,
                     const char *def, const char **out)
{
    json_t *v = body_get(req, field);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return NHID_OK;
    }
    if (!json_is_string(v))
        return nhid_resp_error(resp, 400, "field \"%s\": expected a string", field);
    *out = json_string_value(v);
    return NHID_OK;
}

int nhid_body_bool(struct nhid_request *req, struct nhid_response *resp, const char *field,
                   bool def, bool *out)
{
    json_t *v = body_get(req, field);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return NHID_OK;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return NHID_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strcmp(s, "true") || !strcmp(s, "1")) {
            *out = true;
            return NHID_OK;
        }
        if (!strcmp(s, "false") || !strcmp(s, "0")) {
            *out = false;
            return NHID_OK;
        }
    }
    return nhid_resp_error(resp, 400, "field \"%s\": expected true or false", field);
}

int nhid_body_int(struct nhid_request *req, struct nhid_response *resp, const char *field,
                  int64_t def, int64_t min, int64_t max, int64_t *out)
{
    json_t *v = body_get(req, field);
    int64_t val;
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return NHID_OK;
    }
    if (json_is_integer(v)) {
        val = json_integer_value(v);
    } else if (json_is_string(v)) {
        char *end;
        const char *s = json_string_value(v);
        val = strtoll(s, &end, 10);
        if (*s == '\0' || *end != '\0')
            return nhid_resp_error(resp, 400, "field \"%s\": \"%.40s\" is not an integer", field,
                                   s);
    } else {
        return nhid_resp_error(resp, 400, "field \"%s\": expected an integer", field);
    }
    if (val < min || val > max)
        return nhid_resp_error(resp, 400, "field \"%s\": %lld is out of range [%lld, %lld]", field,
                               (long long)val, (long long)min, (long long)max);
    *out = val;
    return NHID_OK;
}

int nhid_body_duration(struct nhid_request *req, struct nhid_response *resp, const char *field,
                       int64_t def, int64_t *out)
{
    json_t *v = body_get(req, field);
    if (v == NULL || json_is_null(v)) {
        *out = def;
        return NHID_OK;
    }
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return nhid_resp_error(resp, 400, "field \"%s\": must not be negative", field);
        *out = json_integer_value(v);
        return NHID_OK;
    }
    if (!json_is_string(v))
        return nhid_resp_error(resp, 400,
                               "field \"%s\": expected a duration such as \"90s\", \"15m\" or "
                               "\"1h\", or a number of seconds",
                               field);
    char err[160];
    int64_t secs;
    if (nhid_duration_parse(json_string_value(v), &secs, err, sizeof(err)) < 0)
        return nhid_resp_error(resp, 400, "field \"%s\": %s", field, err);
    *out = secs;
    return NHID_OK;
}

int nhid_body_string_list(struct nhid_request *req, struct nhid_response *resp, const char *field,
                          json_t **out)
{
    json_t *v = body_get(req, field);
    json_t *list = json_array();
    if (list == NULL)
        return NHID_ERR_NOMEM;
    if (v == NULL || json_is_null(v)) {
        *out = list;
        return NHID_OK;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        while (*s) {
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            while (len && isspace((unsigned char)*s)) {
                s++;
                len--;
            }
            while (len && isspace((unsigned char)s[len - 1]))
                len--;
            if (len)
                json_array_append_new(list, json_stringn(s, len));
            s = comma ? comma + 1 : s + strlen(s);
        }
        *out = list;
        return NHID_OK;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e)) {
                json_decref(list);
                return nhid_resp_error(resp, 400, "field \"%s\": element %zu is not a string",
                                       field, i);
            }
            json_array_append(list, e);
        }
        *out = list;
        return NHID_OK;
    }
    json_decref(list);
    return nhid_resp_error(
        resp, 400, "field \"%s\": expected a list of strings or a comma-separated string", field);
}

int nhid_body_only(struct nhid_request *req, struct nhid_response *resp, const char *const *allowed)
{
    if (req->body == NULL)
        return NHID_OK;
    const char *key;
    json_t *v;
    json_object_foreach(req->body, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok) {
            char list[512] = "";
            size_t used = 0;
            for (const char *const *a = allowed; *a && used + 40 < sizeof(list); a++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                         a == allowed ? "" : ", ", *a);
            return nhid_resp_error(resp, 400, "unknown field \"%s\" (accepted: %s)", key, list);
        }
    }
    return NHID_OK;
}

const char *nhid_json_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

int64_t nhid_json_int(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* ---- JSON storage through the barrier ----------------------------------- */

int nhid_core_load_json(struct nhid_core *core, struct nhid_txn *txn, const char *key, json_t **out)
{
    uint8_t *val = NULL;
    size_t len = 0;
    int rc = nhid_barrier_get(core->barrier, txn, key, &val, &len);
    if (rc < 0)
        return rc;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)val, len, JSON_ALLOW_NUL, &jerr);
    nhid_free_secret(val, len);
    if (j == NULL) {
        nhid_error("engine", "stored entry %s is not valid JSON", key);
        return NHID_ERR_INTERNAL;
    }
    *out = j;
    return NHID_OK;
}

int nhid_core_save_json(struct nhid_core *core, struct nhid_txn *txn, const char *key,
                        const json_t *val)
{
    if (val == NULL)
        return NHID_ERR_INVALID;
    /* One pass, jansson's bytes (core/json_text.h); values may be secrets: wiped after. */
    struct nhid_text t = {0};
    nhid_text_json(&t, val);
    int rc = t.failed ? NHID_ERR_NOMEM
                      : nhid_barrier_put(core->barrier, txn, key, (const uint8_t *)t.buf, t.len);
    nhid_text_free_secret(&t);
    return rc;
}

struct core_write_ctx {
    struct nhid_core *core;
    int (*fn)(struct nhid_core *, struct nhid_txn *, void *);
    void *arg;
};

static int core_write_job(struct nhid_txn *txn, void *arg)
{
    struct core_write_ctx *c = arg;
    return c->fn(c->core, txn, c->arg);
}

int nhid_core_write(struct nhid_core *core,
                    int (*fn)(struct nhid_core *core, struct nhid_txn *txn, void *arg), void *arg)
{
    struct core_write_ctx c = {core, fn, arg};
    return nhid_store_write(core->store, core_write_job, &c);
}

void **nhid_core_state(struct nhid_core *core, const char *engine_name)
{
    for (size_t i = 0; i < core->n_engines && i < NHID_ARRAY_LEN(core->engine_state); i++)
        if (strcmp(core->engines[i]->name, engine_name) == 0)
            return &core->engine_state[i];
    return NULL;
}
