/*
 * cedar/value.c — arena, strings, the value model (hashing, equality,
 * sets, records), extension literal parsing and Cedar JSON values.
 *
 * Extension semantics follow the reference implementation's extensions
 * (cedar-policy-core/src/extensions/{ipaddr,decimal,datetime}.rs).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cedar/internal.h"

/* ---- arena ------------------------------------------------------------------ */

#define ARENA_BLOCK 65536

struct cedar_arena_block {
    struct cedar_arena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void cedar_arena_init(struct cedar_arena *a)
{
    memset(a, 0, sizeof(*a));
}

void *cedar_arena_alloc(struct cedar_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (a->limit && a->total + n > a->limit)
        return NULL;
    struct cedar_arena_block *b = a->head;
    if (b == NULL || b->size - b->used < n) {
        size_t sz = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
        struct cedar_arena_block *nb = malloc(sizeof(*nb) + sz);
        if (nb == NULL)
            return NULL;
        nb->size = sz;
        nb->used = 0;
        if (b != NULL && sz != ARENA_BLOCK) {
            /* a big one-off block goes behind the current one so the
             * current block keeps serving small allocations */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

char *cedar_arena_strndup(struct cedar_arena *a, const char *s, size_t len)
{
    char *p = cedar_arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void cedar_arena_reset(struct cedar_arena *a)
{
    struct cedar_arena_block *keep = NULL, *b = a->head;
    while (b != NULL) {
        struct cedar_arena_block *next = b->next;
        if (keep == NULL && b->size == ARENA_BLOCK) {
            keep = b;
            keep->used = 0;
            keep->next = NULL;
        } else {
            free(b);
        }
        b = next;
    }
    a->head = keep;
    a->total = 0;
}

void cedar_arena_free(struct cedar_arena *a)
{
    if (a == NULL)
        return;
    struct cedar_arena_block *b = a->head;
    while (b != NULL) {
        struct cedar_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---- hashing ------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    h ^= 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h ^ n);
}

uint64_t cedar_uid_hash(const char *type, size_t tlen, const char *id, size_t idlen)
{
    return hash_bytes(hash_bytes(0x51d, type, tlen), id, idlen);
}

uint64_t cedar_value_hash(const struct cedar_value *v)
{
    switch (v->kind) {
    case CEDAR_V_BOOL:
        return mix64(0x100 + v->u.b);
    case CEDAR_V_LONG:
        return mix64((uint64_t)v->u.l ^ 0x2000000000000000ULL) ^ 0x200;
    case CEDAR_V_STRING:
        return hash_bytes(0x300, v->u.s.ptr, v->u.s.len);
    case CEDAR_V_ENTITY:
        return v->u.uid->hash ^ 0x400;
    case CEDAR_V_SET: {
        uint64_t h = 0x500;
        for (size_t i = 0; i < v->u.set->n; i++)
            h += v->u.set->hashes[i]; /* order-independent */
        return mix64(h);
    }
    case CEDAR_V_RECORD: {
        uint64_t h = 0x600;
        for (size_t i = 0; i < v->u.rec->n; i++) {
            const struct cedar_record_attr *at = &v->u.rec->attrs[i];
            h = mix64(h ^ hash_bytes(0x601, at->key.ptr, at->key.len));
            h = mix64(h + cedar_value_hash(&at->val));
        }
        return h;
    }
    case CEDAR_V_EXT:
        if (v->ext_kind == CEDAR_EXT_IPADDR) {
            const struct cedar_ipaddr *ip = v->u.ip;
            uint64_t h = hash_bytes(0x700 + ip->v6, ip->addr, 16);
            return mix64(h + ip->prefix);
        }
        return mix64((uint64_t)v->u.decimal + 0x800 + v->ext_kind);
    }
    return 0;
}

/* ---- strings ------------------------------------------------------------------ */

int cedar_str_cmp(const struct cedar_str *a, const struct cedar_str *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->ptr, b->ptr, n) : 0;
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

bool cedar_str_eq(const struct cedar_str *a, const struct cedar_str *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

bool cedar_uid_eq(const struct cedar_uid *a, const struct cedar_uid *b)
{
    return a == b || (a->hash == b->hash && cedar_str_eq(&a->type, &b->type) &&
                      cedar_str_eq(&a->id, &b->id));
}

int cedar_uid_make(struct cedar_arena *arena, const char *type, const char *id,
                   struct cedar_uid *out)
{
    size_t tl = strlen(type), il = strlen(id);
    char *t = cedar_arena_strndup(arena, type, tl);
    char *i = cedar_arena_strndup(arena, id, il);
    if (t == NULL || i == NULL)
        return NHID_ERR_NOMEM;
    out->type = (struct cedar_str){t, tl};
    out->id = (struct cedar_str){i, il};
    out->hash = cedar_uid_hash(t, tl, i, il);
    return NHID_OK;
}

size_t cedar_utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return i;
        i += n + 1;
    }
    return len;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cedar_unescape(struct cedar_arena *a, const char *raw, size_t len, bool pattern,
                   struct cedar_str *out, struct cedar_pattern **pat, char *err, size_t errlen,
                   size_t *err_off)
{
    /* Output is never longer than the input (escapes shrink). */
    char *buf = cedar_arena_alloc(a, len + 1);
    /* pattern elements: at most len + 1 */
    struct cedar_pattern_elem *elems = NULL;
    size_t nel = 0, run_start = 0;
    if (buf == NULL)
        goto oom;
    if (pattern) {
        elems = cedar_arena_alloc(a, (len + 1) * sizeof(*elems));
        if (elems == NULL)
            goto oom;
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        char c = raw[i];
        if (pattern && c == '*') {
            if (o > run_start) {
                elems[nel].wildcard = false;
                elems[nel].lit = (struct cedar_str){buf + run_start, o - run_start};
                nel++;
            }
            if (nel == 0 || !elems[nel - 1].wildcard) /* `**` == `*` */
                elems[nel++].wildcard = true;
            i++;
            /* literal text after a wildcard starts a new run; keep bytes
             * contiguous by terminating the previous run */
            run_start = o;
            continue;
        }
        if (c != '\\') {
            buf[o++] = c;
            i++;
            continue;
        }
        size_t esc = i;
        if (i + 1 >= len) {
            snprintf(err, errlen, "incomplete escape at end of string");
            *err_off = esc;
            return -1;
        }
        char e = raw[i + 1];
        i += 2;
        switch (e) {
        case 'n': buf[o++] = '\n'; break;
        case 'r': buf[o++] = '\r'; break;
        case 't': buf[o++] = '\t'; break;
        case '\\': buf[o++] = '\\'; break;
        case '0': buf[o++] = '\0'; break;
        case '\'': buf[o++] = '\''; break;
        case '"': buf[o++] = '"'; break;
        case '*':
            if (!pattern) {
                snprintf(err, errlen, "invalid escape `\\*` (only allowed in `like` patterns)");
                *err_off = esc;
                return -1;
            }
            buf[o++] = '*';
            break;
        case 'x': {
            int h1 = i < len ? hexval(raw[i]) : -1;
            int h2 = i + 1 < len ? hexval(raw[i + 1]) : -1;
            if (h1 < 0 || h2 < 0 || h1 > 7) {
                snprintf(err, errlen, "invalid escape `\\x`: expected two hex digits <= 7F");
                *err_off = esc;
                return -1;
            }
            buf[o++] = (char)(h1 * 16 + h2);
            i += 2;
            break;
        }
        case 'u': {
            if (i >= len || raw[i] != '{') {
                snprintf(err, errlen, "invalid unicode escape: expected `\\u{...}`");
                *err_off = esc;
                return -1;
            }
            i++;
            uint32_t cp = 0;
            size_t nd = 0;
            while (i < len && raw[i] != '}') {
                int h = hexval(raw[i]);
                if (h < 0 && raw[i] != '_') {
                    nd = 99;
                    break;
                }
                if (h >= 0) {
                    cp = cp * 16 + (uint32_t)h;
                    nd++;
                }
                if (nd > 6)
                    break;
                i++;
            }
            if (i >= len || raw[i] != '}' || nd == 0 || nd > 6 || cp > 0x10ffff ||
                (cp >= 0xd800 && cp <= 0xdfff)) {
                snprintf(err, errlen, "invalid unicode escape (expected 1 to 6 hex digits "
                                      "naming a Unicode scalar value)");
                *err_off = esc;
                return -1;
            }
            i++;
            char tmp[4];
            size_t n = utf8_encode(cp, tmp);
            memcpy(buf + o, tmp, n);
            o += n;
            break;
        }
        case '\n':
            /* line continuation: skip following whitespace */
            while (i < len && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r'))
                i++;
            break;
        default:
            snprintf(err, errlen, "invalid escape `\\%c`", e);
            *err_off = esc;
            return -1;
        }
    }
    buf[o] = '\0';
    if (pattern) {
        if (o > run_start) {
            elems[nel].wildcard = false;
            elems[nel].lit = (struct cedar_str){buf + run_start, o - run_start};
            nel++;
        }
        struct cedar_pattern *p = cedar_arena_alloc(a, sizeof(*p));
        if (p == NULL)
            goto oom;
        p->n = nel;
        p->elems = elems;
        *pat = p;
    } else {
        out->ptr = buf;
        out->len = o;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    *err_off = 0;
    return -1;
}

/* ---- sets and records ----------------------------------------------------------- */

const struct cedar_record cedar_empty_record = {0, NULL};

struct hv {
    uint64_t h;
    struct cedar_value v;
};

static int hv_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct hv *)a)->h, y = ((const struct hv *)b)->h;
    return x < y ? -1 : x > y;
}

int cedar_set_build(struct cedar_arena *a, const struct cedar_value *elems, size_t n,
                    const struct cedar_set **out)
{
    struct cedar_set *s = cedar_arena_alloc(a, sizeof(*s));
    if (s == NULL)
        return NHID_ERR_NOMEM;
    if (n == 0) {
        *out = s;
        return NHID_OK;
    }
    struct hv *tmp = malloc(n * sizeof(*tmp));
    struct cedar_value *ev = cedar_arena_alloc(a, n * sizeof(*ev));
    uint64_t *hs = cedar_arena_alloc(a, n * sizeof(*hs));
    if (tmp == NULL || ev == NULL || hs == NULL) {
        free(tmp);
        return NHID_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        tmp[i].h = cedar_value_hash(&elems[i]);
        tmp[i].v = elems[i];
    }
    if (n > 1)
        qsort(tmp, n, sizeof(*tmp), hv_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        /* compare against kept elements with the same hash */
        for (size_t k = m; k > 0 && hs[k - 1] == tmp[i].h; k--) {
            if (cedar_value_equal(&ev[k - 1], &tmp[i].v)) {
                dup = true;
                break;
            }
        }
        if (!dup) {
            hs[m] = tmp[i].h;
            ev[m] = tmp[i].v;
            m++;
        }
    }
    free(tmp);
    s->n = m;
    s->elems = ev;
    s->hashes = hs;
    *out = s;
    return NHID_OK;
}

static bool set_contains_h(const struct cedar_set *s, const struct cedar_value *v, uint64_t h)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->hashes[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < s->n && s->hashes[i] == h; i++)
        if (cedar_value_equal(&s->elems[i], v))
            return true;
    return false;
}

bool cedar_set_contains(const struct cedar_set *s, const struct cedar_value *v)
{
    if (s->n == 0)
        return false;
    return set_contains_h(s, v, cedar_value_hash(v));
}

static int attr_cmp(const void *a, const void *b)
{
    return cedar_str_cmp(&((const struct cedar_record_attr *)a)->key,
                         &((const struct cedar_record_attr *)b)->key);
}

int cedar_record_build(struct cedar_arena *a, const struct cedar_record_attr *attrs, size_t n,
                       bool dup_error, const struct cedar_record **out)
{
    struct cedar_record *r = cedar_arena_alloc(a, sizeof(*r));
    struct cedar_record_attr *v = n ? cedar_arena_alloc(a, n * sizeof(*v)) : NULL;
    if (r == NULL || (n && v == NULL))
        return NHID_ERR_NOMEM;
    if (n)
        memcpy(v, attrs, n * sizeof(*v));
    /* stable merge sort is not needed: for duplicates, dup_error=false
     * callers (JSON objects) never produce duplicate keys */
    if (n > 1)
        qsort(v, n, sizeof(*v), attr_cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && cedar_str_eq(&v[m - 1].key, &v[i].key)) {
            if (dup_error)
                return NHID_ERR_EXISTS;
            v[m - 1] = v[i];
            continue;
        }
        v[m++] = v[i];
    }
    r->n = m;
    r->attrs = v;
    *out = r;
    return NHID_OK;
}

const struct cedar_value *cedar_record_get(const struct cedar_record *r, const char *key,
                                           size_t len)
{
    struct cedar_str k = {key, len};
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cedar_str_cmp(&r->attrs[mid].key, &k);
        if (c == 0)
            return &r->attrs[mid].val;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- equality ------------------------------------------------------------------- */

bool cedar_value_equal(const struct cedar_value *a, const struct cedar_value *b)
{
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case CEDAR_V_BOOL:
        return a->u.b == b->u.b;
    case CEDAR_V_LONG:
        return a->u.l == b->u.l;
    case CEDAR_V_STRING:
        return cedar_str_eq(&a->u.s, &b->u.s);
    case CEDAR_V_ENTITY:
        return cedar_uid_eq(a->u.uid, b->u.uid);
    case CEDAR_V_SET: {
        const struct cedar_set *x = a->u.set, *y = b->u.set;
        if (x == y)
            return true;
        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++)
            if (!set_contains_h(y, &x->elems[i], x->hashes[i]))
                return false;
        return true;
    }
    case CEDAR_V_RECORD: {
        const struct cedar_record *x = a->u.rec, *y = b->u.rec;
        if (x == y)
            return true;
        if (x->n != y->n)
            return false;
        for (size_t i = 0; i < x->n; i++) {
            if (!cedar_str_eq(&x->attrs[i].key, &y->attrs[i].key) ||
                !cedar_value_equal(&x->attrs[i].val, &y->attrs[i].val))
                return false;
        }
        return true;
    }
    case CEDAR_V_EXT:
        if (a->ext_kind != b->ext_kind)
            return false;
        if (a->ext_kind == CEDAR_EXT_IPADDR) {
            const struct cedar_ipaddr *x = a->u.ip, *y = b->u.ip;
            return x->v6 == y->v6 && x->prefix == y->prefix && memcmp(x->addr, y->addr, 16) == 0;
        }
        return a->u.decimal == b->u.decimal;
    }
    return false;
}

const char *cedar_value_type_name(const struct cedar_value *v)
{
    switch (v->kind) {
    case CEDAR_V_BOOL: return "bool";
    case CEDAR_V_LONG: return "long";
    case CEDAR_V_STRING: return "string";
    case CEDAR_V_ENTITY: return "entity";
    case CEDAR_V_SET: return "set";
    case CEDAR_V_RECORD: return "record";
    case CEDAR_V_EXT:
        switch (v->ext_kind) {
        case CEDAR_EXT_IPADDR: return "ipaddr";
        case CEDAR_EXT_DECIMAL: return "decimal";
        case CEDAR_EXT_DATETIME: return "datetime";
        case CEDAR_EXT_DURATION: return "duration";
        }
    }
    return "unknown";
}

/* ---- extension literals ------------------------------------------------------- */

#define EXT_ERR(...)                                                                   \
    do {                                                                               \
        snprintf(err, errlen, __VA_ARGS__);                                            \
        return -1;                                                                     \
    } while (0)

static bool isdig(char c)
{
    return c >= '0' && c <= '9';
}

/* IPv4 dotted quad as Rust's std parses it: 4 decimal parts of 1-3 digits,
 * each <= 255, no leading zeros. */
static bool parse_v4(const char *s, size_t len, uint8_t out[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
        size_t st = i;
        unsigned v = 0;
        while (i < len && isdig(s[i]) && i - st < 3) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        size_t nd = i - st;
        if (nd == 0 || v > 255 || (nd > 1 && s[st] == '0'))
            return false;
        out[part] = (uint8_t)v;
    }
    return i == len;
}

/* Read up to `limit` hex groups separated by ':' (Rust std semantics). */
static size_t v6_groups(const char *s, size_t len, size_t *pos, uint16_t *g, size_t limit)
{
    size_t n = 0;
    size_t i = *pos;
    while (n < limit) {
        size_t save = i;
        if (n > 0) {
            if (i >= len || s[i] != ':')
                break;
            i++;
        }
        size_t st = i;
        unsigned v = 0;
        while (i < len && hexval(s[i]) >= 0 && i - st < 4) {
            v = v * 16 + (unsigned)hexval(s[i]);
            i++;
        }
        if (i == st) {
            i = save;
            break;
        }
        g[n++] = (uint16_t)v;
    }
    *pos = i;
    return n;
}

static bool parse_v6(const char *s, size_t len, uint8_t out[16])
{
    uint16_t head[8] = {0}, tail[8] = {0};
    size_t i = 0;
    size_t hn = v6_groups(s, len, &i, head, 8);
    if (hn == 8) {
        if (i != len)
            return false;
    } else {
        if (i + 1 >= len || s[i] != ':' || s[i + 1] != ':')
            return false;
        i += 2;
        size_t limit = 8 - (hn + 1);
        size_t tn = v6_groups(s, len, &i, tail, limit);
        if (i != len)
            return false;
        for (size_t k = 0; k < tn; k++)
            head[8 - tn + k] = tail[k];
    }
    for (int k = 0; k < 8; k++) {
        out[2 * k] = (uint8_t)(head[k] >> 8);
        out[2 * k + 1] = (uint8_t)(head[k] & 0xff);
    }
    return true;
}

static bool parse_addr(const char *s, size_t len, struct cedar_ipaddr *ip)
{
    memset(ip, 0, sizeof(*ip));
    if (parse_v4(s, len, ip->addr)) {
        ip->v6 = false;
        ip->prefix = 32;
        return true;
    }
    if (parse_v6(s, len, ip->addr)) {
        ip->v6 = true;
        ip->prefix = 128;
        return true;
    }
    return false;
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == c;
    return n;
}

int cedar_ip_parse(const char *s, size_t len, struct cedar_ipaddr *out, char *err, size_t errlen)
{
    /* Cedar refuses IPv4 embedded in IPv6 ("::ffff:1.2.3.4"). */
    if (count_char(s, len, ':') >= 2 && count_char(s, len, '.') >= 2)
        EXT_ERR("IPv4 embedded in IPv6 is not accepted");
    struct cedar_ipaddr ip;
    if (parse_addr(s, len, &ip)) {
        *out = ip;
        return 0;
    }
    const char *slash = memchr(s, '/', len);
    if (slash == NULL)
        EXT_ERR("invalid IP address");
    size_t alen = (size_t)(slash - s);
    if (!parse_addr(s, alen, &ip))
        EXT_ERR("invalid IP address before the `/`");
    /* subnet: a u8 as Rust parses it (optional '+', decimal digits) */
    const char *p = slash + 1;
    size_t plen = len - alen - 1;
    size_t i = 0;
    if (plen > 0 && p[0] == '+')
        i++;
    if (i >= plen)
        EXT_ERR("invalid prefix length");
    unsigned v = 0;
    for (; i < plen; i++) {
        if (!isdig(p[i]))
            EXT_ERR("invalid prefix length");
        v = v * 10 + (unsigned)(p[i] - '0');
        if (v > 255)
            EXT_ERR("prefix length out of range");
    }
    if ((!ip.v6 && v > 32) || (ip.v6 && v > 128))
        EXT_ERR("prefix length %u too large", v);
    ip.prefix = (uint8_t)v;
    *out = ip;
    return 0;
}

/* Parse an ASCII decimal integer into i64 as Rust's i64::from_str does
 * (optional sign); false on overflow or a bad digit. */
static bool parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i >= len)
        return false;
    __int128 v = 0;
    for (; i < len; i++) {
        if (!isdig(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > ((__int128)1 << 64))
            return false;
    }
    if (neg)
        v = -v;
    if (v > INT64_MAX || v < INT64_MIN)
        return false;
    *out = (int64_t)v;
    return true;
}

