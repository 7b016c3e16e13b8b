/* cedar_validate_test.c — strict policy validation, request and entity
 * validation, and agreement with the Cedar conformance corpus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cedar/schema.h"

static const char *SCHEMA =
    "entity Group;\n"
    "entity User in [Group] = { name: String, age?: Long, boss?: User,\n"
    "  addr: { city: String, zip?: Long }, roles: Set<String>, ip: ipaddr } tags Long;\n"
    "entity Doc = { owner: User, level: Long, created: datetime, ttl: duration };\n"
    "entity Color enum [\"red\", \"green\"];\n"
    "action read, write appliesTo { principal: User, resource: Doc,\n"
    "  context: { mfa: Bool, tok?: String } };\n"
    "action paint appliesTo { principal: User, resource: Color, context: {} };\n"
    "action all in [read];\n";

static struct cedar_schema *g_schema;

static int setup(void **state)
{
    (void)state;
    char err[512];
    int rc = cedar_schema_parse(SCHEMA, strlen(SCHEMA), "s.cedarschema", false, &g_schema, err,
                                sizeof(err));
    if (rc != NHID_OK)
        fprintf(stderr, "%s\n", err);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    cedar_schema_free(g_schema);
    return 0;
}

/* Validate one policy text; returns the validator's result. */
static int check(const char *policy, char *firstdiag, size_t len)
{
    struct cedar_policy_set *ps = NULL;
    char err[512];
    int rc = cedar_policy_set_parse(policy, strlen(policy), "p.cedar", &ps, err, sizeof(err));
    if (rc != NHID_OK)
        fail_msg("policy does not parse: %s (%s)", err, policy);
    json_t *d = json_array();
    rc = cedar_validate_policies(g_schema, ps, d);
    if (firstdiag != NULL && len > 0) {
        firstdiag[0] = '\0';
        if (json_array_size(d) > 0)
            snprintf(firstdiag, len, "%s", json_string_value(json_array_get(d, 0)));
    }
    if (rc == NHID_OK && json_array_size(d) != 0)
        fail_msg("valid result with diagnostics for %s", policy);
    json_decref(d);
    cedar_policy_set_free(ps);
    return rc;
}

static void valid(const char *policy)
{
    char d[768];
    if (check(policy, d, sizeof(d)) != NHID_OK)
        fail_msg("expected valid: %s\n  got: %s", policy, d);
}

static void invalid(const char *policy, const char *want)
{
    char d[768];
    if (check(policy, d, sizeof(d)) != NHID_ERR_INVALID)
        fail_msg("expected invalid: %s", policy);
    if (want != NULL && strstr(d, want) == NULL)
        fail_msg("diagnostic \"%s\" does not mention \"%s\"", d, want);
    if (strncmp(d, "p.cedar:", 8) != 0)
        fail_msg("diagnostic \"%s\" lacks file:line:col", d);
}

static void test_valid_policies(void **state)
{
    (void)state;
    valid("permit(principal, action, resource);");
    valid("permit(principal in Group::\"g\", action == Action::\"read\", resource);");
    valid("permit(principal, action in [Action::\"read\", Action::\"write\"], resource is Doc)"
          " when { resource.owner == principal && context.mfa };");
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " principal has age && principal.age > 18 };");
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " if principal has boss then principal.boss.name == \"x\" else true };");
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " principal.addr has zip && principal.addr.zip < 5 };");
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " context has tok && context.tok like \"a*\" };");
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " principal.ip.isInRange(ip(\"10.0.0.0/8\")) && principal.roles.contains(\"admin\") };");
    /* two literals compare to a constant: no strict-mode type error */
    valid("permit(principal, action == Action::\"read\", resource) when { 1 == \"a\" || true };");
}

