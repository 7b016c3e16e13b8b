/*
 * Unit tests for the Cedar lexer/parser, evaluator, entity store and
 * authorizer (src/cedar/). Negative cases: syntax errors with positions,
 * evaluation errors, limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cedar/cedar.h"
#include "cedar/internal.h"

static const char ENTITIES[] =
    "[{\"uid\":{\"type\":\"User\",\"id\":\"alice\"},\"attrs\":{\"age\":30,\"tags\":[\"a\",\"b\"],"
    "\"ip\":{\"__extn\":{\"fn\":\"ip\",\"arg\":\"10.0.0.1\"}},\"mgr\":{\"__entity\":{\"type\":"
    "\"User\",\"id\":\"bob\"}}},\"parents\":[{\"type\":\"Group\",\"id\":\"eng\"}],"
    "\"tags\":{\"env\":\"prod\"}},"
    "{\"uid\":{\"type\":\"Group\",\"id\":\"eng\"},\"attrs\":{},\"parents\":[{\"type\":\"Group\","
    "\"id\":\"all\"}]},"
    "{\"uid\":{\"type\":\"Group\",\"id\":\"all\"},\"attrs\":{},\"parents\":[]}]";

/* Evaluate `expr` against alice/read/doc; returns the formatted value or
 * "ERR" on an evaluation error, "PARSE" on a syntax error. */
static const char *ev(const char *expr)
{
    static char out[512];
    char err[256];
    struct cedar_arena a;
    struct cedar_entities *es = NULL;
    cedar_arena_init(&a);
    assert_int_equal(cedar_entities_from_json_text(ENTITIES, strlen(ENTITIES), &es, err, sizeof(err)),
                     NHID_OK);
    struct cedar_uid p, ac, r;
    assert_int_equal(cedar_uid_make(&a, "User", "alice", &p), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "Action", "read", &ac), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "Doc", "d1", &r), NHID_OK);
    json_t *ctx = json_pack("{s:i,s:s}", "n", 5, "s", "hello");
    struct cedar_request req;
    assert_int_equal(cedar_request_make(&a, &p, &ac, &r, ctx, &req, err, sizeof(err)), NHID_OK);
    json_decref(ctx);
    struct cedar_expr *e;
    if (cedar_expr_parse(&a, expr, strlen(expr), &e, err, sizeof(err)) < 0) {
        snprintf(out, sizeof(out), "PARSE");
    } else {
        struct cedar_value v;
        if (cedar_eval_expr(e, es, &req, &a, &v, err, sizeof(err)) < 0)
            snprintf(out, sizeof(out), "ERR");
        else
            cedar_value_format(&v, out, sizeof(out));
    }
    cedar_entities_free(es);
    cedar_arena_free(&a);
    return out;
}

#define EV(expr, want) assert_string_equal(ev(expr), want)

static void test_literals_and_arith(void **state)
{
    (void)state;
    EV("1 + 2 * 3", "7");
    EV("-9223372036854775808", "-9223372036854775808");
    EV("9223372036854775807 + 1", "ERR");
    EV("-(-9223372036854775808)", "ERR");
    EV("9223372036854775807 * 2", "ERR");
    EV("9223372036854775808", "PARSE");
    EV("\"a\\n\\t\\u{48}\\x41\"", "\"a\\n\\tHA\"");
    EV("\"bad \\q\"", "PARSE");
    EV("\"\\u{110000}\"", "PARSE");
    EV("1 + \"a\"", "ERR");
    EV("!!true", "true");
    EV("!1", "ERR");
}

static void test_equality_and_logic(void **state)
{
    (void)state;
    EV("1 == \"1\"", "false");
    EV("[1, 2, 2] == [2, 1]", "true");
    EV("{a: 1, b: [true]} == {b: [true], a: 1}", "true");
    EV("ip(\"10.0.0.1\") == ip(\"10.0.0.1/32\")", "true");
    EV("decimal(\"1.0\") == decimal(\"1.0000\")", "true");
    EV("false && (1 + \"x\")", "false");
    EV("true || (1 + \"x\")", "true");
    EV("true && 1", "ERR");
    EV("1 && true", "ERR");
    EV("if 1 < 2 then \"y\" else \"n\"", "\"y\"");
    EV("if 1 then 2 else 3", "ERR");
    EV("1 < 2 < 3", "PARSE");
    EV("{a: 1, a: 2}", "PARSE");
}