int cedar_decimal_parse(const char *s, size_t len, int64_t *out, char *err, size_t errlen)
{
    /* ^(-?\d+)\.(\d+)$ */
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    size_t ls = i;
    while (i < len && isdig(s[i]))
        i++;
    if (i == ls || i >= len || s[i] != '.')
        EXT_ERR("`%.*s` is not a well-formed decimal value", (int)(len > 64 ? 64 : len), s);
    size_t dot = i++;
    size_t rs = i;
    while (i < len && isdig(s[i]))
        i++;
    if (i == rs || i != len)
        EXT_ERR("`%.*s` is not a well-formed decimal value", (int)(len > 64 ? 64 : len), s);
    int64_t l;
    if (!parse_i64(s, dot, &l))
        EXT_ERR("overflow when converting to decimal");
    if (__builtin_mul_overflow(l, (int64_t)10000, &l))
        EXT_ERR("overflow when converting to decimal");
    size_t rlen = len - rs;
    if (rlen > 4)
        EXT_ERR("too many digits after the decimal (at most 4 are supported)");
    int64_t r = 0;
    for (size_t k = rs; k < len; k++)
        r = r * 10 + (s[k] - '0');
    for (size_t k = rlen; k < 4; k++)
        r *= 10;
    int64_t v;
    /* The reference adds the fraction when the integer part is >= 0, which
     * it is for "-0.x"; the sign of the text decides here, which matches
     * current Cedar releases. */
    bool neg = s[0] == '-';
    if (neg ? __builtin_sub_overflow(l, r, &v) : __builtin_add_overflow(l, r, &v))
        EXT_ERR("overflow when converting to decimal");
    *out = v;
    return 0;
}

