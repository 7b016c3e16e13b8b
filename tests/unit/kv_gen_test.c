/* kv_gen_test — the KV engine's pure helpers: password and API-key
 * generators, RFC 7386 merge patch, secret path validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv/kv.h"

static void test_password_classes(void **state)
{
    (void)state;
    char pw[NHID_KV_PASSWORD_MAX + 1];
    for (int i = 0; i < 200; i++) {
        assert_int_equal(nhid_kv_password(12, NHID_KV_LOWER | NHID_KV_DIGITS, pw), NHID_OK);
        assert_int_equal(strlen(pw), 12);
        assert_true(strspn(pw, "abcdefghijklmnopqrstuvwxyz0123456789") == 12);
        assert_non_null(strpbrk(pw, "0123456789"));
        assert_non_null(strpbrk(pw, "abcdefghijklmnopqrstuvwxyz"));
    }
    assert_int_equal(nhid_kv_password(NHID_KV_PASSWORD_MAX, 0xf, pw), NHID_OK);
    assert_int_equal(strlen(pw), NHID_KV_PASSWORD_MAX);
    /* two passwords differ */
    char a[33], b[33];
    assert_int_equal(nhid_kv_password(32, 0xf, a), NHID_OK);
    assert_int_equal(nhid_kv_password(32, 0xf, b), NHID_OK);
    assert_string_not_equal(a, b);
}

static void test_password_bad(void **state)
{
    (void)state;
    char pw[2048];
    assert_int_equal(nhid_kv_password(NHID_KV_PASSWORD_MIN - 1, 0xf, pw), NHID_ERR_INVALID);
    assert_int_equal(nhid_kv_password(NHID_KV_PASSWORD_MAX + 1, 0xf, pw), NHID_ERR_INVALID);
    assert_int_equal(nhid_kv_password(16, 0, pw), NHID_ERR_INVALID);
}

static void test_api_key(void **state)
{
    (void)state;
    char *k = NULL;
    assert_int_equal(nhid_kv_api_key("sk_", &k), NHID_OK);
    assert_int_equal(strlen(k), 3 + 43); /* 256 bits in base64url without padding */
    assert_memory_equal(k, "sk_", 3);
    free(k);
    assert_int_equal(nhid_kv_api_key("bad prefix", &k), NHID_ERR_INVALID);
    assert_int_equal(nhid_kv_api_key("0123456789012345678901234567890123", &k), NHID_ERR_INVALID);
}

static void check_patch(const char *target, const char *patch, const char *want)
{
    json_t *t = json_loads(target, JSON_DECODE_ANY, NULL);
    json_t *p = json_loads(patch, JSON_DECODE_ANY, NULL);
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    json_t *r = nhid_kv_merge_patch(t, p);
    assert_true(json_equal(r, w));
    json_decref(r);
    json_decref(p);
    json_decref(w);
}

/* RFC 7386 Appendix A examples. */
static void test_merge_patch(void **state)
{
    (void)state;
    check_patch("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check_patch("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    check_patch("{\"a\":\"b\"}", "{\"a\":null}", "{}");
    check_patch("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
    check_patch("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check_patch("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
    check_patch("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}");
    check_patch("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    check_patch("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
    check_patch("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
    check_patch("{\"a\":\"foo\"}", "null", "null");
    check_patch("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
    check_patch("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
    check_patch("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    check_patch("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

static void test_path_valid(void **state)
{
    (void)state;
    assert_true(nhid_kv_path_valid("a"));
    assert_true(nhid_kv_path_valid("app/db/password"));
    assert_true(nhid_kv_path_valid("a.b/..c/d.."));
    assert_false(nhid_kv_path_valid(""));
    assert_false(nhid_kv_path_valid("/a"));
    assert_false(nhid_kv_path_valid("a/"));
    assert_false(nhid_kv_path_valid("a//b"));
    assert_false(nhid_kv_path_valid("a/../b"));
    assert_false(nhid_kv_path_valid(".."));
    assert_false(nhid_kv_path_valid("a/./b"));
    assert_false(nhid_kv_path_valid("a\nb"));
    assert_false(nhid_kv_path_valid("a\x7f"));
    char longp[800];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_false(nhid_kv_path_valid(longp));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_classes), cmocka_unit_test(test_password_bad),
        cmocka_unit_test(test_api_key),          cmocka_unit_test(test_merge_patch),
        cmocka_unit_test(test_path_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