static void test_entities_and_in(void **state)
{
    (void)state;
    EV("principal in Group::\"all\"", "true");
    EV("principal in [Group::\"x\", Group::\"eng\"]", "true");
    EV("Group::\"all\" in Group::\"eng\"", "false");
    EV("principal in [1]", "ERR");
    EV("1 in Group::\"eng\"", "ERR");
    EV("User::\"nobody\" in User::\"nobody\"", "true");
    EV("principal.age", "30");
    EV("principal.nope", "ERR");
    EV("principal has nope", "false");
    EV("User::\"nobody\" has age", "false");
    EV("User::\"nobody\".age", "ERR");
    EV("principal.mgr == User::\"bob\"", "true");
    EV("principal is User", "true");
    EV("principal is Group in Group::\"eng\"", "false");
    EV("principal is User in Group::\"eng\"", "true");
    EV("1 is User", "ERR");
    EV("principal.getTag(\"env\")", "\"prod\"");
    EV("principal.hasTag(\"x\")", "false");
    EV("principal.getTag(\"x\")", "ERR");
    EV("context.n + 1", "6");
    EV("context has s", "true");
    EV("{a: {b: 1}} has a.b", "true");
    EV("{a: {b: 1}} has a.c", "false");
    EV("{a: 1} has a.c", "ERR");
}

static void test_strings_sets(void **state)
{
    (void)state;
    EV("\"hello\" like \"h*o\"", "true");
    EV("\"hello\" like \"h*x\"", "false");
    EV("\"a*b\" like \"a\\*b\"", "true");
    EV("\"axb\" like \"a\\*b\"", "false");
    EV("\"\" like \"*\"", "true");
    EV("\"abcabc\" like \"*bc*bc\"", "true");
    EV("1 like \"*\"", "ERR");
    EV("[1,2,3].contains(2)", "true");
    EV("[1,2,3].containsAll([1,3])", "true");
    EV("[1,2,3].containsAny([7,8])", "false");
    EV("[].isEmpty()", "true");
    EV("1.contains(1)", "ERR"); /* member access on a long */
    EV("\"x\".contains(1)", "ERR");
    EV("[1].containsAll(1)", "ERR");
    EV("[1].contains()", "PARSE");
    EV("[1].foo()", "PARSE");
    EV("foo(1)", "PARSE");
    EV("isIpv4(ip(\"1.2.3.4\"))", "PARSE");
}

static void test_extensions(void **state)
{
    (void)state;
    EV("ip(\"192.168.1.7\").isInRange(ip(\"192.168.1.0/24\"))", "true");
    EV("ip(\"192.168.2.7\").isInRange(ip(\"192.168.1.0/24\"))", "false");
    EV("ip(\"::1\").isLoopback()", "true");
    EV("ip(\"127.5.0.1\").isLoopback()", "true");
    EV("ip(\"224.0.0.1\").isMulticast()", "true");
    EV("ip(\"ff02::1\").isIpv6()", "true");
    EV("ip(\"01.2.3.4\")", "ERR");
    EV("ip(\"::ffff:1.2.3.4\")", "ERR");
    EV("ip(\"1.2.3.4/33\")", "ERR");
    EV("ip(\"1.2.3.4\", \"x\")", "ERR");
    EV("principal.ip.isIpv4()", "true");
    EV("decimal(\"1.23\").lessThan(decimal(\"1.24\"))", "true");
    EV("decimal(\"-1.5\").greaterThanOrEqual(decimal(\"-1.5\"))", "true");
    EV("decimal(\"1.23456\")", "ERR");
    EV("decimal(\"922337203685477.5808\")", "ERR");
    EV("decimal(\"1\")", "ERR");
    EV("decimal(\"1.0\") < decimal(\"2.0\")", "ERR");
    EV("datetime(\"2024-10-15\") < datetime(\"2024-10-15T00:00:01Z\")", "true");
    EV("datetime(\"2024-10-15T11:38:02.101+1134\").toTime() == duration(\"4m2s101ms\")", "true");
    EV("datetime(\"1969-12-31T23:00:00Z\").toDate() == datetime(\"1969-12-31\")", "true");
    EV("datetime(\"1969-12-31T23:00:00Z\").toTime().toHours()", "23");
    EV("datetime(\"2024-02-30\")", "ERR");
    EV("datetime(\"2024-01-01T00:00:00\")", "ERR");
    EV("duration(\"1d2h3m4s5ms\").toMilliseconds()", "93784005");
    EV("duration(\"-90m\").toHours()", "-1");
    EV("duration(\"1h1d\")", "ERR");
    EV("duration(\"\")", "ERR");
    EV("duration(\"99999999999999999999d\")", "ERR");
    EV("datetime(\"2024-01-02\").durationSince(datetime(\"2024-01-01\")).toDays()", "1");
    EV("datetime(\"2024-01-01\").offset(duration(\"1d\")) == datetime(\"2024-01-02\")", "true");
    EV("duration(\"1s\") < 5", "ERR");
    EV("duration(\"1s\") == 1000", "false");
}

