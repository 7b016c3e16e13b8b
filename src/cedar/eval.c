/*
 * cedar/eval.c — the Cedar evaluator and authorizer.
 *
 * Semantics follow the reference evaluator (cedar-policy-core
 * src/evaluator.rs): `==` never errors (values of different types are
 * unequal); `&&`/`||` short-circuit and require booleans; arithmetic is
 * checked i64; `in` needs an entity on the left and an entity or set of
 * entities on the right; attribute access on a missing entity/attribute is
 * an error; `has` on an entity absent from the store is false. A policy
 * whose condition errors is skipped and reported; forbid overrides permit;
 * default deny.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cedar/internal.h"

/* ---- built-in function table ------------------------------------------------ */

static const struct cedar_fn_info fn_table[CEDAR_FN__COUNT] = {
    [CEDAR_FN_CONTAINS] = {"contains", true, 2, false},
    [CEDAR_FN_CONTAINS_ALL] = {"containsAll", true, 2, false},
    [CEDAR_FN_CONTAINS_ANY] = {"containsAny", true, 2, false},
    [CEDAR_FN_IS_EMPTY] = {"isEmpty", true, 1, false},
    [CEDAR_FN_GET_TAG] = {"getTag", true, 2, false},
    [CEDAR_FN_HAS_TAG] = {"hasTag", true, 2, false},
    [CEDAR_FN_IP] = {"ip", false, 1, true},
    [CEDAR_FN_IS_IPV4] = {"isIpv4", true, 1, true},
    [CEDAR_FN_IS_IPV6] = {"isIpv6", true, 1, true},
    [CEDAR_FN_IS_LOOPBACK] = {"isLoopback", true, 1, true},
    [CEDAR_FN_IS_MULTICAST] = {"isMulticast", true, 1, true},
    [CEDAR_FN_IS_IN_RANGE] = {"isInRange", true, 2, true},
    [CEDAR_FN_DECIMAL] = {"decimal", false, 1, true},
    [CEDAR_FN_LESS_THAN] = {"lessThan", true, 2, true},
    [CEDAR_FN_LESS_THAN_OR_EQUAL] = {"lessThanOrEqual", true, 2, true},
    [CEDAR_FN_GREATER_THAN] = {"greaterThan", true, 2, true},
    [CEDAR_FN_GREATER_THAN_OR_EQUAL] = {"greaterThanOrEqual", true, 2, true},
    [CEDAR_FN_DATETIME] = {"datetime", false, 1, true},
    [CEDAR_FN_DURATION] = {"duration", false, 1, true},
    [CEDAR_FN_OFFSET] = {"offset", true, 2, true},
    [CEDAR_FN_DURATION_SINCE] = {"durationSince", true, 2, true},
    [CEDAR_FN_TO_DATE] = {"toDate", true, 1, true},
    [CEDAR_FN_TO_TIME] = {"toTime", true, 1, true},
    [CEDAR_FN_TO_DAYS] = {"toDays", true, 1, true},
    [CEDAR_FN_TO_HOURS] = {"toHours", true, 1, true},
    [CEDAR_FN_TO_MINUTES] = {"toMinutes", true, 1, true},
    [CEDAR_FN_TO_SECONDS] = {"toSeconds", true, 1, true},
    [CEDAR_FN_TO_MILLISECONDS] = {"toMilliseconds", true, 1, true},
};

const struct cedar_fn_info *cedar_fn_info(enum cedar_fn fn)
{
    if ((unsigned)fn >= CEDAR_FN__COUNT)
        return &fn_table[0];
    return &fn_table[fn];
}

int cedar_fn_lookup(const char *name, size_t len, bool is_method)
{
    for (int i = 0; i < CEDAR_FN__COUNT; i++) {
        const struct cedar_fn_info *f = &fn_table[i];
        if (f->is_method == is_method && strlen(f->name) == len && memcmp(f->name, name, len) == 0)
            return i;
    }
    return -1;
}

/* ---- evaluation --------------------------------------------------------------- */

struct ev {
    const struct cedar_entities *es;
    const struct cedar_request *req;
    struct cedar_arena *a;
    char *err;
    size_t errlen;
    int depth;
};

