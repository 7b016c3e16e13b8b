/* json_text_test — the compact JSON writer writes exactly jansson's bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json_text.h"

static void assert_same_as_jansson(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(want);
    struct nhid_text t = {0};
    nhid_text_json(&t, v);
    assert_false(t.failed);
    assert_string_equal(t.buf, want);
    assert_int_equal(t.len, strlen(want));
    nhid_text_free(&t);
    free(want);
}

static void test_fixed_documents(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}",
        "[]",
        "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
        "{\"z\":1,\"a\":2,\"m\":3}", /* insertion order kept */
        "[\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f\"]",
        "[\"\\u0001\\u001f\\u007f\"]",
        "[\"caf\\u00e9 \\u2028 \\ud83d\\ude00 \\u00ff\"]",
        "[-9223372036854775808,9223372036854775807,0,-1]",
        "[0.5,1e300,-2.25,3.0,1.0000000000000002]",
        "{\"\":\"\",\"k\\u0001x\":[[[[]]]],\"n\":\"a\\u0000b\"}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_error_t err;
        json_t *v = json_loads(docs[i], JSON_ALLOW_NUL, &err);
        assert_non_null(v);
        assert_same_as_jansson(v);
        json_decref(v);
    }
    json_t *s = json_string("plain");
    assert_same_as_jansson(s); /* a bare string, as JSON_ENCODE_ANY */
    json_decref(s);
    struct nhid_text t = {0};
    nhid_text_json(&t, NULL);
    assert_string_equal(t.buf, "null");
    nhid_text_free(&t);
}

/* Random documents from a fixed seed: strings of every byte class, all types, nesting. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static json_t *random_string(void)
{
    static const char *const pieces[] = {"a",   "Z",        "\"",           "\\",
                                         "/",   "\n",       "\x01",         "\x1f",
                                         " ",   "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x98\x80",
                                         "\x7f"};
    char buf[64] = "";
    size_t n = next() % 8;
    for (size_t i = 0; i < n; i++)
        strcat(buf, pieces[next() % (sizeof(pieces) / sizeof(pieces[0]))]);
    return json_string(buf);
}

static json_t *random_value(unsigned depth)
{
    switch (depth > 5 ? next() % 5 : next() % 7) {
    case 0:
        return random_string();
    case 1:
        return json_integer((json_int_t)(int32_t)next() * (json_int_t)next());
    case 2:
        return json_real((double)(int32_t)next() / 64.0);
    case 3:
        return next() % 2 ? json_true() : json_false();
    case 4:
        return json_null();
    case 5: {
        json_t *a = json_array();
        for (unsigned i = next() % 4; i > 0; i--)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (unsigned i = next() % 4; i > 0; i--) {
            json_t *k = random_string();
            json_object_set_new(o, json_string_value(k), random_value(depth + 1));
            json_decref(k);
        }
        return o;
    }
    }
}

static void test_random_documents(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) {
        json_t *v = random_value(0);
        assert_same_as_jansson(v);
        json_decref(v);
    }
}

static void test_too_deep_fails(void **state)
{
    (void)state;
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < NHID_TEXT_JSON_DEPTH + 5; i++) {
        json_t *a = json_array();
        json_array_append_new(cur, a);
        cur = a;
    }
    struct nhid_text t = {0};
    nhid_text_json(&t, root);
    assert_true(t.failed);
    nhid_text_free(&t);
    json_decref(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_documents),
        cmocka_unit_test(test_random_documents),
        cmocka_unit_test(test_too_deep_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