static void test_parse_errors(void **state)
{
    (void)state;
    char err[256];
    struct cedar_policy_set *ps = NULL;
    const char *bad[][2] = {
        {"permit(principal, action, resource)", "<t>:1:36: unexpected end of input"},
        {"permit(principal, action, resource) when { 1 + };", "<t>:1:48"},
        {"permit(principal == ?resource, action, resource);", "<t>:1:21"},
        {"permit(principal, action == User::\"x\", resource);", "<t>:1:29"},
        {"forbid(principal, action, resource) when { \"\xff\" };", "<t>:1:45: invalid UTF-8"},
        {"permit(principal, action, resource) when { x };", "<t>:1:44"},
        {"@a(\"1\") @a(\"2\") permit(principal, action, resource);", "<t>:1:9: duplicate"},
        {"permit(principal, action, resource) when { context.x };\npermit(p", "<t>:2:8"},
    };
    for (size_t i = 0; i < NHID_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(cedar_policy_set_parse(bad[i][0], strlen(bad[i][0]), "<t>", &ps, err,
                                                sizeof(err)),
                         NHID_ERR_INVALID);
        if (strncmp(err, bad[i][1], strlen(bad[i][1])) != 0)
            fail_msg("case %zu: got \"%s\", want prefix \"%s\"", i, err, bad[i][1]);
    }
    /* depth limit: no stack overflow */
    size_t n = 100000;
    char *deep = malloc(2 * n + 64);
    assert_non_null(deep);
    strcpy(deep, "permit(principal,action,resource) when {");
    size_t o = strlen(deep);
    for (size_t i = 0; i < n; i++)
        deep[o++] = '(';
    deep[o++] = '1';
    deep[o] = '\0';
    assert_int_equal(cedar_policy_set_parse(deep, o, "<t>", &ps, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "nested"));
    /* long && chain beyond the depth limit */
    o = strlen("permit(principal,action,resource) when {");
    for (size_t i = 0; i < 2000; i++) {
        memcpy(deep + o, "true && ", 8);
        o += 8;
    }
    memcpy(deep + o, "true};", 7);
    o += 6;
    assert_int_equal(cedar_policy_set_parse(deep, o, "<t>", &ps, err, sizeof(err)), NHID_ERR_INVALID);
    free(deep);
}