int cedar_duration_parse(const char *s, size_t len, int64_t *out, char *err, size_t errlen)
{
    /* ^-?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$ */
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (len == 0 || (len == 1 && s[0] == '-'))
        EXT_ERR("invalid duration pattern");
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        i = 1;
    }
    size_t next_unit = 0;
    __int128 total = 0;
    bool overflow = false;
    while (i < len) {
        size_t ds = i;
        while (i < len && isdig(s[i]))
            i++;
        if (i == ds)
            EXT_ERR("invalid duration pattern");
        size_t de = i;
        size_t us = i;
        while (i < len && !isdig(s[i]))
            i++;
        size_t ul = i - us;
        size_t u;
        for (u = next_unit; u < 5; u++)
            if (strlen(units[u].unit) == ul && memcmp(units[u].unit, s + us, ul) == 0)
                break;
        if (u == 5)
            EXT_ERR("invalid duration pattern");
        next_unit = u + 1;
        unsigned __int128 num = 0;
        for (size_t k = ds; k < de; k++) {
            num = num * 10 + (unsigned)(s[k] - '0');
            if (num > UINT64_MAX) {
                overflow = true;
                num = UINT64_MAX;
            }
        }
        if (units[u].ms != 1 && num > (unsigned __int128)INT64_MAX)
            overflow = true;
        total += (__int128)num * units[u].ms;
        if (total > ((__int128)1 << 100))
            overflow = true, total = (__int128)1 << 100;
    }
    if (neg)
        total = -total;
    if (overflow || total > INT64_MAX || total < INT64_MIN)
        EXT_ERR("duration overflows internal representation");
    *out = (int64_t)total;
    return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned num2(const char *s)
{
    return (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdig(s[i]))
            return false;
    return true;
}