static int everr(struct ev *ev, const char *fmt, ...) NHID_PRINTF(2, 3);
static int everr(struct ev *ev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->err, ev->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int type_err(struct ev *ev, const char *op, const char *want, const struct cedar_value *v)
{
    return everr(ev, "type error: %s expects %s, got %s", op, want, cedar_value_type_name(v));
}

static int eval(struct ev *ev, const struct cedar_expr *e, struct cedar_value *out);

static inline void set_bool(struct cedar_value *v, bool b)
{
    v->kind = CEDAR_V_BOOL;
    v->u.b = b;
}

static inline void set_long(struct cedar_value *v, int64_t l)
{
    v->kind = CEDAR_V_LONG;
    v->u.l = l;
}

static int eval_bool(struct ev *ev, const struct cedar_expr *e, const char *op, bool *out)
{
    struct cedar_value v;
    if (eval(ev, e, &v) < 0)
        return -1;
    if (v.kind != CEDAR_V_BOOL)
        return type_err(ev, op, "bool", &v);
    *out = v.u.b;
    return 0;
}

static int eval_long(struct ev *ev, const struct cedar_expr *e, const char *op, int64_t *out)
{
    struct cedar_value v;
    if (eval(ev, e, &v) < 0)
        return -1;
    if (v.kind != CEDAR_V_LONG)
        return type_err(ev, op, "long", &v);
    *out = v.u.l;
    return 0;
}

static const struct cedar_entity *lookup(struct ev *ev, const struct cedar_uid *u)
{
    return ev->es ? cedar_entities_get(ev->es, u) : NULL;
}

bool cedar_entity_in(const struct cedar_entities *es, const struct cedar_uid *a,
                     const struct cedar_uid *b)
{
    if (cedar_uid_eq(a, b))
        return true;
    const struct cedar_entity *ent = es ? cedar_entities_get(es, a) : NULL;
    if (ent == NULL)
        return false;
    /* ancestors are sorted by hash */
    size_t lo = 0, hi = ent->nancestors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ent->ancestors[mid]->hash < b->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < ent->nancestors && ent->ancestors[i]->hash == b->hash; i++)
        if (cedar_uid_eq(ent->ancestors[i], b))
            return true;
    return false;
}

static bool like_match(const struct cedar_pattern *p, const char *s, size_t len)
{
    size_t n = p->n;
    if (n == 0)
        return len == 0;
    bool any_wild = false;
    for (size_t i = 0; i < n; i++)
        any_wild |= p->elems[i].wildcard;
    if (!any_wild) {
        /* a single literal run (the parser merges adjacent text) */
        size_t tot = 0;
        for (size_t i = 0; i < n; i++)
            tot += p->elems[i].lit.len;
        if (tot != len)
            return false;
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            if (memcmp(s + off, p->elems[i].lit.ptr, p->elems[i].lit.len) != 0)
                return false;
            off += p->elems[i].lit.len;
        }
        return true;
    }
    size_t first = 0, last = n;
    size_t start = 0, end = len;
    if (!p->elems[0].wildcard) {
        const struct cedar_str *l = &p->elems[0].lit;
        if (l->len > len || memcmp(s, l->ptr, l->len) != 0)
            return false;
        start = l->len;
        first = 1;
    }
    if (!p->elems[n - 1].wildcard) {
        const struct cedar_str *l = &p->elems[n - 1].lit;
        if (l->len > end - start || memcmp(s + len - l->len, l->ptr, l->len) != 0)
            return false;
        end = len - l->len;
        last = n - 1;
    }
    for (size_t i = first; i < last; i++) {
        if (p->elems[i].wildcard)
            continue;
        const struct cedar_str *l = &p->elems[i].lit;
        if (l->len == 0)
            continue;
        if (l->len > end - start)
            return false;
        const char *f = memmem(s + start, end - start, l->ptr, l->len);
        if (f == NULL)
            return false;
        start = (size_t)(f - s) + l->len;
    }
    return true;
}

static int ext_arg(struct ev *ev, const struct cedar_value *v, enum cedar_ext_kind k,
                   const char *fn)
{
    if (v->kind != CEDAR_V_EXT || v->ext_kind != k) {
        static const char *names[] = {"ipaddr", "decimal", "datetime", "duration"};
        return type_err(ev, fn, names[k], v);
    }
    return 0;
}

