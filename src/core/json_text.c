/* json_text — a growing text buffer and a compact JSON writer (json_text.h). */
#include "core/json_text.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int nhid_text_add(const char *s, size_t n, void *arg)
{
    struct nhid_text *t = arg;
    if (t->failed)
        return -1;
    if (n >= t->cap - t->len) {
        size_t cap = t->cap ? t->cap : 512;
        while (cap - t->len <= n && cap < SIZE_MAX / 2)
            cap *= 2;
        char *nb = cap - t->len > n ? malloc(cap) : NULL;
        if (nb == NULL) {
            t->failed = true;
            return -1;
        }
        /* Copy and wipe rather than realloc: the old block may hold secrets. */
        if (t->len)
            memcpy(nb, t->buf, t->len);
        nhid_free_secret(t->buf, t->cap);
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0'; /* always room: n < cap - len */
    return 0;
}

void nhid_text_lit(struct nhid_text *t, const char *s)
{
    nhid_text_add(s, strlen(s), t);
}

/* As jansson's dump_string without JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH. */
void nhid_text_json_string(struct nhid_text *t, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF"; /* jansson: "\\u%04X" */
    const char *end = s + len, *run = s;
    nhid_text_add("\"", 1, t);
    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        nhid_text_add(run, (size_t)(s - run), t);
        run = s + 1;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            nhid_text_add(esc, 2, t);
            break;
        case '\b':
        case '\f':
        case '\n':
        case '\r':
        case '\t':
            esc[1] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            nhid_text_add(esc, 2, t);
            break;
        default:
            nhid_text_add(esc, 6, t);
            break;
        }
    }
    nhid_text_add(run, (size_t)(s - run), t);
    nhid_text_add("\"", 1, t);
}

static void write_value(struct nhid_text *t, const json_t *v, unsigned depth)
{
    char num[40];
    if (depth > NHID_TEXT_JSON_DEPTH) {
        t->failed = true;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        bool first = true;
        nhid_text_add("{", 1, t);
        json_object_foreach((json_t *)v, key, val)
        {
            if (!first)
                nhid_text_add(",", 1, t);
            first = false;
            nhid_text_json_string(t, key, strlen(key));
            nhid_text_add(":", 1, t);
            write_value(t, val, depth + 1);
        }
        nhid_text_add("}", 1, t);
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        nhid_text_add("[", 1, t);
        for (size_t i = 0; i < n; i++) {
            if (i)
                nhid_text_add(",", 1, t);
            write_value(t, json_array_get(v, i), depth + 1);
        }
        nhid_text_add("]", 1, t);
        break;
    }
    case JSON_STRING:
        nhid_text_json_string(t, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        nhid_text_lit(t, num);
        break;
    case JSON_REAL:
        /* Reals are rare here: jansson formats them, so the bytes stay its own. */
        if (json_dump_callback(v, nhid_text_add, t, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
            t->failed = true;
        break;
    case JSON_TRUE:
        nhid_text_add("true", 4, t);
        break;
    case JSON_FALSE:
        nhid_text_add("false", 5, t);
        break;
    case JSON_NULL:
        nhid_text_add("null", 4, t);
        break;
    }
}

void nhid_text_json(struct nhid_text *t, const json_t *v)
{
    if (v == NULL)
        nhid_text_add("null", 4, t);
    else
        write_value(t, v, 0);
}

void nhid_text_free(struct nhid_text *t)
{
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
}

void nhid_text_free_secret(struct nhid_text *t)
{
    nhid_free_secret(t->buf, t->cap);
    t->buf = NULL;
    t->len = t->cap = 0;
}