static void test_valid_policies2(void **state)
{
    (void)state;
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " resource.created < datetime(\"2024-01-01\") && resource.ttl <= duration(\"1h\") };");
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " principal.hasTag(\"k\") && principal.getTag(\"k\") > 3 };");
    valid("permit(principal, action == Action::\"paint\", resource == Color::\"red\");");
    valid("forbid(principal, action, resource) unless { principal is User };");
    /* an impossible policy is only a warning */
    valid("permit(principal, action == Action::\"read\", resource) when { principal is Group };");
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " false && principal.nope };");
    valid("permit(principal, action == Action::\"read\", resource) when {"
          " action in Action::\"read\" };");
}

static void test_invalid_policies(void **state)
{
    (void)state;
    invalid("permit(principal == Nope::\"x\", action, resource);", "unrecognized entity type");
    invalid("permit(principal, action == Action::\"nope\", resource);", "unrecognized action");
    invalid("permit(principal, action, resource == Color::\"blue\");", "enumerated");
    invalid("permit(principal is Doc, action == Action::\"read\", resource);",
            "invalid action application");
    invalid("permit(principal, action == Action::\"read\", resource) when { principal.age > 1 };",
            "optional attribute");
    invalid("permit(principal, action == Action::\"read\", resource) when { principal.nope };",
            "not found");
    invalid("permit(principal, action == Action::\"read\", resource) when { 1 + \"a\" == 2 };",
            "expected Long");
    invalid("permit(principal, action == Action::\"read\", resource) when { context.mfa == 1 };",
            "==");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " resource.created + 0 == 0 || true };", "expected Long");
    invalid("permit(principal, action == Action::\"read\", resource) when { [1, \"a\"] == [] };",
            "incompatible");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " [].isEmpty() };", "empty set");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " ip(\"300.1.1.1\").isLoopback() };", "invalid argument");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " ip(principal.name).isLoopback() };", "literal");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " principal.getTag(\"k\") > 3 };", "hasTag");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " (principal has age || true) && principal.age > 1 };", "optional");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " if context.mfa then 1 else \"a\" };", "incompatible");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " principal.name < \"b\" };", "compare");
    invalid("permit(principal, action == Action::\"read\", resource) when {"
            " principal.roles.contains(1) };", "incompatible");
}