static int eval_call(struct ev *ev, const struct cedar_expr *e, struct cedar_value *out)
{
    const struct cedar_fn_info *fi = cedar_fn_info((enum cedar_fn)e->u.list.fn);
    size_t n = e->u.list.n;
    struct cedar_value args[2];
    if (n != fi->nargs)
        return everr(ev, "wrong number of arguments to `%s`: expected %u, got %zu", fi->name,
                     fi->nargs, n);
    for (size_t i = 0; i < n; i++)
        if (eval(ev, e->u.list.args[i], &args[i]) < 0)
            return -1;
    struct cedar_value *a = &args[0], *b = &args[1];
    char msg[160];
    switch ((enum cedar_fn)e->u.list.fn) {
    case CEDAR_FN_CONTAINS:
        if (a->kind != CEDAR_V_SET)
            return type_err(ev, "contains", "set", a);
        set_bool(out, cedar_set_contains(a->u.set, b));
        return 0;
    case CEDAR_FN_CONTAINS_ALL:
    case CEDAR_FN_CONTAINS_ANY: {
        bool all = e->u.list.fn == CEDAR_FN_CONTAINS_ALL;
        if (a->kind != CEDAR_V_SET)
            return type_err(ev, fi->name, "set", a);
        if (b->kind != CEDAR_V_SET)
            return type_err(ev, fi->name, "set", b);
        bool r = all;
        for (size_t i = 0; i < b->u.set->n; i++) {
            bool in = cedar_set_contains(a->u.set, &b->u.set->elems[i]);
            if (all && !in) {
                r = false;
                break;
            }
            if (!all && in) {
                r = true;
                break;
            }
        }
        set_bool(out, r);
        return 0;
    }
    case CEDAR_FN_IS_EMPTY:
        if (a->kind != CEDAR_V_SET)
            return type_err(ev, "isEmpty", "set", a);
        set_bool(out, a->u.set->n == 0);
        return 0;
    case CEDAR_FN_GET_TAG:
    case CEDAR_FN_HAS_TAG: {
        if (a->kind != CEDAR_V_ENTITY)
            return type_err(ev, fi->name, "entity", a);
        if (b->kind != CEDAR_V_STRING)
            return type_err(ev, fi->name, "string", b);
        const struct cedar_entity *ent = lookup(ev, a->u.uid);
        if (e->u.list.fn == CEDAR_FN_HAS_TAG) {
            set_bool(out, ent != NULL && cedar_record_get(ent->tags, b->u.s.ptr, b->u.s.len));
            return 0;
        }
        if (ent == NULL) {
            struct cedar_buf bb = {0};
            cedar_buf_uid(&bb, a->u.uid);
            everr(ev, "entity %s does not exist", bb.p ? bb.p : "?");
            cedar_buf_free(&bb);
            return -1;
        }
        const struct cedar_value *t = cedar_record_get(ent->tags, b->u.s.ptr, b->u.s.len);
        if (t == NULL)
            return everr(ev, "entity does not have tag \"%.*s\"",
                         (int)(b->u.s.len > 60 ? 60 : b->u.s.len), b->u.s.ptr);
        *out = *t;
        return 0;
    }
    case CEDAR_FN_IP: {
        if (a->kind != CEDAR_V_STRING)
            return type_err(ev, "ip", "string", a);
        struct cedar_ipaddr *ip = cedar_arena_alloc(ev->a, sizeof(*ip));
        if (ip == NULL)
            return everr(ev, "out of memory");
        if (cedar_ip_parse(a->u.s.ptr, a->u.s.len, ip, msg, sizeof(msg)) < 0)
            return everr(ev, "ip(): %s", msg);
        out->kind = CEDAR_V_EXT;
        out->ext_kind = CEDAR_EXT_IPADDR;
        out->u.ip = ip;
        return 0;
    }
    case CEDAR_FN_DECIMAL:
    case CEDAR_FN_DATETIME:
    case CEDAR_FN_DURATION: {
        if (a->kind != CEDAR_V_STRING)
            return type_err(ev, fi->name, "string", a);
        int64_t v;
        int r;
        uint8_t k;
        if (e->u.list.fn == CEDAR_FN_DECIMAL) {
            r = cedar_decimal_parse(a->u.s.ptr, a->u.s.len, &v, msg, sizeof(msg));
            k = CEDAR_EXT_DECIMAL;
        } else if (e->u.list.fn == CEDAR_FN_DATETIME) {
            r = cedar_datetime_parse(a->u.s.ptr, a->u.s.len, &v, msg, sizeof(msg));
            k = CEDAR_EXT_DATETIME;
        } else {
            r = cedar_duration_parse(a->u.s.ptr, a->u.s.len, &v, msg, sizeof(msg));
            k = CEDAR_EXT_DURATION;
        }
        if (r < 0)
            return everr(ev, "%s(): %s", fi->name, msg);
        out->kind = CEDAR_V_EXT;
        out->ext_kind = k;
        out->u.decimal = v;
        return 0;
    }
    case CEDAR_FN_IS_IPV4:
    case CEDAR_FN_IS_IPV6:
    case CEDAR_FN_IS_LOOPBACK:
    case CEDAR_FN_IS_MULTICAST: {
        if (ext_arg(ev, a, CEDAR_EXT_IPADDR, fi->name) < 0)
            return -1;
        const struct cedar_ipaddr *ip = a->u.ip;
        bool r;
        if (e->u.list.fn == CEDAR_FN_IS_IPV4)
            r = !ip->v6;
        else if (e->u.list.fn == CEDAR_FN_IS_IPV6)
            r = ip->v6;
        else if (e->u.list.fn == CEDAR_FN_IS_LOOPBACK) {
            /* 127.0.0.0/8, ::1 (address bits, as the reference does) */
            if (!ip->v6) {
                r = ip->addr[0] == 127;
            } else {
                static const uint8_t one[16] = {[15] = 1};
                r = memcmp(ip->addr, one, 16) == 0;
            }
        } else {
            /* 224.0.0.0/4, ff00::/8, and the range must lie inside */
            r = !ip->v6 ? (ip->addr[0] & 0xf0) == 0xe0 && ip->prefix >= 4
                        : ip->addr[0] == 0xff && ip->prefix >= 8;
        }
        set_bool(out, r);
        return 0;
    }
    case CEDAR_FN_IS_IN_RANGE: {
        if (ext_arg(ev, a, CEDAR_EXT_IPADDR, fi->name) < 0 ||
            ext_arg(ev, b, CEDAR_EXT_IPADDR, fi->name) < 0)
            return -1;
        const struct cedar_ipaddr *x = a->u.ip, *y = b->u.ip;
        bool r = false;
        if (x->v6 == y->v6) {
            /* x's network range lies inside y's: compare network and
             * broadcast addresses byte by byte (big endian). */
            int bytes = x->v6 ? 16 : 4;
            uint8_t xn[16], xb[16], yn[16], yb[16];
            for (int i = 0; i < bytes; i++) {
                int bits_x = x->prefix - i * 8, bits_y = y->prefix - i * 8;
                uint8_t mx = bits_x >= 8 ? 0xff : bits_x <= 0 ? 0 : (uint8_t)(0xff << (8 - bits_x));
                uint8_t my = bits_y >= 8 ? 0xff : bits_y <= 0 ? 0 : (uint8_t)(0xff << (8 - bits_y));
                xn[i] = x->addr[i] & mx;
                xb[i] = x->addr[i] | (uint8_t)~mx;
                yn[i] = y->addr[i] & my;
                yb[i] = y->addr[i] | (uint8_t)~my;
            }
            r = memcmp(yn, xn, (size_t)bytes) <= 0 && memcmp(xb, yb, (size_t)bytes) <= 0;
        }
        set_bool(out, r);
        return 0;
    }
    case CEDAR_FN_LESS_THAN:
    case CEDAR_FN_LESS_THAN_OR_EQUAL:
    case CEDAR_FN_GREATER_THAN:
    case CEDAR_FN_GREATER_THAN_OR_EQUAL: {
        if (ext_arg(ev, a, CEDAR_EXT_DECIMAL, fi->name) < 0 ||
            ext_arg(ev, b, CEDAR_EXT_DECIMAL, fi->name) < 0)
            return -1;
        int64_t x = a->u.decimal, y = b->u.decimal;
        bool r = e->u.list.fn == CEDAR_FN_LESS_THAN               ? x < y
                 : e->u.list.fn == CEDAR_FN_LESS_THAN_OR_EQUAL    ? x <= y
                 : e->u.list.fn == CEDAR_FN_GREATER_THAN          ? x > y
                                                                  : x >= y;
        set_bool(out, r);
        return 0;
    }
    case CEDAR_FN_OFFSET: {
        if (ext_arg(ev, a, CEDAR_EXT_DATETIME, fi->name) < 0 ||
            ext_arg(ev, b, CEDAR_EXT_DURATION, fi->name) < 0)
            return -1;
        int64_t r;
        if (__builtin_add_overflow(a->u.datetime, b->u.duration, &r))
            return everr(ev, "overflow when adding an offset to a datetime");
        out->kind = CEDAR_V_EXT;
        out->ext_kind = CEDAR_EXT_DATETIME;
        out->u.datetime = r;
        return 0;
    }
    case CEDAR_FN_DURATION_SINCE: {
        if (ext_arg(ev, a, CEDAR_EXT_DATETIME, fi->name) < 0 ||
            ext_arg(ev, b, CEDAR_EXT_DATETIME, fi->name) < 0)
            return -1;
        int64_t r;
        if (__builtin_sub_overflow(a->u.datetime, b->u.datetime, &r))
            return everr(ev, "overflow when computing the duration between datetimes");
        out->kind = CEDAR_V_EXT;
        out->ext_kind = CEDAR_EXT_DURATION;
        out->u.duration = r;
        return 0;
    }
    case CEDAR_FN_TO_DATE:
    case CEDAR_FN_TO_TIME: {
        if (ext_arg(ev, a, CEDAR_EXT_DATETIME, fi->name) < 0)
            return -1;
        const int64_t day = 86400000;
        int64_t t = a->u.datetime;
        int64_t rem = t % day;
        if (rem < 0)
            rem += day; /* rem_euclid */
        out->kind = CEDAR_V_EXT;
        if (e->u.list.fn == CEDAR_FN_TO_TIME) {
            out->ext_kind = CEDAR_EXT_DURATION;
            out->u.duration = rem;
        } else {
            int64_t r;
            if (__builtin_sub_overflow(t, rem, &r))
                return everr(ev, "overflow when computing the date of a datetime");
            out->ext_kind = CEDAR_EXT_DATETIME;
            out->u.datetime = r;
        }
        return 0;
    }
    case CEDAR_FN_TO_DAYS:
    case CEDAR_FN_TO_HOURS:
    case CEDAR_FN_TO_MINUTES:
    case CEDAR_FN_TO_SECONDS:
    case CEDAR_FN_TO_MILLISECONDS: {
        if (ext_arg(ev, a, CEDAR_EXT_DURATION, fi->name) < 0)
            return -1;
        int64_t ms = a->u.duration;
        int64_t r = ms;
        switch ((enum cedar_fn)e->u.list.fn) {
        case CEDAR_FN_TO_DAYS: r = ms / 1000 / 60 / 60 / 24; break;
        case CEDAR_FN_TO_HOURS: r = ms / 1000 / 60 / 60; break;
        case CEDAR_FN_TO_MINUTES: r = ms / 1000 / 60; break;
        case CEDAR_FN_TO_SECONDS: r = ms / 1000; break;
        default: break;
        }
        set_long(out, r);
        return 0;
    }
    case CEDAR_FN__COUNT:
        break;
    }
    return everr(ev, "unknown function");
}

