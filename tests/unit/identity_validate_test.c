/*
 * identity_validate_test — the identity module's input rules and in-memory
 * services: names, SPIFFE IDs (SPIFFE ID spec §2), CIDRs, the failure rate
 * limiter, the credential-type registry and source networks. Negative
 * cases first: untrusted input must be refused with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/cidr.h"
#include "identity/identity.h"

static void test_names(void **state)
{
    (void)state;
    char msg[256];
    static const char *const good[] = {"a", "web-1", "A.b_c-9", "0abc"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(good); i++)
        assert_int_equal(nhid_identity_name_valid("name", good[i], msg, sizeof(msg)), NHID_OK);
    static const char *const bad[] = {"",    "-a",  ".a",   "_a",  "a b",
                                      "a/b", "a\n", "café", "a=b", "a%2F"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(bad); i++) {
        msg[0] = '\0';
        assert_int_equal(nhid_identity_name_valid("name", bad[i], msg, sizeof(msg)),
                         NHID_ERR_INVALID);
        assert_true(strlen(msg) > 0);
    }
    char longname[NHID_IDENTITY_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(nhid_identity_name_valid("name", longname, msg, sizeof(msg)),
                     NHID_ERR_INVALID);
    longname[NHID_IDENTITY_NAME_MAX] = '\0';
    assert_int_equal(nhid_identity_name_valid("name", longname, msg, sizeof(msg)), NHID_OK);
    assert_int_equal(nhid_identity_name_valid("name", NULL, msg, sizeof(msg)), NHID_ERR_INVALID);
}

static void test_spiffe_ids(void **state)
{
    (void)state;
    char msg[256];
    static const char *const good[] = {"spiffe://td", "spiffe://nhid.local/workload/web-1",
                                       "spiffe://example.org/ns/prod/sa/x_y.z"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(good); i++)
        assert_int_equal(nhid_identity_spiffe_valid(good[i], msg, sizeof(msg)), NHID_OK);
    static const char *const bad[] = {
        "",                   /* empty */
        "https://td/a",       /* scheme */
        "spiffe://",          /* no trust domain */
        "spiffe://TD/a",      /* upper-case trust domain (§2.1) */
        "spiffe://td/a//b",   /* empty segment (§2.2) */
        "spiffe://td/a/",     /* trailing slash */
        "spiffe://td/./a",    /* dot segment */
        "spiffe://td/../a",   /* dot-dot segment */
        "spiffe://td/a?x=1",  /* query */
        "spiffe://td/a#f",    /* fragment */
        "spiffe://user@td/a", /* userinfo */
        "spiffe://td:8080/a", /* port */
        "spiffe://td/a%20b",  /* percent-encoding */
    };
    for (size_t i = 0; i < NHID_ARRAY_LEN(bad); i++) {
        msg[0] = '\0';
        assert_int_equal(nhid_identity_spiffe_valid(bad[i], msg, sizeof(msg)), NHID_ERR_INVALID);
        assert_true(strlen(msg) > 0);
    }
    char *huge = malloc(NHID_IDENTITY_SPIFFE_MAX + 32);
    strcpy(huge, "spiffe://td/");
    memset(huge + 12, 'a', NHID_IDENTITY_SPIFFE_MAX);
    huge[12 + NHID_IDENTITY_SPIFFE_MAX] = '\0';
    assert_int_equal(nhid_identity_spiffe_valid(huge, msg, sizeof(msg)), NHID_ERR_INVALID);
    free(huge);
}