int cedar_datetime_parse(const char *s, size_t len, int64_t *out, char *err, size_t errlen)
{
    if (len < 10 || !all_digits(s, 4) || s[4] != '-' || !all_digits(s + 5, 2) || s[7] != '-' ||
        !all_digits(s + 8, 2))
        EXT_ERR("invalid date pattern (a datetime starts with YYYY-MM-DD)");
    unsigned y = num2(s) * 100 + num2(s + 2), mo = num2(s + 5), d = num2(s + 8);
    static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    bool date_ok = mo >= 1 && mo <= 12 && d >= 1 &&
                   d <= mdays[mo >= 1 && mo <= 12 ? mo - 1 : 0] + (mo == 2 && leap);
    int64_t ms = 0;
    if (len > 10) {
        const char *t = s + 10;
        size_t tl = len - 10;
        if (tl < 9 || t[0] != 'T' || !all_digits(t + 1, 2) || t[3] != ':' ||
            !all_digits(t + 4, 2) || t[6] != ':' || !all_digits(t + 7, 2))
            EXT_ERR("invalid hour/minute/second pattern");
        unsigned hh = num2(t + 1), mi = num2(t + 4), ss = num2(t + 7);
        const char *r = t + 9;
        size_t rl = tl - 9;
        unsigned milli = 0;
        if (rl >= 4 && r[0] == '.' && all_digits(r + 1, 3)) {
            milli = num2(r + 1) * 10 + (unsigned)(r[3] - '0');
            r += 4;
            rl -= 4;
        }
        int64_t off = 0;
        bool off_ok = true;
        unsigned oh = 0, om = 0;
        if (rl == 1 && r[0] == 'Z') {
            off = 0;
        } else if (rl == 5 && (r[0] == '+' || r[0] == '-') && all_digits(r + 1, 4)) {
            oh = num2(r + 1);
            om = num2(r + 3);
            off = ((int64_t)oh * 3600 + om * 60) * (r[0] == '+' ? 1 : -1);
            off_ok = oh < 24 && om < 60;
        } else {
            EXT_ERR("invalid millisecond and/or offset pattern");
        }
        if (!date_ok)
            EXT_ERR("invalid date");
        if (hh >= 24 || mi >= 60 || ss >= 60)
            EXT_ERR("invalid hour/minute/second");
        if (!off_ok)
            EXT_ERR("invalid offset range");
        ms = ((int64_t)hh * 3600 + mi * 60 + ss - off) * 1000 + milli;
    } else if (!date_ok) {
        EXT_ERR("invalid date");
    }
    *out = days_from_civil(y, mo, d) * 86400000 + ms;
    return 0;
}