static int entity_attr(struct ev *ev, const struct cedar_value *base, const struct cedar_str *attr,
                       bool has, struct cedar_value *out)
{
    const struct cedar_record *rec;
    if (base->kind == CEDAR_V_ENTITY) {
        const struct cedar_entity *ent = lookup(ev, base->u.uid);
        if (ent == NULL) {
            if (has) {
                set_bool(out, false);
                return 0;
            }
            struct cedar_buf b = {0};
            cedar_buf_uid(&b, base->u.uid);
            everr(ev, "entity %s does not exist", b.p ? b.p : "?");
            cedar_buf_free(&b);
            return -1;
        }
        rec = ent->attrs;
    } else if (base->kind == CEDAR_V_RECORD) {
        rec = base->u.rec;
    } else {
        return type_err(ev, has ? "`has`" : "attribute access", "entity or record", base);
    }
    const struct cedar_value *v = cedar_record_get(rec, attr->ptr, attr->len);
    if (has) {
        set_bool(out, v != NULL);
        return 0;
    }
    if (v == NULL)
        return everr(ev, "%s does not have the attribute \"%.*s\"",
                     base->kind == CEDAR_V_ENTITY ? "entity" : "record",
                     (int)(attr->len > 60 ? 60 : attr->len), attr->ptr);
    *out = *v;
    return 0;
}

