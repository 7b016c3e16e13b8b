/* cedar_schema_test.c — schema parsers: both syntaxes, errors, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cedar/schema.h"

static struct cedar_schema *parse_ok(const char *text, bool json)
{
    struct cedar_schema *s = NULL;
    char err[512] = "";
    int rc = cedar_schema_parse(text, strlen(text), "t.cedarschema", json, &s, err, sizeof(err));
    if (rc != NHID_OK)
        fail_msg("unexpected schema error: %s", err);
    return s;
}

static void parse_err(const char *text, bool json, const char *want)
{
    struct cedar_schema *s = NULL;
    char err[512] = "";
    int rc = cedar_schema_parse(text, strlen(text), "t.cedarschema", json, &s, err, sizeof(err));
    assert_int_not_equal(rc, NHID_OK);
    assert_null(s);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", err, want);
}

static void test_human_basic(void **state)
{
    (void)state;
    struct cedar_schema *s = parse_ok(
        "// photo app\n"
        "type Ctx = { authenticated: Bool, ip?: ipaddr };\n"
        "entity Group;\n"
        "@doc(\"a user\")\n"
        "entity User in [Group] = { name: String, age?: Long, tags: Set<String> } tags decimal;\n"
        "entity Color enum [\"red\", \"green\"];\n"
        "action view, \"edit photo\" appliesTo { principal: User, resource: [Group], context: Ctx };\n"
        "action all in [view];\n",
        false);
    assert_int_equal(s->n_etypes, 3);
    long u = cs_find_etype(s, "User"), g = cs_find_etype(s, "Group");
    assert_true(u >= 0 && g >= 0);
    const struct cs_entity_type *ut = &s->etypes[u];
    assert_int_equal(ut->shape->nattrs, 3);
    const struct cs_attr *age = cs_record_get(ut->shape, "age", 3);
    assert_non_null(age);
    assert_false(age->required);
    assert_int_equal(age->type->kind, CS_LONG);
    assert_non_null(ut->tags);
    assert_int_equal(ut->tags->kind, CS_EXT);
    assert_int_equal(ut->tags->ext, CS_EXT_DECIMAL);
    assert_true(s->etypes[g].desc[u]); /* User may be in Group */
    long c = cs_find_etype(s, "Color");
    assert_true(s->etypes[c].is_enum);
    assert_int_equal(s->etypes[c].nchoices, 2);
    long v = cs_find_action(s, "Action", "view", 4);
    long e = cs_find_action(s, "Action", "edit photo", 10);
    long a = cs_find_action(s, "Action", "all", 3);
    assert_true(v >= 0 && e >= 0 && a >= 0);
    assert_true(s->actions[v].desc[a]); /* `all in [view]` */
    const struct cs_attr *ip = cs_record_get(s->actions[v].context, "ip", 2);
    assert_non_null(ip);
    assert_int_equal(ip->type->ext, CS_EXT_IPADDR);
    cedar_schema_free(s);
}

static void test_human_namespaces(void **state)
{
    (void)state;
    struct cedar_schema *s = parse_ok(
        "namespace A::B {\n"
        "  entity U = { friend: U, g: __cedar::Long, ext: Other::T };\n"
        "  action \"do\" appliesTo { principal: U, resource: U };\n"
        "}\n"
        "namespace Other { entity T; action x in [A::B::Action::\"do\"]; }\n",
        false);
    long u = cs_find_etype(s, "A::B::U");
    assert_true(u >= 0);
    const struct cs_attr *f = cs_record_get(s->etypes[u].shape, "friend", 6);
    assert_string_equal(f->type->entity, "A::B::U");
    assert_string_equal(cs_record_get(s->etypes[u].shape, "ext", 3)->type->entity, "Other::T");
    long d = cs_find_action(s, "A::B::Action", "do", 2);
    long x = cs_find_action(s, "Other::Action", "x", 1);
    assert_true(d >= 0 && x >= 0);
    assert_true(s->actions[d].desc[x]);
    cedar_schema_free(s);
}

static void test_human_errors(void **state)
{
    (void)state;
    parse_err("entity A = { a: Foo };", false, "undeclared type \"Foo\"");
    parse_err("entity A in [B];", false, "undeclared entity type");
    parse_err("entity A; entity A;", false, "duplicate entity type");
    parse_err("entity A = { a: Long, a: String };", false, "duplicate attribute");
    parse_err("entity A\n  = { a: Long ", false, "t.cedarschema:2:");
    parse_err("type T = T;", false, "itself");
    parse_err("action a in [b]; action b in [a];", false, "cycle");
    parse_err("entity A; action a appliesTo { principal: A };", false, "missing resource");
    parse_err("entity if;", false, "reserved");
    parse_err("entity A; action a appliesTo { principal: A, resource: A, context: Long };", false,
              "record");
    parse_err("entity A = \"x\";", false, "expected");
    parse_err("entity A; namespace N { entity A; }", false, "shadows");
    parse_err("@a @a entity A;", false, "duplicate annotation");
    parse_err("entity A = { s: \"\\q\" };", false, "expected");
}