/* ---- text output ------------------------------------------------------------------ */

void cedar_buf_put(struct cedar_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void cedar_buf_puts(struct cedar_buf *b, const char *s)
{
    cedar_buf_put(b, s, strlen(s));
}

void cedar_buf_printf(struct cedar_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        cedar_buf_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cedar_buf_put(b, big, (size_t)n);
    free(big);
}

void cedar_buf_quote(struct cedar_buf *b, const char *s, size_t n)
{
    cedar_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': cedar_buf_puts(b, "\\\""); break;
        case '\\': cedar_buf_puts(b, "\\\\"); break;
        case '\n': cedar_buf_puts(b, "\\n"); break;
        case '\r': cedar_buf_puts(b, "\\r"); break;
        case '\t': cedar_buf_puts(b, "\\t"); break;
        case '\0': cedar_buf_puts(b, "\\0"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                cedar_buf_printf(b, "\\u{%x}", c);
            else
                cedar_buf_put(b, (const char *)&c, 1);
        }
    }
    cedar_buf_put(b, "\"", 1);
}

void cedar_buf_free(struct cedar_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void cedar_buf_uid(struct cedar_buf *b, const struct cedar_uid *u)
{
    cedar_buf_put(b, u->type.ptr, u->type.len);
    cedar_buf_puts(b, "::");
    cedar_buf_quote(b, u->id.ptr, u->id.len);
}

static void fmt_ip(struct cedar_buf *b, const struct cedar_ipaddr *ip)
{
    if (!ip->v6) {
        cedar_buf_printf(b, "%u.%u.%u.%u", ip->addr[0], ip->addr[1], ip->addr[2], ip->addr[3]);
    } else {
        for (int k = 0; k < 8; k++)
            cedar_buf_printf(b, "%s%x", k ? ":" : "", (ip->addr[2 * k] << 8) | ip->addr[2 * k + 1]);
    }
    if (ip->prefix != (ip->v6 ? 128 : 32))
        cedar_buf_printf(b, "/%u", ip->prefix);
}

void cedar_buf_value(struct cedar_buf *b, const struct cedar_value *v)
{
    switch (v->kind) {
    case CEDAR_V_BOOL:
        cedar_buf_puts(b, v->u.b ? "true" : "false");
        break;
    case CEDAR_V_LONG:
        cedar_buf_printf(b, "%" PRId64, v->u.l);
        break;
    case CEDAR_V_STRING:
        cedar_buf_quote(b, v->u.s.ptr, v->u.s.len);
        break;
    case CEDAR_V_ENTITY:
        cedar_buf_uid(b, v->u.uid);
        break;
    case CEDAR_V_SET:
        cedar_buf_puts(b, "[");
        for (size_t i = 0; i < v->u.set->n; i++) {
            if (i)
                cedar_buf_puts(b, ", ");
            cedar_buf_value(b, &v->u.set->elems[i]);
        }
        cedar_buf_puts(b, "]");
        break;
    case CEDAR_V_RECORD:
        cedar_buf_puts(b, "{");
        for (size_t i = 0; i < v->u.rec->n; i++) {
            if (i)
                cedar_buf_puts(b, ", ");
            cedar_buf_quote(b, v->u.rec->attrs[i].key.ptr, v->u.rec->attrs[i].key.len);
            cedar_buf_puts(b, ": ");
            cedar_buf_value(b, &v->u.rec->attrs[i].val);
        }
        cedar_buf_puts(b, "}");
        break;
    case CEDAR_V_EXT:
        switch (v->ext_kind) {
        case CEDAR_EXT_IPADDR:
            cedar_buf_puts(b, "ip(\"");
            fmt_ip(b, v->u.ip);
            cedar_buf_puts(b, "\")");
            break;
        case CEDAR_EXT_DECIMAL: {
            int64_t x = v->u.decimal;
            uint64_t ax = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
            cedar_buf_printf(b, "decimal(\"%s%" PRIu64 ".%04" PRIu64 "\")", x < 0 ? "-" : "",
                             ax / 10000, ax % 10000);
            break;
        }
        case CEDAR_EXT_DATETIME:
            cedar_buf_printf(b, "datetime(\"1970-01-01\").offset(duration(\"%" PRId64 "ms\"))",
                             v->u.datetime);
            break;
        case CEDAR_EXT_DURATION:
            cedar_buf_printf(b, "duration(\"%" PRId64 "ms\")", v->u.duration);
            break;
        }
        break;
    }
}

void cedar_value_format(const struct cedar_value *v, char *out, size_t outlen)
{
    struct cedar_buf b = {0};
    cedar_buf_value(&b, v);
    snprintf(out, outlen, "%s", b.p && !b.oom ? b.p : "?");
    cedar_buf_free(&b);
}

/* ---- JSON ----------------------------------------------------------------------- */

#define JSON_MAX_DEPTH CEDAR_MAX_DEPTH

/* A valid Cedar name: Ident ('::' Ident)*. */
static bool valid_type_name(const char *s, size_t len)
{
    size_t i = 0;
    for (;;) {
        if (i >= len || !(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
        while (i < len && (s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
                           (s[i] >= 'A' && s[i] <= 'Z') || isdig(s[i])))
            i++;
        if (i == len)
            return true;
        if (i + 2 > len || s[i] != ':' || s[i + 1] != ':')
            return false;
        i += 2;
    }
}

/*
 * jansson cannot hold NUL in object keys, but Cedar attribute names and
 * strings may contain it. cedar_json_loadb rewrites the JSON escape
 * \u0000 to U+F0000 (a private-use code point) before parsing, and every
 * conversion to a Cedar value maps U+F0000 back to NUL. (A literal
 * U+F0000 in input therefore also reads as NUL; documented limitation.)
 */
#define NUL_STANDIN "\xF3\xB0\x80\x80"

json_t *cedar_json_loadb(const char *text, size_t len, size_t flags, json_error_t *je)
{
    size_t extra = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_str) {
            in_str = text[i] == '"';
            continue;
        }
        if (text[i] == '"') {
            in_str = false;
        } else if (text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0)
                extra++;
            i++;
        }
    }
    if (extra == 0)
        return json_loadb(text, len, flags, je);
    char *buf = malloc(len + extra * 6 + 1);
    if (buf == NULL) {
        snprintf(je->text, sizeof(je->text), "out of memory");
        return NULL;
    }
    size_t o = 0;
    in_str = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_str) {
            in_str = text[i] == '"';
            buf[o++] = text[i];
            continue;
        }
        if (text[i] == '"') {
            in_str = false;
            buf[o++] = text[i];
        } else if (text[i] == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && memcmp(text + i + 2, "0000", 4) == 0) {
                memcpy(buf + o, "\\uDB80\\uDC00", 12);
                o += 12;
                i += 5;
            } else {
                buf[o++] = text[i];
                buf[o++] = text[i + 1];
                i++;
            }
        } else {
            buf[o++] = text[i];
        }
    }
    json_t *j = json_loadb(buf, o, flags, je);
    free(buf);
    return j;
}