static int compare(struct ev *ev, const struct cedar_value *a, const struct cedar_value *b,
                   const char *op, int *cmp)
{
    int64_t x, y;
    if (a->kind == CEDAR_V_LONG && b->kind == CEDAR_V_LONG) {
        x = a->u.l;
        y = b->u.l;
    } else if (a->kind == CEDAR_V_EXT && b->kind == CEDAR_V_EXT && a->ext_kind == b->ext_kind &&
               (a->ext_kind == CEDAR_EXT_DATETIME || a->ext_kind == CEDAR_EXT_DURATION)) {
        x = a->u.datetime;
        y = b->u.datetime;
    } else {
        const struct cedar_value *bad = a->kind == CEDAR_V_LONG ? b : a;
        if (a->kind == CEDAR_V_EXT && b->kind == CEDAR_V_EXT && a->ext_kind != b->ext_kind)
            return everr(ev, "type error: %s cannot compare %s with %s", op,
                         cedar_value_type_name(a), cedar_value_type_name(b));
        return type_err(ev, op, "long, datetime or duration", bad);
    }
    *cmp = x < y ? -1 : x > y;
    return 0;
}

static int eval_in(struct ev *ev, const struct cedar_value *a, const struct cedar_value *b,
                   struct cedar_value *out)
{
    if (a->kind != CEDAR_V_ENTITY)
        return type_err(ev, "`in`", "an entity on the left", a);
    if (b->kind == CEDAR_V_ENTITY) {
        set_bool(out, cedar_entity_in(ev->es, a->u.uid, b->u.uid));
        return 0;
    }
    if (b->kind != CEDAR_V_SET)
        return type_err(ev, "`in`", "an entity or set of entities on the right", b);
    const struct cedar_set *s = b->u.set;
    for (size_t i = 0; i < s->n; i++)
        if (s->elems[i].kind != CEDAR_V_ENTITY)
            return type_err(ev, "`in`", "a set of entities", &s->elems[i]);
    for (size_t i = 0; i < s->n; i++) {
        if (cedar_entity_in(ev->es, a->u.uid, s->elems[i].u.uid)) {
            set_bool(out, true);
            return 0;
        }
    }
    set_bool(out, false);
    return 0;
}