static void test_authorize(void **state)
{
    (void)state;
    static const char pol[] =
        "@id(\"allow-eng\")\n"
        "permit(principal in Group::\"eng\", action in [Action::\"read\", Action::\"list\"], resource);\n"
        "forbid(principal, action, resource) when { context.blocked };\n"
        "permit(principal == User::\"alice\", action == Action::\"read\", resource is Doc)\n"
        "  unless { principal.age < 18 };\n"
        "permit(principal == ?principal, action, resource in ?resource);\n";
    char err[256];
    struct cedar_policy_set *ps = NULL;
    struct cedar_entities *es = NULL;
    assert_int_equal(cedar_policy_set_parse(pol, strlen(pol), "p.cedar", &ps, err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(ps->npolicies, 3);
    assert_int_equal(ps->ntemplates, 1);
    assert_non_null(cedar_policy_set_find(ps, "allow-eng"));
    assert_non_null(cedar_policy_set_find(ps, "policy1"));
    assert_non_null(cedar_policy_set_find(ps, "policy3"));
    assert_int_equal(cedar_entities_from_json_text(ENTITIES, strlen(ENTITIES), &es, err, sizeof(err)),
                     NHID_OK);
    struct cedar_arena a;
    cedar_arena_init(&a);
    struct cedar_uid p, ac, r, bob, folder;
    assert_int_equal(cedar_uid_make(&a, "User", "alice", &p), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "Action", "read", &ac), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "Doc", "d1", &r), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "User", "bob", &bob), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "Doc", "d1", &folder), NHID_OK);
    struct cedar_decision d;
    cedar_decision_init(&d);

    /* context.blocked missing -> forbid errors, two permits determine */
    struct cedar_request req;
    json_t *ctx = json_object();
    assert_int_equal(cedar_request_make(&a, &p, &ac, &r, ctx, &req, err, sizeof(err)), NHID_OK);
    assert_int_equal(cedar_authorize(ps, es, &req, &d), NHID_OK);
    assert_true(d.allow);
    assert_int_equal(d.nreasons, 2);
    assert_string_equal(d.reasons[0]->id.ptr, "allow-eng");
    assert_string_equal(d.reasons[1]->id.ptr, "policy2");
    assert_int_equal(d.nerrors, 1);
    assert_string_equal(d.errors[0].policy->id.ptr, "policy1");

    /* blocked -> forbid overrides */
    json_object_set_new(ctx, "blocked", json_true());
    assert_int_equal(cedar_request_make(&a, &p, &ac, &r, ctx, &req, err, sizeof(err)), NHID_OK);
    assert_int_equal(cedar_authorize(ps, es, &req, &d), NHID_OK);
    assert_false(d.allow);
    assert_int_equal(d.nreasons, 1);
    assert_string_equal(d.reasons[0]->id.ptr, "policy1");

    /* bob: nothing applies until the template is linked */
    json_object_set_new(ctx, "blocked", json_false());
    assert_int_equal(cedar_request_make(&a, &bob, &ac, &r, ctx, &req, err, sizeof(err)), NHID_OK);
    assert_int_equal(cedar_authorize(ps, es, &req, &d), NHID_OK);
    assert_false(d.allow);
    assert_int_equal(cedar_policy_set_link(ps, "policy3", "bob-d1", &bob, &folder, err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(cedar_authorize(ps, es, &req, &d), NHID_OK);
    assert_true(d.allow);
    assert_string_equal(d.reasons[0]->id.ptr, "bob-d1");
    assert_int_equal(cedar_policy_set_link(ps, "policy3", "bob-d1", &bob, &folder, err, sizeof(err)),
                     NHID_ERR_EXISTS);
    assert_int_equal(cedar_policy_set_link(ps, "policy0", "x", &bob, &folder, err, sizeof(err)),
                     NHID_ERR_NOT_FOUND);

    json_decref(ctx);
    cedar_decision_free(&d);
    cedar_arena_free(&a);
    cedar_entities_free(es);
    cedar_policy_set_free(ps);
}

static void test_entities_json_errors(void **state)
{
    (void)state;
    char err[256];
    struct cedar_entities *es = NULL;
    const char *bad[] = {
        "{}",
        "[{\"uid\":{\"type\":\"1bad\",\"id\":\"x\"}}]",
        "[{\"uid\":{\"type\":\"A\",\"id\":\"x\"}},{\"uid\":{\"type\":\"A\",\"id\":\"x\"}}]",
        "[{\"uid\":{\"type\":\"A\",\"id\":\"x\"},\"attrs\":{\"f\":1.5}}]",
        "[{\"uid\":{\"type\":\"A\",\"id\":\"x\"},\"attrs\":{\"f\":{\"__extn\":{\"fn\":\"ip\",\"arg\":\"nope\"}}}}]",
        "[{\"uid\":{\"type\":\"A\",\"id\":\"x\"},\"bogus\":1}]",
        "[",
        /* a parent cycle is rejected, like the reference implementation */
        ("[{\"uid\":{\"type\":\"A\",\"id\":\"x\"},\"parents\":[{\"type\":\"A\",\"id\":\"y\"}]},"
         "{\"uid\":{\"type\":\"A\",\"id\":\"y\"},\"parents\":[{\"type\":\"A\",\"id\":\"x\"}]}]"),
    };
    for (size_t i = 0; i < NHID_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_true(cedar_entities_from_json_text(bad[i], strlen(bad[i]), &es, err, sizeof(err)) < 0);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals_and_arith),   cmocka_unit_test(test_equality_and_logic),
        cmocka_unit_test(test_entities_and_in),      cmocka_unit_test(test_strings_sets),
        cmocka_unit_test(test_extensions),           cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_authorize),            cmocka_unit_test(test_entities_json_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