json_t *cedar_json_load_file(const char *path, size_t flags, json_error_t *je)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(je->text, sizeof(je->text), "cannot open %s", path);
        je->line = je->column = 0;
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    while (b != NULL) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
        if (n == cap) {
            char *nb = cap < (512u << 20) ? realloc(b, cap * 2) : NULL;
            if (nb == NULL) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b == NULL) {
        snprintf(je->text, sizeof(je->text), "%s: out of memory or too large", path);
        return NULL;
    }
    json_t *j = cedar_json_loadb(b, n, flags, je);
    free(b);
    return j;
}

/* Copy a JSON string into arena, mapping the NUL stand-in back to NUL. */
static char *json_str_dup(struct cedar_arena *a, const char *s, size_t len, size_t *olen)
{
    char *d = cedar_arena_strndup(a, s, len);
    if (d == NULL)
        return NULL;
    if (len < 4 || memmem(s, len, NUL_STANDIN, 4) == NULL) {
        *olen = len;
        return d;
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (i + 4 <= len && memcmp(s + i, NUL_STANDIN, 4) == 0) {
            d[o++] = '\0';
            i += 4;
        } else {
            d[o++] = s[i++];
        }
    }
    d[o] = '\0';
    *olen = o;
    return d;
}

static int uid_from_type_id(struct cedar_arena *arena, const json_t *o, const struct cedar_uid **out,
                            char *err, size_t errlen)
{
    json_t *t = json_object_get(o, "type"), *id = json_object_get(o, "id");
    if (!json_is_string(t) || !json_is_string(id) || json_object_size(o) != 2) {
        snprintf(err, errlen, "entity reference must be {\"type\": string, \"id\": string}");
        return NHID_ERR_INVALID;
    }
    size_t tl = json_string_length(t), il = json_string_length(id);
    if (!valid_type_name(json_string_value(t), tl)) {
        snprintf(err, errlen, "invalid entity type name \"%.64s\"", json_string_value(t));
        return NHID_ERR_INVALID;
    }
    struct cedar_uid *u = cedar_arena_alloc(arena, sizeof(*u));
    char *ts = u ? cedar_arena_strndup(arena, json_string_value(t), tl) : NULL;
    char *is = ts ? json_str_dup(arena, json_string_value(id), il, &il) : NULL;
    if (is == NULL)
        return NHID_ERR_NOMEM;
    u->type = (struct cedar_str){ts, tl};
    u->id = (struct cedar_str){is, il};
    u->hash = cedar_uid_hash(ts, tl, is, il);
    *out = u;
    return NHID_OK;
}

/* Parse an entity uid in either {"type","id"} or {"__entity": {...}} form. */
int cedar_uid_from_json(struct cedar_arena *arena, const json_t *j, const struct cedar_uid **out,
                        char *err, size_t errlen)
{
    if (!json_is_object(j)) {
        snprintf(err, errlen, "entity reference must be a JSON object");
        return NHID_ERR_INVALID;
    }
    json_t *e = json_object_get(j, "__entity");
    if (e != NULL) {
        if (json_object_size(j) != 1 || !json_is_object(e)) {
            snprintf(err, errlen, "bad __entity escape");
            return NHID_ERR_INVALID;
        }
        return uid_from_type_id(arena, e, out, err, errlen);
    }
    return uid_from_type_id(arena, j, out, err, errlen);
}