static int eval_inner(struct ev *ev, const struct cedar_expr *e, struct cedar_value *out)
{
    struct cedar_value a, b;
    switch ((enum cedar_expr_kind)e->kind) {
    case CEDAR_E_LIT:
        *out = e->u.lit;
        return 0;
    case CEDAR_E_VAR:
        switch (e->u.var) {
        case CEDAR_VAR_PRINCIPAL:
            out->kind = CEDAR_V_ENTITY;
            out->u.uid = &ev->req->principal;
            return 0;
        case CEDAR_VAR_ACTION:
            out->kind = CEDAR_V_ENTITY;
            out->u.uid = &ev->req->action;
            return 0;
        case CEDAR_VAR_RESOURCE:
            out->kind = CEDAR_V_ENTITY;
            out->u.uid = &ev->req->resource;
            return 0;
        default:
            *out = ev->req->context;
            return 0;
        }
    case CEDAR_E_SLOT:
        return everr(ev, "unlinked template slot");
    case CEDAR_E_NOT: {
        bool v;
        if (eval_bool(ev, e->u.op.a, "`!`", &v) < 0)
            return -1;
        set_bool(out, !v);
        return 0;
    }
    case CEDAR_E_NEG: {
        int64_t v;
        if (eval_long(ev, e->u.op.a, "unary `-`", &v) < 0)
            return -1;
        if (v == INT64_MIN)
            return everr(ev, "integer overflow in negation of %" PRId64, v);
        set_long(out, -v);
        return 0;
    }
    case CEDAR_E_AND:
    case CEDAR_E_OR: {
        bool is_and = e->kind == CEDAR_E_AND;
        const char *op = is_and ? "`&&`" : "`||`";
        bool v;
        if (eval_bool(ev, e->u.op.a, op, &v) < 0)
            return -1;
        if (v != is_and) {
            set_bool(out, v);
            return 0;
        }
        if (eval_bool(ev, e->u.op.b, op, &v) < 0)
            return -1;
        set_bool(out, v);
        return 0;
    }
    case CEDAR_E_EQ:
    case CEDAR_E_NE:
        if (eval(ev, e->u.op.a, &a) < 0 || eval(ev, e->u.op.b, &b) < 0)
            return -1;
        set_bool(out, cedar_value_equal(&a, &b) == (e->kind == CEDAR_E_EQ));
        return 0;
    case CEDAR_E_LT:
    case CEDAR_E_LE:
    case CEDAR_E_GT:
    case CEDAR_E_GE: {
        static const char *ops[] = {"`<`", "`<=`", "`>`", "`>=`"};
        const char *op = ops[e->kind - CEDAR_E_LT];
        int c = 0;
        if (eval(ev, e->u.op.a, &a) < 0 || eval(ev, e->u.op.b, &b) < 0)
            return -1;
        if (compare(ev, &a, &b, op, &c) < 0)
            return -1;
        bool r = e->kind == CEDAR_E_LT ? c < 0 : e->kind == CEDAR_E_LE ? c <= 0
                 : e->kind == CEDAR_E_GT ? c > 0 : c >= 0;
        set_bool(out, r);
        return 0;
    }
    case CEDAR_E_ADD:
    case CEDAR_E_SUB:
    case CEDAR_E_MUL: {
        static const char *ops[] = {"`+`", "`-`", "`*`"};
        const char *op = ops[e->kind - CEDAR_E_ADD];
        int64_t x, y, r;
        if (eval_long(ev, e->u.op.a, op, &x) < 0 || eval_long(ev, e->u.op.b, op, &y) < 0)
            return -1;
        bool ovf = e->kind == CEDAR_E_ADD   ? __builtin_add_overflow(x, y, &r)
                   : e->kind == CEDAR_E_SUB ? __builtin_sub_overflow(x, y, &r)
                                            : __builtin_mul_overflow(x, y, &r);
        if (ovf)
            return everr(ev, "integer overflow: %" PRId64 " %s %" PRId64, x, op, y);
        set_long(out, r);
        return 0;
    }
    case CEDAR_E_IN:
        if (eval(ev, e->u.op.a, &a) < 0 || eval(ev, e->u.op.b, &b) < 0)
            return -1;
        return eval_in(ev, &a, &b, out);
    case CEDAR_E_IF: {
        bool c;
        if (eval_bool(ev, e->u.op.a, "`if`", &c) < 0)
            return -1;
        return eval(ev, c ? e->u.op.b : e->u.op.c, out);
    }
    case CEDAR_E_GETATTR:
    case CEDAR_E_HAS:
        if (eval(ev, e->u.attr.e, &a) < 0)
            return -1;
        return entity_attr(ev, &a, &e->u.attr.attr, e->kind == CEDAR_E_HAS, out);
    case CEDAR_E_LIKE:
        if (eval(ev, e->u.like.e, &a) < 0)
            return -1;
        if (a.kind != CEDAR_V_STRING)
            return type_err(ev, "`like`", "string", &a);
        set_bool(out, like_match(e->u.like.pat, a.u.s.ptr, a.u.s.len));
        return 0;
    case CEDAR_E_IS:
        if (eval(ev, e->u.is.e, &a) < 0)
            return -1;
        if (a.kind != CEDAR_V_ENTITY)
            return type_err(ev, "`is`", "entity", &a);
        if (!cedar_str_eq(&a.u.uid->type, &e->u.is.type)) {
            set_bool(out, false);
            return 0;
        }
        if (e->u.is.in == NULL) {
            set_bool(out, true);
            return 0;
        }
        if (eval(ev, e->u.is.in, &b) < 0)
            return -1;
        return eval_in(ev, &a, &b, out);
    case CEDAR_E_SET: {
        size_t n = e->u.list.n;
        struct cedar_value stackbuf[16];
        struct cedar_value *v = n <= 16 ? stackbuf : cedar_arena_alloc(ev->a, n * sizeof(*v));
        if (v == NULL)
            return everr(ev, "out of memory");
        for (size_t i = 0; i < n; i++)
            if (eval(ev, e->u.list.args[i], &v[i]) < 0)
                return -1;
        out->kind = CEDAR_V_SET;
        if (cedar_set_build(ev->a, v, n, &out->u.set) < 0)
            return everr(ev, "out of memory");
        return 0;
    }
    case CEDAR_E_RECORD: {
        size_t n = e->u.list.n;
        struct cedar_record_attr *v = cedar_arena_alloc(ev->a, (n ? n : 1) * sizeof(*v));
        if (v == NULL)
            return everr(ev, "out of memory");
        for (size_t i = 0; i < n; i++) {
            v[i].key = e->u.list.keys[i];
            if (eval(ev, e->u.list.args[i], &v[i].val) < 0)
                return -1;
        }
        out->kind = CEDAR_V_RECORD;
        if (cedar_record_build(ev->a, v, n, false, &out->u.rec) < 0)
            return everr(ev, "out of memory");
        return 0;
    }
    case CEDAR_E_CALL:
        return eval_call(ev, e, out);
    }
    return everr(ev, "unknown expression kind %d", e->kind);
}