static void test_request_entities(void **state)
{
    (void)state;
    struct cedar_arena a;
    cedar_arena_init(&a);
    struct cedar_uid p, act, r, bad;
    char err[512];
    assert_int_equal(cedar_uid_make(&a, "User", "u", &p), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "Action", "read", &act), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "Doc", "d", &r), NHID_OK);
    assert_int_equal(cedar_uid_make(&a, "Group", "g", &bad), NHID_OK);
    json_t *ctx = json_pack("{s:b}", "mfa", 1);
    struct cedar_request req;
    assert_int_equal(cedar_request_make(&a, &p, &act, &r, ctx, &req, err, sizeof(err)), NHID_OK);
    assert_int_equal(cedar_validate_request(g_schema, &req, err, sizeof(err)), NHID_OK);
    json_t *ctx2 = json_pack("{s:s}", "mfa", "yes");
    assert_int_equal(cedar_request_make(&a, &p, &act, &r, ctx2, &req, err, sizeof(err)), NHID_OK);
    assert_int_equal(cedar_validate_request(g_schema, &req, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "context"));
    assert_int_equal(cedar_request_make(&a, &bad, &act, &r, ctx, &req, err, sizeof(err)), NHID_OK);
    assert_int_equal(cedar_validate_request(g_schema, &req, err, sizeof(err)), NHID_ERR_INVALID);
    json_decref(ctx);
    json_decref(ctx2);

    const char *good =
        "[{\"uid\": {\"type\": \"Group\", \"id\": \"g\"}, \"attrs\": {}, \"parents\": []},"
        " {\"uid\": {\"type\": \"Doc\", \"id\": \"d\"}, \"parents\": [], \"attrs\": {"
        "   \"owner\": {\"__entity\": {\"type\": \"User\", \"id\": \"u\"}}, \"level\": 3,"
        "   \"created\": {\"__extn\": {\"fn\": \"datetime\", \"arg\": \"2024-01-01\"}},"
        "   \"ttl\": {\"__extn\": {\"fn\": \"duration\", \"arg\": \"1h\"}}}}]";
    struct cedar_entities *es = NULL;
    assert_int_equal(cedar_entities_from_json_text(good, strlen(good), &es, err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(cedar_validate_entities(g_schema, es, err, sizeof(err)), NHID_OK);
    cedar_entities_free(es);
    const char *badj = "[{\"uid\": {\"type\": \"Doc\", \"id\": \"d\"}, \"parents\": [],"
                       " \"attrs\": {\"level\": \"x\"}}]";
    es = NULL;
    assert_int_equal(cedar_entities_from_json_text(badj, strlen(badj), &es, err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(cedar_validate_entities(g_schema, es, err, sizeof(err)), NHID_ERR_INVALID);
    cedar_entities_free(es);
    cedar_arena_free(&a);
}

/* The conformance corpus lives in shared/ beside the repository; ctest runs
 * unit tests from the source directory, so ../shared is the fallback. */
static const char *corpus_base(void)
{
    static char buf[1024];
    const char *src = getenv("NHID_SOURCE_DIR");
    if (src != NULL) {
        snprintf(buf, sizeof(buf), "%s/../shared/cedar-integration-tests", src);
        FILE *f = fopen(buf, "r");
        if (f != NULL) {
            fclose(f);
            return buf;
        }
    }
    return "../shared/cedar-integration-tests";
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (b != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b != NULL) {
        b[n] = '\0';
        *len = (size_t)n;
    }
    return b;
}

/* Read `"key": "value"` from a test file's text (requests in the corpus may
 * hold NUL object keys, which jansson rejects, so no full JSON parse). */
static bool field(const char *txt, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\": \"", key);
    const char *p = strstr(txt, pat);
    if (p == NULL)
        return false;
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= len)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* The validator agrees with `shouldValidate` of every corpus test. */
static void test_corpus_agreement(void **state)
{
    (void)state;
    const char *base = corpus_base();
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "ls '%s'/corpus-tests/*.json 2>/dev/null | grep -v entities.json",
             base);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        skip();
    char path[1024];
    size_t total = 0, agree = 0;
    while (fgets(path, sizeof(path), p) != NULL) {
        path[strcspn(path, "\n")] = '\0';
        size_t len = 0, plen = 0, slen = 0;
        char *t = slurp(path, &len);
        char pf[512], sf[512], pp[1600], sp[1600], err[512];
        if (t == NULL || !field(t, "policies", pf, sizeof(pf)) ||
            !field(t, "schema", sf, sizeof(sf))) {
            free(t);
            continue;
        }
        bool should = strstr(t, "\"shouldValidate\": true") != NULL;
        snprintf(pp, sizeof(pp), "%s/%s", base, pf);
        snprintf(sp, sizeof(sp), "%s/%s", base, sf);
        char *ptxt = slurp(pp, &plen), *stxt = slurp(sp, &slen);
        struct cedar_policy_set *ps = NULL;
        struct cedar_schema *s = NULL;
        total++;
        if (ptxt && stxt &&
            cedar_policy_set_parse(ptxt, plen, pp, &ps, err, sizeof(err)) == NHID_OK &&
            cedar_schema_parse(stxt, slen, sp, false, &s, err, sizeof(err)) == NHID_OK) {
            json_t *d = json_array();
            bool got = cedar_validate_policies(s, ps, d) == NHID_OK;
            if (got == should)
                agree++;
            else
                print_message("disagree (%s): %s\n", should ? "should validate" : "should not",
                              path);
            json_decref(d);
        } else {
            print_message("could not load %s: %s\n", path, err);
        }
        cedar_policy_set_free(ps);
        cedar_schema_free(s);
        free(ptxt);
        free(stxt);
        free(t);
    }
    pclose(p);
    if (total == 0)
        skip();
    print_message("corpus: %zu/%zu agree with shouldValidate\n", agree, total);
    assert_int_equal(agree, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_policies),   cmocka_unit_test(test_valid_policies2),
        cmocka_unit_test(test_invalid_policies), cmocka_unit_test(test_request_entities),
        cmocka_unit_test(test_corpus_agreement),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