static int from_json(struct cedar_arena *arena, const json_t *j, struct cedar_value *out,
                     int depth, char *err, size_t errlen);

static int ext_from_json(struct cedar_arena *arena, const json_t *x, struct cedar_value *out,
                         char *err, size_t errlen)
{
    json_t *fn = json_object_get(x, "fn"), *arg = json_object_get(x, "arg");
    json_t *args = json_object_get(x, "args");
    if (json_is_string(fn) && json_is_array(args)) {
        /* canonical multi-argument form, e.g. datetime values written as
         * {"fn": "offset", "args": [datetime, duration]} */
        if (json_array_size(args) == 1 && json_is_string(json_array_get(args, 0))) {
            arg = json_array_get(args, 0);
        } else if (strcmp(json_string_value(fn), "offset") == 0 && json_array_size(args) == 2) {
            struct cedar_value a, b;
            int rc = from_json(arena, json_array_get(args, 0), &a, 1, err, errlen);
            if (rc < 0)
                return rc;
            rc = from_json(arena, json_array_get(args, 1), &b, 1, err, errlen);
            if (rc < 0)
                return rc;
            int64_t r;
            if (a.kind != CEDAR_V_EXT || a.ext_kind != CEDAR_EXT_DATETIME || b.kind != CEDAR_V_EXT ||
                b.ext_kind != CEDAR_EXT_DURATION) {
                snprintf(err, errlen, "offset() takes a datetime and a duration");
                return NHID_ERR_INVALID;
            }
            if (__builtin_add_overflow(a.u.datetime, b.u.duration, &r)) {
                snprintf(err, errlen, "offset() overflows");
                return NHID_ERR_INVALID;
            }
            out->kind = CEDAR_V_EXT;
            out->ext_kind = CEDAR_EXT_DATETIME;
            out->u.datetime = r;
            return NHID_OK;
        }
    }
    if (!json_is_object(x) || !json_is_string(fn) || !json_is_string(arg)) {
        snprintf(err, errlen, "__extn must be {\"fn\": string, \"arg\": string}");
        return NHID_ERR_INVALID;
    }
    const char *f = json_string_value(fn), *a = json_string_value(arg);
    size_t al = json_string_length(arg);
    char e2[160];
    if (strcmp(f, "ip") == 0 || strcmp(f, "ipaddr") == 0) {
        struct cedar_ipaddr *ip = cedar_arena_alloc(arena, sizeof(*ip));
        if (ip == NULL)
            return NHID_ERR_NOMEM;
        if (cedar_ip_parse(a, al, ip, e2, sizeof(e2)) < 0)
            goto bad;
        out->kind = CEDAR_V_EXT;
        out->ext_kind = CEDAR_EXT_IPADDR;
        out->u.ip = ip;
        return NHID_OK;
    }
    int64_t v;
    uint8_t kind;
    if (strcmp(f, "decimal") == 0) {
        kind = CEDAR_EXT_DECIMAL;
        if (cedar_decimal_parse(a, al, &v, e2, sizeof(e2)) < 0)
            goto bad;
    } else if (strcmp(f, "datetime") == 0) {
        kind = CEDAR_EXT_DATETIME;
        if (cedar_datetime_parse(a, al, &v, e2, sizeof(e2)) < 0)
            goto bad;
    } else if (strcmp(f, "duration") == 0) {
        kind = CEDAR_EXT_DURATION;
        if (cedar_duration_parse(a, al, &v, e2, sizeof(e2)) < 0)
            goto bad;
    } else {
        snprintf(err, errlen, "unknown extension function \"%.64s\"", f);
        return NHID_ERR_INVALID;
    }
    out->kind = CEDAR_V_EXT;
    out->ext_kind = kind;
    out->u.decimal = v;
    return NHID_OK;
bad:
    snprintf(err, errlen, "%s(\"%.64s\"): %s", f, a, e2);
    return NHID_ERR_INVALID;
}