static int eval(struct ev *ev, const struct cedar_expr *e, struct cedar_value *out)
{
    if (e->folded != NULL) {
        *out = *e->folded;
        return 0;
    }
    if (++ev->depth > CEDAR_MAX_DEPTH + 8) {
        ev->depth--;
        return everr(ev, "expression nested too deeply");
    }
    memset(out, 0, sizeof(*out));
    int r = eval_inner(ev, e, out);
    ev->depth--;
    return r;
}

int cedar_eval_expr(const struct cedar_expr *e, const struct cedar_entities *es,
                    const struct cedar_request *req, struct cedar_arena *scratch,
                    struct cedar_value *out, char *err, size_t errlen)
{
    struct ev ev = {es, req, scratch, err, errlen, 0};
    struct cedar_value v;
    if (eval(&ev, e, &v) < 0)
        return NHID_ERR_INVALID;
    *out = v;
    return NHID_OK;
}

/* ---- scope -------------------------------------------------------------------- */

static bool scope_match(const struct cedar_entities *es, const struct cedar_scope *sc,
                        const struct cedar_uid *u)
{
    switch (sc->op) {
    case CEDAR_SCOPE_ANY:
        return true;
    case CEDAR_SCOPE_EQ:
        return sc->uid != NULL && cedar_uid_eq(u, sc->uid);
    case CEDAR_SCOPE_IN:
        return sc->uid != NULL && cedar_entity_in(es, u, sc->uid);
    case CEDAR_SCOPE_IS:
        return cedar_str_eq(&u->type, &sc->type);
    case CEDAR_SCOPE_IS_IN:
        return cedar_str_eq(&u->type, &sc->type) && sc->uid != NULL &&
               cedar_entity_in(es, u, sc->uid);
    case CEDAR_SCOPE_IN_LIST:
        for (size_t i = 0; i < sc->nlist; i++)
            if (cedar_entity_in(es, u, sc->list[i]))
                return true;
        return false;
    }
    return false;
}

int cedar_policy_applies(const struct cedar_policy *p, const struct cedar_entities *es,
                         const struct cedar_request *req, struct cedar_arena *scratch, char *err,
                         size_t errlen)
{
    if (p->is_template)
        return 0;
    if (!scope_match(es, &p->principal, &req->principal) ||
        !scope_match(es, &p->action, &req->action) ||
        !scope_match(es, &p->resource, &req->resource))
        return 0;
    struct ev ev = {es, req, scratch, err, errlen, 0};
    for (size_t i = 0; i < p->ncond; i++) {
        struct cedar_value v;
        if (eval(&ev, p->conds[i].expr, &v) < 0)
            return -1;
        if (v.kind != CEDAR_V_BOOL) {
            type_err(&ev, p->conds[i].is_when ? "`when`" : "`unless`", "bool", &v);
            return -1;
        }
        if (v.u.b != p->conds[i].is_when)
            return 0;
    }
    return 1;
}

/* ---- authorization --------------------------------------------------------------- */

void cedar_decision_init(struct cedar_decision *d)
{
    memset(d, 0, sizeof(*d));
    cedar_arena_init(&d->scratch);
}