static void test_cidrs(void **state)
{
    (void)state;
    struct nhid_cidr c;
    static const char *const bad[] = {"",          "10.0.0.0/33",  "10.0.0/8",
                                      "10.0.0.0/", "10.0.0.0/-1",  "::/129",
                                      "x",         "10.0.0.0/8/8", "10.0.0.0/ 8"};
    for (size_t i = 0; i < NHID_ARRAY_LEN(bad); i++)
        assert_int_equal(nhid_cidr_parse(bad[i], &c), NHID_ERR_INVALID);
    assert_int_equal(nhid_cidr_parse("10.1.0.0/16", &c), NHID_OK);
    assert_true(nhid_cidr_contains(&c, "10.1.200.3"));
    assert_false(nhid_cidr_contains(&c, "10.2.0.1"));
    assert_true(nhid_cidr_contains(&c, "::ffff:10.1.2.3"));
    assert_false(nhid_cidr_contains(&c, "2001:db8::1"));
    assert_int_equal(nhid_cidr_parse("10.1.2.3/31", &c), NHID_OK);
    assert_true(nhid_cidr_contains(&c, "10.1.2.2"));
    assert_false(nhid_cidr_contains(&c, "10.1.2.4"));
    assert_int_equal(nhid_cidr_parse("2001:db8::/32", &c), NHID_OK);
    assert_true(nhid_cidr_contains(&c, "2001:db8:ffff::1"));
    assert_false(nhid_cidr_contains(&c, "2001:db9::1"));
    assert_int_equal(nhid_cidr_parse("127.0.0.1", &c), NHID_OK);
    assert_true(nhid_cidr_contains(&c, "127.0.0.1"));
    assert_false(nhid_cidr_contains(&c, "127.0.0.2"));
    json_t *list = json_pack("[s, s]", "192.168.0.0/16", "127.0.0.0/8");
    assert_true(nhid_cidr_list_allows(list, "127.9.9.9"));
    assert_false(nhid_cidr_list_allows(list, "8.8.8.8"));
    json_decref(list);
    json_t *empty = json_array();
    assert_true(nhid_cidr_list_allows(empty, "8.8.8.8"));
    json_decref(empty);
}

static void test_rate_limit(void **state)
{
    (void)state;
    int retry = 0;
    nhid_identity_rate_reset();
    for (int i = 0; i < NHID_AUTH_FAIL_BURST; i++) {
        assert_int_equal(nhid_identity_rate_check("ip/10.0.0.1", &retry), NHID_OK);
        nhid_identity_rate_fail("ip/10.0.0.1");
    }
    assert_int_equal(nhid_identity_rate_check("ip/10.0.0.1", &retry), NHID_ERR_RATE_LIMIT);
    assert_true(retry >= 1 && retry <= NHID_AUTH_FAIL_REFILL_S + 1);
    /* Other keys are independent. */
    assert_int_equal(nhid_identity_rate_check("ip/10.0.0.2", &retry), NHID_OK);
    nhid_identity_rate_reset();
    assert_int_equal(nhid_identity_rate_check("ip/10.0.0.1", &retry), NHID_OK);
}

static int revoke_ok(struct nhid_core *core, struct nhid_txn *txn, const char *e, const char *id)
{
    (void)core;
    (void)txn;
    (void)e;
    (void)id;
    return NHID_OK;
}

static void test_cred_types(void **state)
{
    (void)state;
    assert_int_equal(nhid_identity_cred_register_type("", revoke_ok), NHID_ERR_INVALID);
    assert_int_equal(nhid_identity_cred_register_type("Bad/Type", revoke_ok), NHID_ERR_INVALID);
    assert_int_equal(nhid_identity_cred_register_type("x509", NULL), NHID_ERR_INVALID);
    assert_int_equal(nhid_identity_cred_register_type("x509", revoke_ok), NHID_OK);
    assert_int_equal(nhid_identity_cred_register_type("x509", revoke_ok), NHID_OK); /* replace */
    char name[32];
    int rc = NHID_OK;
    for (int i = 0; i < NHID_CRED_TYPES_MAX + 2 && rc == NHID_OK; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        rc = nhid_identity_cred_register_type(name, revoke_ok);
    }
    assert_int_equal(rc, NHID_ERR_TOO_LARGE); /* bounded */
}

static void test_networks(void **state)
{
    (void)state;
    char net[64];
    nhid_identity_source_network("10.1.2.3", net, sizeof(net));
    assert_string_equal(net, "10.1.2.0/24");
    nhid_identity_source_network("2001:db8:1:2:3:4:5:6", net, sizeof(net));
    assert_string_equal(net, "2001:db8:1:2::/64");
    nhid_identity_source_network("not-an-ip", net, sizeof(net));
    assert_string_equal(net, "not-an-ip");
}

static void test_audit_event(void **state)
{
    (void)state;
    json_t *e = nhid_identity_audit_event("web-1", NULL, "login_failed", "approle", "10.0.0.1",
                                          true, "wrong secret ID");
    json_t *i = json_object_get(e, "identity");
    assert_string_equal(json_string_value(json_object_get(i, "name")), "web-1");
    assert_null(json_object_get(i, "entity_id"));
    assert_true(json_is_true(json_object_get(i, "anomaly")));
    json_decref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),       cmocka_unit_test(test_spiffe_ids),
        cmocka_unit_test(test_cidrs),       cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_cred_types),  cmocka_unit_test(test_networks),
        cmocka_unit_test(test_audit_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