static int from_json(struct cedar_arena *arena, const json_t *j, struct cedar_value *out,
                     int depth, char *err, size_t errlen)
{
    int rc = NHID_OK;
    struct cedar_value *elems = NULL;
    struct cedar_record_attr *attrs = NULL;
    if (depth > JSON_MAX_DEPTH) {
        snprintf(err, errlen, "value nested more than %d levels deep", JSON_MAX_DEPTH);
        return NHID_ERR_TOO_LARGE;
    }
    memset(out, 0, sizeof(*out));
    switch (json_typeof(j)) {
    case JSON_TRUE:
    case JSON_FALSE:
        out->kind = CEDAR_V_BOOL;
        out->u.b = json_is_true(j);
        return NHID_OK;
    case JSON_INTEGER:
        out->kind = CEDAR_V_LONG;
        out->u.l = (int64_t)json_integer_value(j);
        return NHID_OK;
    case JSON_REAL:
        snprintf(err, errlen, "floating-point numbers are not Cedar values (use decimal)");
        return NHID_ERR_INVALID;
    case JSON_NULL:
        snprintf(err, errlen, "null is not a Cedar value");
        return NHID_ERR_INVALID;
    case JSON_STRING: {
        size_t l = json_string_length(j);
        char *s = json_str_dup(arena, json_string_value(j), l, &l);
        if (s == NULL)
            return NHID_ERR_NOMEM;
        out->kind = CEDAR_V_STRING;
        out->u.s = (struct cedar_str){s, l};
        return NHID_OK;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        if (n > CEDAR_MAX_SET_ELEMS) {
            snprintf(err, errlen, "set has more than %d elements", CEDAR_MAX_SET_ELEMS);
            return NHID_ERR_TOO_LARGE;
        }
        elems = n ? malloc(n * sizeof(*elems)) : NULL;
        if (n && elems == NULL)
            return NHID_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
            NHID_TRY(from_json(arena, json_array_get(j, i), &elems[i], depth + 1, err, errlen));
        out->kind = CEDAR_V_SET;
        NHID_TRY(cedar_set_build(arena, elems, n, &out->u.set));
        goto out;
    }
    case JSON_OBJECT: {
        json_t *e = json_object_get(j, "__entity");
        if (e != NULL && json_object_size(j) == 1) {
            out->kind = CEDAR_V_ENTITY;
            return uid_from_type_id(arena, e, &out->u.uid, err, errlen);
        }
        json_t *x = json_object_get(j, "__extn");
        if (x != NULL && json_object_size(j) == 1)
            return ext_from_json(arena, x, out, err, errlen);
        /* Implicit escapes: with a schema, Cedar reads {"type","id"} as an
         * entity and {"fn","arg"} as an extension value where the schema
         * expects one. Without schema-directed parsing we apply the same
         * reading whenever an object has exactly those two string fields. */
        if (json_object_size(j) == 2 && json_is_string(json_object_get(j, "type")) &&
            json_is_string(json_object_get(j, "id"))) {
            out->kind = CEDAR_V_ENTITY;
            return uid_from_type_id(arena, j, &out->u.uid, err, errlen);
        }
        if (json_object_size(j) == 2 && json_is_string(json_object_get(j, "fn")) &&
            (json_is_string(json_object_get(j, "arg")) || json_is_array(json_object_get(j, "args"))))
            return ext_from_json(arena, j, out, err, errlen);
        if (json_object_get(j, "__expr") != NULL) {
            snprintf(err, errlen, "the __expr escape is not supported");
            return NHID_ERR_UNSUPPORTED;
        }
        size_t n = json_object_size(j), i = 0;
        if (n > CEDAR_MAX_SET_ELEMS) {
            snprintf(err, errlen, "record has more than %d attributes", CEDAR_MAX_SET_ELEMS);
            return NHID_ERR_TOO_LARGE;
        }
        attrs = n ? malloc(n * sizeof(*attrs)) : NULL;
        if (n && attrs == NULL)
            return NHID_ERR_NOMEM;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            size_t kl = strlen(k);
            char *ks = json_str_dup(arena, k, kl, &kl);
            NHID_CHECK_ALLOC(ks);
            attrs[i].key = (struct cedar_str){ks, kl};
            NHID_TRY(from_json(arena, v, &attrs[i].val, depth + 1, err, errlen));
            i++;
        }
        out->kind = CEDAR_V_RECORD;
        NHID_TRY(cedar_record_build(arena, attrs, n, false, &out->u.rec));
        goto out;
    }
    }
    snprintf(err, errlen, "unsupported JSON value");
    return NHID_ERR_INVALID;
out:
    free(elems);
    free(attrs);
    if (rc == NHID_ERR_NOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

int cedar_value_from_json(struct cedar_arena *arena, const json_t *j, struct cedar_value *out,
                          char *err, size_t errlen)
{
    struct cedar_value v;
    int rc = from_json(arena, j, &v, 0, err, errlen);
    if (rc == NHID_OK)
        *out = v;
    return rc;
}

json_t *cedar_value_to_json(const struct cedar_value *v)
{
    switch (v->kind) {
    case CEDAR_V_BOOL:
        return json_boolean(v->u.b);
    case CEDAR_V_LONG:
        return json_integer((json_int_t)v->u.l);
    case CEDAR_V_STRING:
        return json_stringn(v->u.s.ptr, v->u.s.len);
    case CEDAR_V_ENTITY:
        return json_pack("{s:{s:s%,s:s%}}", "__entity", "type", v->u.uid->type.ptr,
                         v->u.uid->type.len, "id", v->u.uid->id.ptr, v->u.uid->id.len);
    case CEDAR_V_SET: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < v->u.set->n; i++)
            if (json_array_append_new(a, cedar_value_to_json(&v->u.set->elems[i])) != 0) {
                json_decref(a);
                return NULL;
            }
        return a;
    }
    case CEDAR_V_RECORD: {
        json_t *o = json_object();
        for (size_t i = 0; o && i < v->u.rec->n; i++) {
            const struct cedar_record_attr *at = &v->u.rec->attrs[i];
            if (json_object_setn_new(o, at->key.ptr, at->key.len, cedar_value_to_json(&at->val)) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case CEDAR_V_EXT: {
        struct cedar_buf b = {0};
        const char *fn = "decimal";
        switch (v->ext_kind) {
        case CEDAR_EXT_IPADDR:
            fn = "ip";
            fmt_ip(&b, v->u.ip);
            break;
        case CEDAR_EXT_DECIMAL: {
            int64_t x = v->u.decimal;
            uint64_t ax = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
            cedar_buf_printf(&b, "%s%" PRIu64 ".%04" PRIu64, x < 0 ? "-" : "", ax / 10000, ax % 10000);
            break;
        }
        case CEDAR_EXT_DATETIME: {
            fn = "datetime";
            int64_t ms = v->u.datetime;
            int64_t days = ms / 86400000, rem = ms % 86400000;
            if (rem < 0) {
                rem += 86400000;
                days--;
            }
            /* civil_from_days (H. Hinnant) */
            int64_t z = days + 719468;
            int64_t era = (z >= 0 ? z : z - 146096) / 146097;
            int64_t doe = z - era * 146097;
            int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
            int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
            int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
            int64_t m = mp < 10 ? mp + 3 : mp - 9;
            y += m <= 2;
            if (y < 0 || y > 9999) {
                fn = "offset"; /* not representable as text; keep it readable */
                cedar_buf_printf(&b, "%" PRId64 "ms", ms);
                break;
            }
            cedar_buf_printf(&b, "%04" PRId64 "-%02" PRId64 "-%02" PRId64 "T%02" PRId64 ":%02" PRId64
                             ":%02" PRId64 ".%03" PRId64 "Z",
                             y, m, d, rem / 3600000, rem / 60000 % 60, rem / 1000 % 60, rem % 1000);
            break;
        }
        case CEDAR_EXT_DURATION:
            fn = "duration";
            cedar_buf_printf(&b, "%" PRId64 "ms", v->u.duration);
            break;
        }
        json_t *r = b.oom ? NULL
                          : json_pack("{s:{s:s,s:s}}", "__extn", "fn", fn, "arg", b.p ? b.p : "");
        cedar_buf_free(&b);
        return r;
    }
    }
    return NULL;
}