void cedar_decision_free(struct cedar_decision *d)
{
    if (d == NULL)
        return;
    free(d->reasons);
    free(d->errors);
    cedar_arena_free(&d->scratch);
    memset(d, 0, sizeof(*d));
}

struct authz {
    const struct cedar_entities *es;
    const struct cedar_request *req;
    struct cedar_decision *d;
    size_t npermit, nforbid;
    const struct cedar_policy **permits; /* stored in d->reasons region */
};

static int push_reason(struct cedar_decision *d, const struct cedar_policy *p)
{
    if (d->nreasons == d->cap_reasons) {
        size_t nc = d->cap_reasons ? d->cap_reasons * 2 : 16;
        const struct cedar_policy **n = realloc(d->reasons, nc * sizeof(*n));
        if (n == NULL)
            return NHID_ERR_NOMEM;
        d->reasons = n;
        d->cap_reasons = nc;
    }
    d->reasons[d->nreasons++] = p;
    return NHID_OK;
}

static int visit(const struct cedar_policy *p, void *ctx)
{
    struct authz *az = ctx;
    struct cedar_decision *d = az->d;
    char msg[sizeof(d->errors[0].message)];
    /* Once a forbid holds, permits no longer matter except for errors;
     * Cedar reports errors of every policy, so keep evaluating. */
    int r = cedar_policy_applies(p, az->es, az->req, &d->scratch, msg, sizeof(msg));
    if (r < 0) {
        if (d->nerrors == d->cap_errors) {
            size_t nc = d->cap_errors ? d->cap_errors * 2 : 8;
            struct cedar_eval_error *n = realloc(d->errors, nc * sizeof(*n));
            if (n == NULL)
                return NHID_ERR_NOMEM;
            d->errors = n;
            d->cap_errors = nc;
        }
        d->errors[d->nerrors].policy = p;
        snprintf(d->errors[d->nerrors].message, sizeof(d->errors[0].message), "%s", msg);
        d->nerrors++;
        return 0;
    }
    if (r == 0)
        return 0;
    if (p->effect == CEDAR_FORBID) {
        if (az->nforbid == 0) {
            /* drop collected permits: forbids determine the answer */
            d->nreasons = 0;
        }
        az->nforbid++;
        return push_reason(d, p);
    }
    az->npermit++;
    if (az->nforbid > 0)
        return 0;
    return push_reason(d, p);
}

int cedar_authorize(const struct cedar_policy_set *ps, const struct cedar_entities *es,
                    const struct cedar_request *req, struct cedar_decision *d)
{
    struct authz az = {es, req, d, 0, 0, NULL};
    d->allow = false;
    d->nreasons = 0;
    d->nerrors = 0;
    cedar_arena_reset(&d->scratch);
    int rc = cedar_index_foreach(ps, es, req, visit, &az);
    if (rc < 0)
        return rc;
    d->allow = az.nforbid == 0 && az.npermit > 0;
    return NHID_OK;
}

int cedar_request_make(struct cedar_arena *arena, const struct cedar_uid *principal,
                       const struct cedar_uid *action, const struct cedar_uid *resource,
                       const json_t *context, struct cedar_request *out, char *err, size_t errlen)
{
    struct cedar_request r;
    memset(&r, 0, sizeof(r));
    const struct cedar_uid *src[3] = {principal, action, resource};
    struct cedar_uid *dst[3] = {&r.principal, &r.action, &r.resource};
    for (int i = 0; i < 3; i++) {
        dst[i]->type.ptr = cedar_arena_strndup(arena, src[i]->type.ptr, src[i]->type.len);
        dst[i]->id.ptr = cedar_arena_strndup(arena, src[i]->id.ptr, src[i]->id.len);
        if (dst[i]->type.ptr == NULL || dst[i]->id.ptr == NULL) {
            snprintf(err, errlen, "out of memory");
            return NHID_ERR_NOMEM;
        }
        dst[i]->type.len = src[i]->type.len;
        dst[i]->id.len = src[i]->id.len;
        dst[i]->hash = cedar_uid_hash(dst[i]->type.ptr, dst[i]->type.len, dst[i]->id.ptr,
                                      dst[i]->id.len);
    }
    if (context == NULL) {
        r.context.kind = CEDAR_V_RECORD;
        r.context.u.rec = &cedar_empty_record;
    } else {
        if (!json_is_object(context)) {
            snprintf(err, errlen, "context must be a JSON object");
            return NHID_ERR_INVALID;
        }
        int rc = cedar_value_from_json(arena, context, &r.context, err, errlen);
        if (rc < 0)
            return rc;
        if (r.context.kind != CEDAR_V_RECORD) {
            snprintf(err, errlen, "context must be a record");
            return NHID_ERR_INVALID;
        }
    }
    *out = r;
    return NHID_OK;
}