static void test_json_basic(void **state)
{
    (void)state;
    struct cedar_schema *s = parse_ok(
        "{\"NS\": {\"commonTypes\": {\"C\": {\"type\": \"Record\", \"attributes\": {"
        "   \"n\": {\"type\": \"Long\", \"required\": false}}}},"
        " \"entityTypes\": {"
        "   \"U\": {\"memberOfTypes\": [\"G\"], \"shape\": {\"type\": \"Record\", \"attributes\": {"
        "       \"g\": {\"type\": \"Entity\", \"name\": \"G\"},"
        "       \"s\": {\"type\": \"Set\", \"element\": {\"type\": \"String\"}},"
        "       \"d\": {\"type\": \"Extension\", \"name\": \"datetime\"},"
        "       \"c\": {\"type\": \"C\"}}}},"
        "   \"G\": {}, \"E\": {\"enum\": [\"a\"]}},"
        " \"actions\": {\"read\": {\"appliesTo\": {\"principalTypes\": [\"U\"],"
        "   \"resourceTypes\": [\"G\"], \"context\": {\"type\": \"C\"}}},"
        "   \"all\": {\"memberOf\": []}, \"sub\": {\"memberOf\": [{\"id\": \"all\"}]}}}}",
        true);
    long u = cs_find_etype(s, "NS::U"), g = cs_find_etype(s, "NS::G");
    assert_true(u >= 0 && g >= 0);
    assert_true(s->etypes[g].desc[u]);
    const struct cs_type *sh = s->etypes[u].shape;
    assert_string_equal(cs_record_get(sh, "g", 1)->type->entity, "NS::G");
    assert_int_equal(cs_record_get(sh, "s", 1)->type->elem->kind, CS_STRING);
    assert_int_equal(cs_record_get(sh, "d", 1)->type->ext, CS_EXT_DATETIME);
    assert_int_equal(cs_record_get(sh, "c", 1)->type->kind, CS_RECORD);
    long r = cs_find_action(s, "NS::Action", "read", 4);
    assert_true(r >= 0);
    assert_int_equal(s->actions[r].nprincipals, 1);
    assert_false(cs_record_get(s->actions[r].context, "n", 1)->required);
    long all = cs_find_action(s, "NS::Action", "all", 3);
    long sub = cs_find_action(s, "NS::Action", "sub", 3);
    assert_true(s->actions[all].desc[sub]);
    cedar_schema_free(s);
}

static void test_json_errors(void **state)
{
    (void)state;
    parse_err("{", true, "invalid JSON");
    parse_err("[]", true, "object of namespaces");
    parse_err("{\"\": {\"entityTypes\": {\"A\": {\"shape\": {\"type\": \"Nope\"}}}}}", true,
              "undeclared type");
    parse_err("{\"\": {\"entityTypes\": {\"A\": {\"bogus\": 1}}}}", true, "unknown field");
    parse_err("{\"\": {\"actions\": {\"a\": {\"memberOf\": [{\"id\": \"zz\"}]}}}}", true,
              "undeclared action");
    parse_err("{\"\": {\"entityTypes\": {\"A\": {\"shape\": {\"type\": \"Set\"}}}}}", true,
              "element");
}

static void test_limits(void **state)
{
    (void)state;
    /* deeply nested Set<...> must fail cleanly, not overflow the stack */
    size_t depth = 5000;
    char *buf = malloc(depth * 5 + 64);
    assert_non_null(buf);
    strcpy(buf, "entity A = { a: ");
    for (size_t i = 0; i < depth; i++)
        strcat(buf, "Set<");
    strcat(buf, "Long");
    for (size_t i = 0; i < depth; i++)
        strcat(buf, ">");
    strcat(buf, " };");
    parse_err(buf, false, "nested too deeply");
    free(buf);
    /* same in JSON */
    size_t n = 200;
    char *j = malloc(n * 40 + 100);
    strcpy(j, "{\"\": {\"commonTypes\": {\"T\": ");
    for (size_t i = 0; i < n; i++)
        strcat(j, "{\"type\": \"Set\", \"element\": ");
    strcat(j, "{\"type\": \"Long\"}");
    for (size_t i = 0; i < n; i++)
        strcat(j, "}");
    strcat(j, "}}}");
    parse_err(j, true, "nested too deeply");
    free(j);
    /* NULL-safe destructor, bad arguments */
    cedar_schema_free(NULL);
    struct cedar_schema *s = NULL;
    assert_int_not_equal(cedar_schema_parse(NULL, 0, NULL, false, &s, NULL, 0), NHID_OK);
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

/* Every schema of the shared Cedar conformance corpus parses. */
static void test_corpus_schemas(void **state)
{
    (void)state;
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "ls '%s'/corpus-tests/*.cedarschema 2>/dev/null", corpus_base());
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        skip();
    char path[1024];
    size_t total = 0, ok = 0;
    while (fgets(path, sizeof(path), p) != NULL) {
        path[strcspn(path, "\n")] = '\0';
        size_t len = 0;
        char *t = slurp(path, &len);
        if (t == NULL)
            continue;
        struct cedar_schema *s = NULL;
        char err[512];
        total++;
        if (cedar_schema_parse(t, len, path, false, &s, err, sizeof(err)) == NHID_OK)
            ok++;
        else
            print_message("schema error: %s\n", err);
        cedar_schema_free(s);
        free(t);
    }
    pclose(p);
    if (total == 0)
        skip();
    assert_int_equal(ok, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_human_basic),  cmocka_unit_test(test_human_namespaces),
        cmocka_unit_test(test_human_errors), cmocka_unit_test(test_json_basic),
        cmocka_unit_test(test_json_errors),  cmocka_unit_test(test_limits),
        cmocka_unit_test(test_corpus_schemas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
