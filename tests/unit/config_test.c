/*
 * Unit tests for src/config: the HCL-subset parser, file loading and the
 * byte-size helper. Negative cases check the whole "FILE:LINE:COL:"
 * prefix and a fragment of the message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "config/config.h"

static const char example[] =
    "# comment, // comment, /* block comment */\n"
    "trust_domain = \"example.org\"\n"
    "api_addr     = \"https://nhid.example.org:8200\"\n"
    "log_level    = \"info\"\n"
    "ui = true\n"
    "\n"
    "listener \"tcp\" {\n"
    "  address            = \"0.0.0.0:8200\"\n"
    "  tls_cert_file      = \"/etc/nhid/tls/server.pem\"\n"
    "  tls_key_file       = \"/etc/nhid/tls/server-key.pem\"\n"
    "  tls_client_ca_file = \"/etc/nhid/tls/clients-ca.pem\"   # then mTLS is required\n"
    "  tls_min_version    = \"tls12\"\n"
    "}\n"
    "\n"
    "storage \"sqlite\" {\n"
    "  path = \"/var/lib/nhid/nhid.db\"\n"
    "}\n"
    "\n"
    "audit \"file\" \"main\" {            # type, then optional name\n"
    "  path = \"/var/log/nhid/audit.log\"\n"
    "}\n"
    "\n"
    "limits {\n"
    "  max_request_body = \"1MiB\"\n"
    "  max_connections  = 4096\n"
    "  idle_timeout     = \"60s\"\n"
    "  tags = [\"a\", \"b\"]\n"
    "  nested = { a = 1, b = \"x\" }\n"
    "}\n";

/* Parse a NUL-terminated string; fail the test with the message on error. */
static json_t *parse_ok(const char *text)
{
    char err[256] = "";
    json_t *root = NULL;
    int rc = nhid_config_parse(text, strlen(text), "t.hcl", &root, err, sizeof(err));
    if (rc != NHID_OK)
        fail_msg("unexpected parse error %d: %s\n--- input ---\n%s", rc, err, text);
    assert_non_null(root);
    return root;
}

/* The JSON of the tree, compact with sorted keys, for whole-tree comparisons. */
static void assert_tree(const char *text, const char *want)
{
    json_t *root = parse_ok(text);
    char *got = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("tree mismatch\n want: %s\n  got: %s\n--- input ---\n%s", want, got, text);
    free(got);
    json_decref(root);
}

static const char *labels0(json_t *root, const char *type, size_t idx, size_t li)
{
    json_t *arr = json_object_get(root, type);
    assert_true(json_is_array(arr));
    json_t *blk = json_array_get(arr, idx);
    assert_true(json_is_object(blk));
    json_t *labels = json_object_get(blk, NHID_CONFIG_LABELS_KEY);
    assert_true(json_is_array(labels));
    return json_string_value(json_array_get(labels, li));
}

static void test_example(void **state)
{
    (void)state;
    json_t *root = parse_ok(example);
    assert_string_equal(json_string_value(json_object_get(root, "trust_domain")), "example.org");
    assert_string_equal(json_string_value(json_object_get(root, "log_level")), "info");
    assert_true(json_is_true(json_object_get(root, "ui")));

    assert_string_equal(labels0(root, "listener", 0, 0), "tcp");
    json_t *l = json_array_get(json_object_get(root, "listener"), 0);
    assert_string_equal(json_string_value(json_object_get(l, "address")), "0.0.0.0:8200");
    assert_string_equal(json_string_value(json_object_get(l, "tls_client_ca_file")),
                        "/etc/nhid/tls/clients-ca.pem");

    assert_string_equal(labels0(root, "storage", 0, 0), "sqlite");
    assert_string_equal(labels0(root, "audit", 0, 0), "file");
    assert_string_equal(labels0(root, "audit", 0, 1), "main");

    json_t *lim = json_array_get(json_object_get(root, "limits"), 0);
    assert_int_equal(json_array_size(json_object_get(lim, NHID_CONFIG_LABELS_KEY)), 0);
    assert_int_equal(json_integer_value(json_object_get(lim, "max_connections")), 4096);
    assert_string_equal(json_string_value(json_object_get(lim, "max_request_body")), "1MiB");
    json_t *tags = json_object_get(lim, "tags");
    assert_int_equal(json_array_size(tags), 2);
    assert_string_equal(json_string_value(json_array_get(tags, 1)), "b");
    json_t *nested = json_object_get(lim, "nested");
    assert_int_equal(json_integer_value(json_object_get(nested, "a")), 1);
    assert_string_equal(json_string_value(json_object_get(nested, "b")), "x");
    json_decref(root);
}

static void test_blocks(void **state)
{
    (void)state;
    /* Repeated blocks accumulate in file order; no labels -> []. */
    assert_tree("audit \"file\" \"a\" {\n path = \"/a\"\n}\n"
                "audit \"file\" \"b\" {\n path = \"/b\"\n}\n"
                "seal \"shamir\" {}\n"
                "limits {}\n",
                "{\"audit\":[{\"__labels\":[\"file\",\"a\"],\"path\":\"/a\"},"
                "{\"__labels\":[\"file\",\"b\"],\"path\":\"/b\"}],"
                "\"limits\":[{\"__labels\":[]}],"
                "\"seal\":[{\"__labels\":[\"shamir\"]}]}");
    /* Single-line blocks, nested blocks, a block right before "}". */
    assert_tree("a { x = 1 }\nb \"l\" {\n  c { d = 2 }\n  c \"k\" {\n  }\n}",
                "{\"a\":[{\"__labels\":[],\"x\":1}],\"b\":[{\"__labels\":[\"l\"],"
                "\"c\":[{\"__labels\":[],\"d\":2},{\"__labels\":[\"k\"]}]}]}");
    /* The same block type in different blocks is independent. */
    assert_tree("x { a = 1 }\ny { a = 2 }", "{\"x\":[{\"__labels\":[],\"a\":1}],"
                                            "\"y\":[{\"__labels\":[],\"a\":2}]}");
    /* Identifiers with dashes and digits; empty label. */
    assert_tree("my-key_2 = 1\nb \"\" {}", "{\"b\":[{\"__labels\":[\"\"]}],\"my-key_2\":1}");
}

static void test_comments_and_whitespace(void **state)
{
    (void)state;
    assert_tree("", "{}");
    assert_tree("\n\n  \t\n", "{}");
    assert_tree("# only a comment", "{}");
    assert_tree("// only a comment\n", "{}");
    assert_tree("/* only\n a comment */", "{}");
    assert_tree("a = 1 # c\nb = 2 // c\nc = /* inline */ 3\n", "{\"a\":1,\"b\":2,\"c\":3}");
    /* A block comment spanning lines ends the attribute, like a line break. */
    assert_tree("a = 1 /* x\n y */ b = 2", "{\"a\":1,\"b\":2}");
    /* Comment markers inside strings are text. */
    assert_tree("a = \"# not // a /* comment\"", "{\"a\":\"# not // a /* comment\"}");
    /* CRLF, a byte-order mark and tabs. */
    assert_tree("\xEF\xBB\xBF"
                "a\t=\t1\r\nb = \"x\"\r\n",
                "{\"a\":1,\"b\":\"x\"}");
    /* UTF-8 in comments. */
    assert_tree("# caf\xC3\xA9 \xF0\x9F\x94\x91\na = 1", "{\"a\":1}");
}

static void test_strings(void **state)
{
    (void)state;
    assert_tree("a = \"q\\\" b\\\\ n\\n t\\t r\\r\"", "{\"a\":\"q\\\" b\\\\ n\\n t\\t r\\r\"}");
    /* \u escapes, including a surrogate pair, become UTF-8. */
    json_t *root = parse_ok("a = \"\\u00e9\\u20AC\\ud83d\\ude00\"\nb = \"caf\xC3\xA9\"");
    assert_string_equal(json_string_value(json_object_get(root, "a")),
                        "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
    assert_string_equal(json_string_value(json_object_get(root, "b")), "caf\xC3\xA9");
    json_decref(root);
    assert_tree("a = \"\"", "{\"a\":\"\"}");
    /* ${...} is not interpolated. */
    assert_tree("a = \"${x}\"", "{\"a\":\"${x}\"}");
}

static void test_heredoc(void **state)
{
    (void)state;
    assert_tree("a = <<EOF\nline 1\n  line \"2\" \\n\nEOF\nb = 1\n",
                "{\"a\":\"line 1\\n  line \\\"2\\\" \\\\n\\n\",\"b\":1}");
    /* <<- strips the common indentation; the marker may be indented. */
    assert_tree("x {\n  a = <<-EOT\n    one\n      two\n\n    three\n    EOT\n}\n",
                "{\"x\":[{\"__labels\":[],\"a\":\"one\\n  two\\n\\nthree\\n\"}]}");
    /* Empty heredoc; CRLF normalised; marker at end of file. */
    assert_tree("a = <<E\nE", "{\"a\":\"\"}");
    assert_tree("a = <<E\r\nx\r\nE\r\n", "{\"a\":\"x\\n\"}");
    /* A line that merely starts with the marker is text. */
    assert_tree("a = <<EOF\nEOFX\nEOF\n", "{\"a\":\"EOFX\\n\"}");
}

static void test_numbers_and_bools(void **state)
{
    (void)state;
    assert_tree("a = 0\nb = -17\nc = 9223372036854775807\nd = -9223372036854775808\n"
                "e = true\nf = false",
                "{\"a\":0,\"b\":-17,\"c\":9223372036854775807,\"d\":-9223372036854775808,"
                "\"e\":true,\"f\":false}");
    json_t *root = parse_ok("a = 1.5\nb = -0.25\nc = 1e3\nd = 2.5E-2\ne = 0.0");
    assert_true(json_is_real(json_object_get(root, "a")));
    assert_true(json_real_value(json_object_get(root, "a")) == 1.5);
    assert_true(json_real_value(json_object_get(root, "b")) == -0.25);
    assert_true(json_real_value(json_object_get(root, "c")) == 1000.0);
    assert_true(json_real_value(json_object_get(root, "d")) == 0.025);
    assert_true(json_is_real(json_object_get(root, "e")));
    json_decref(root);
}

static void test_lists_and_objects(void **state)
{
    (void)state;
    assert_tree("a = []\nb = {}\nc = [1, \"x\", true,]\n",
                "{\"a\":[],\"b\":{},\"c\":[1,\"x\",true]}");
    assert_tree("a = [\n  1,\n  2\n  ,3,\n\n]\n", "{\"a\":[1,2,3]}");
    assert_tree("a = [[1, [2]], {k = [3]}]", "{\"a\":[[1,[2]],{\"k\":[3]}]}");
    assert_tree("o = {\n  a = 1\n  \"quoted key\" = 2,\n  b = { c = \"d\" }\n\n}",
                "{\"o\":{\"a\":1,\"b\":{\"c\":\"d\"},\"quoted key\":2}}");
    assert_tree("o = { a = 1, b = 2, }", "{\"o\":{\"a\":1,\"b\":2}}");
    /* Objects as values are not blocks: "__labels" is an ordinary key there. */
    assert_tree("o = { __labels = 1 }", "{\"o\":{\"__labels\":1}}");
}

/* Depth exactly at the limit parses; one more is an error. */
static void test_depth_limit(void **state)
{
    (void)state;
    char buf[512];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "a = ");
    for (int i = 0; i < NHID_CONFIG_MAX_DEPTH; i++)
        buf[n++] = '[';
    for (int i = 0; i < NHID_CONFIG_MAX_DEPTH; i++)
        buf[n++] = ']';
    buf[n] = '\0';
    json_decref(parse_ok(buf));

    /* Blocks count too: 64 nested blocks are fine. */
    char *b = malloc(8 * 70 + 1);
    assert_non_null(b);
    n = 0;
    for (int i = 0; i < NHID_CONFIG_MAX_DEPTH; i++)
        n += (size_t)sprintf(b + n, "b {\n");
    for (int i = 0; i < NHID_CONFIG_MAX_DEPTH; i++)
        n += (size_t)sprintf(b + n, "}\n");
    json_decref(parse_ok(b));
    free(b);
}

static void test_string_limit(void **state)
{
    (void)state;
    size_t n = NHID_CONFIG_MAX_STRING;
    char *buf = malloc(n + 16);
    assert_non_null(buf);
    memcpy(buf, "a = \"", 5);
    memset(buf + 5, 'x', n);
    memcpy(buf + 5 + n, "\"", 2);
    json_t *root = parse_ok(buf);
    assert_int_equal(json_string_length(json_object_get(root, "a")), n);
    json_decref(root);
    free(buf);
}

/* ---- negative cases ----------------------------------------------------- */

struct bad {
    const char *in;
    size_t len;        /* 0: strlen(in) */
    const char *where; /* "LINE:COL" */
    const char *msg;   /* fragment of the message */
};

static const struct bad bad_cases[] = {
    /* attributes and blocks */
    {"  address : \"0.0.0.0\"", 0, "1:11", "expected \"=\" after attribute name \"address\""},
    {"address\n= 1", 0, "1:8",
     "expected \"=\" after attribute name \"address\", found end of line"},
    {"a = 1\nb = 2\na = 3", 0, "3:1", "duplicate attribute \"a\" (first set at 1:1)"},
    {"x {\n  a = 1\n  a = 2\n}", 0, "3:3", "duplicate attribute \"a\" (first set at 2:3)"},
    {"a = 1 b = 2", 0, "1:7",
     "expected a line break after attribute \"a\", found identifier \"b\""},
    {"x { a = 1 b = 2 }", 0, "1:11", "expected a line break after attribute \"a\""},
    {"x {} y {}", 0, "1:6", "expected a line break after block \"x\""},
    {"a = 1 }", 0, "1:7", "expected a line break after attribute \"a\", found \"}\""},
    {"}", 0, "1:1", "unexpected \"}\" (no block is open)"},
    {"= 1", 0, "1:1", "expected an attribute name or block type, found \"=\""},
    {"\"a\" = 1", 0, "1:1", "expected an attribute name or block type, found string \"a\""},
    {"42 = 1", 0, "1:1", "expected an attribute name or block type, found number 42"},
    {"x {\n  a = 1\n", 0, "3:1", "block opened at 1:3 is not closed (missing \"}\")"},
    {"x \"a\" \"b\"\n{}", 0, "1:10",
     "expected \"{\" or a quoted label after block type \"x\", found end of line"},
    {"listener tcp {}", 0, "1:10",
     "expected \"=\" after attribute name \"listener\", found identifier \"tcp\" (block labels "
     "must be quoted strings)"},
    {"x \"a\" b {}", 0, "1:7",
     "block labels must be quoted strings: found identifier \"b\" after block type \"x\""},
    {"x \"a\" = 1", 0, "1:7",
     "expected \"{\" or a quoted label after block type \"x\", found \"=\""},
    {"a = 1\na {}", 0, "2:1", "\"a\" is used both as a block and as an attribute (first at 1:1)"},
    {"a {}\na = 1", 0, "2:1", "\"a\" is used both as an attribute and as a block (first at 1:1)"},
    {"__labels = 1", 0, "1:1", "the name \"__labels\" is reserved"},
    {"x {\n __labels = [\"a\"]\n}", 0, "2:2", "\"__labels\" is reserved"},
    {"x \"1\" \"2\" \"3\" \"4\" \"5\" \"6\" \"7\" \"8\" \"9\" \"10\" \"11\" \"12\" \"13\" \"14\" "
     "\"15\" "
     "\"16\" \"17\" {}",
     0, "1:74", "too many block labels (maximum 16)"},
    /* values */
    {"a =", 0, "1:4",
     "expected a value (string, number, true, false, list or object), found end of file"},
    {"a =\n1", 0, "1:4",
     "expected a value (string, number, true, false, list or object), found end of line"},
    {"a = foo", 0, "1:5", "found identifier \"foo\" (quote strings: \"foo\")"},
    {"a = null", 0, "1:5", "null is not supported"},
    {"a = = 1", 0, "1:5", "expected a value"},
    {"a = @", 0, "1:5", "unexpected character \"@\""},
    /* numbers */
    {"a = 10s", 0, "1:5",
     "invalid number \"10s\" (values with units must be quoted, e.g. \"10s\")"},
    {"a = 1MiB", 0, "1:5", "invalid number \"1MiB\""},
    {"a = 1.2.3", 0, "1:5", "invalid number \"1.2.3\""},
    {"a = 1.", 0, "1:5", "invalid number \"1.\""},
    {"a = 1e", 0, "1:5", "invalid number \"1e\""},
    {"a = 0755", 0, "1:5", "number \"0755\": leading zeros are not allowed"},
    {"a = -", 0, "1:5", "unexpected \"-\" (expected a number after it)"},
    {"a = -x", 0, "1:5", "unexpected \"-\""},
    {"a = 9223372036854775808", 0, "1:5", "integer 9223372036854775808 is out of range"},
    {"a = -9223372036854775809", 0, "1:5", "is out of range"},
    {"a = 1e999", 0, "1:5", "number 1e999 is out of range"},
    {"a = 1111111111111111111111111111111111111111111111111111111111111111111111111111", 0, "1:5",
     "number too long"},
    /* strings */
    {"a = \"abc", 0, "1:5", "unterminated string (missing closing '\"')"},
    {"a = \"abc\\", 0, "1:5", "unterminated string"},
    {"a = \"ab\ncd\"", 0, "1:5", "unterminated string: line ends before the closing '\"'"},
    {"a = \"x\\q\"", 0, "1:7", "invalid escape \"\\q\" in string"},
    {"a = \"\\u12\"", 0, "1:6", "\\u must be followed by 4 hex digits"},
    {"a = \"\\u12g4\"", 0, "1:6", "\\u must be followed by 4 hex digits"},
    {"a = \"\\ud800\"", 0, "1:6", "unpaired UTF-16 surrogate"},
    {"a = \"\\ud800\\u0041\"", 0, "1:6", "unpaired UTF-16 surrogate"},
    {"a = \"\\udc00\"", 0, "1:6", "unpaired UTF-16 surrogate"},
    {"a = \"\\u0000\"", 0, "1:6", "\\u0000 (NUL) is not allowed"},
    {"a = \"x\x01\"", 0, "1:7", "control character 0x01 in string"},
    {"a = \"x\ry\"", 0, "1:7", "control character 0x0d in string"},
    {"a = \"\xff\"", 0, "1:6", "invalid UTF-8 in string (byte 0xff)"},
    {"a = \"caf\xC3\xA9\xC3\"", 0, "1:10", "invalid UTF-8 in string (byte 0xc3)"},
    {"a = \"\xC0\xAF\"", 0, "1:6", "invalid UTF-8 in string"},         /* overlong */
    {"a = \"\xED\xA0\x80\"", 0, "1:6", "invalid UTF-8 in string"},     /* surrogate */
    {"a = \"\xF4\x90\x80\x80\"", 0, "1:6", "invalid UTF-8 in string"}, /* > U+10FFFF */
    {"a = \"\xE2\x82\"", 0, "1:6", "invalid UTF-8 in string"},         /* truncated */
    {"a = \"\xE2\x82", 0, "1:6", "invalid UTF-8 in string"},           /* truncated at EOF */
    {"a = \"\x80\"", 0, "1:6", "invalid UTF-8 in string"},             /* lone continuation */
    {"a = \"x\0y\"", 9, "1:7", "NUL byte in string"},
    /* heredocs */
    {"a = <<EOF\nxx\n", 0, "1:5", "unterminated heredoc (missing closing marker EOF)"},
    {"a = <<EOF xx\nEOF", 0, "1:10", "heredoc marker must be followed by a line break"},
    {"a = <<\nEOF", 0, "1:5", "expected a heredoc marker name after \"<<\""},
    {"a = <<EOF\nok\n\xff\nEOF", 0, "3:1", "invalid UTF-8 in heredoc"},
    {"a = <<EOF\nEOF b = 1", 0, "1:5", "unterminated heredoc"},
    /* lists and objects */
    {"a = [1 2]", 0, "1:8", "expected \",\" or \"]\" in list opened at 1:5, found number 2"},
    {"a = [1,", 0, "1:8", "unexpected end of file in list opened at 1:5 (missing \"]\")"},
    {"a = [1", 0, "1:7", "unexpected end of file in list opened at 1:5"},
    {"a = [,]", 0, "1:6", "expected a value"},
    {"a = { x = 1 y = 2 }", 0, "1:13",
     "expected \",\", a line break or \"}\" after object member \"x\""},
    {"a = { x = 1, x = 2 }", 0, "1:14", "duplicate key \"x\" in object (first set at 1:7)"},
    {"a = { \"x\" = 1\n x = 2 }", 0, "2:2", "duplicate key \"x\""},
    {"a = { x 1 }", 0, "1:9", "expected \"=\" after object key \"x\", found number 1"},
    {"a = { x: 1 }", 0, "1:8", "expected \"=\" after object key \"x\", found \":\""},
    {"a = { = 1 }", 0, "1:7", "expected an object key, found \"=\""},
    {"a = { x = 1", 0, "1:12", "unexpected end of file in object opened at 1:5"},
    {"a = {\n", 0, "2:1", "unexpected end of file in object opened at 1:5"},
    /* lexical */
    {"/* never closed", 0, "1:1", "unterminated block comment (missing \"*/\")"},
    {"a = 1\n  /* x\n", 0, "2:3", "unterminated block comment"},
    {"# caf\xff\n", 0, "1:6", "invalid UTF-8 in comment"},
    {"a = 1\n\x01", 0, "2:1", "unexpected control character 0x01"},
    {"a = 1\rb = 2", 0, "1:6", "unexpected control character 0x0d"},
    {"a\0 = 1", 3, "1:2", "unexpected NUL byte"},
    {"caf\xC3\xA9 = 1", 0, "1:4", "unexpected non-ASCII character"},
    {"\xC3\xA9\xC3\xA9 = \xff", 0, "1:1", "unexpected non-ASCII character"},
    {"a = \xff", 0, "1:5", "invalid UTF-8 (byte 0xff)"},
    /* columns count characters, not bytes */
    {"a = \"\xC3\xA9\xC3\xA9\" b", 0, "1:10", "expected a line break after attribute \"a\""},
};

static void test_bad_inputs(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < NHID_ARRAY_LEN(bad_cases); i++) {
        const struct bad *b = &bad_cases[i];
        size_t len = b->len ? b->len : strlen(b->in);
        char err[512] = "";
        char prefix[64];
        json_t *sentinel = (json_t *)&failures;
        json_t *root = sentinel;
        snprintf(prefix, sizeof(prefix), "t.hcl:%s: ", b->where);
        int rc = nhid_config_parse(b->in, len, "t.hcl", &root, err, sizeof(err));
        if (rc != NHID_ERR_INVALID || root != sentinel ||
            strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, b->msg) == NULL) {
            print_error("case %zu: rc=%d\n  input: %s\n  want:  %s... %s\n  got:   %s\n", i, rc,
                        b->in, prefix, b->msg, err);
            failures++;
        }
        /* No errbuf must also work. */
        assert_int_equal(nhid_config_parse(b->in, len, "t.hcl", &root, NULL, 0), NHID_ERR_INVALID);
    }
    assert_int_equal(failures, 0);
}

static void expect_limit(const char *text, size_t len, const char *msg)
{
    char err[256] = "";
    json_t *root = NULL;
    assert_int_equal(nhid_config_parse(text, len, "big.hcl", &root, err, sizeof(err)),
                     NHID_ERR_INVALID);
    assert_null(root);
    if (strstr(err, msg) == NULL || strncmp(err, "big.hcl:", 8) != 0)
        fail_msg("want \"%s\", got \"%s\"", msg, err);
}

static void test_limits(void **state)
{
    (void)state;
    size_t cap = NHID_CONFIG_MAX_FILE_SIZE + 16;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;

    /* Too deep: lists, objects and blocks. */
    n = (size_t)sprintf(buf, "a = ");
    for (int i = 0; i <= NHID_CONFIG_MAX_DEPTH; i++)
        buf[n++] = '[';
    expect_limit(buf, n, "big.hcl:1:69: nesting too deep (maximum 64 levels)");
    n = (size_t)sprintf(buf, "a = ");
    for (int i = 0; i <= NHID_CONFIG_MAX_DEPTH; i++)
        n += (size_t)sprintf(buf + n, "{a=");
    expect_limit(buf, n, "nesting too deep");
    n = 0;
    for (int i = 0; i <= NHID_CONFIG_MAX_DEPTH; i++)
        n += (size_t)sprintf(buf + n, "b {\n");
    expect_limit(buf, n, "big.hcl:65:3: nesting too deep");
    /* Very deep input fails at the limit, without exhausting the stack. */
    n = (size_t)sprintf(buf, "a = ");
    memset(buf + n, '[', NHID_CONFIG_MAX_FILE_SIZE - n);
    expect_limit(buf, NHID_CONFIG_MAX_FILE_SIZE, "nesting too deep");

    /* String one byte over. */
    n = (size_t)sprintf(buf, "a = \"");
    memset(buf + n, 'x', NHID_CONFIG_MAX_STRING + 1);
    n += NHID_CONFIG_MAX_STRING + 1;
    buf[n++] = '"';
    expect_limit(buf, n, "big.hcl:1:5: string too long (maximum 65536 bytes)");
    /* Heredoc over the limit. */
    n = (size_t)sprintf(buf, "a = <<E\n");
    for (int i = 0; i < 1100; i++)
        n += (size_t)sprintf(buf + n, "%063d\n", i);
    n += (size_t)sprintf(buf + n, "E\n");
    expect_limit(buf, n, "big.hcl:1:5: heredoc too long");

    /* Too many list elements, object members, body items. */
    n = (size_t)sprintf(buf, "a = [");
    for (int i = 0; i <= NHID_CONFIG_MAX_ITEMS; i++)
        n += (size_t)sprintf(buf + n, "1,");
    expect_limit(buf, n, "too many list elements (maximum 10000)");
    n = (size_t)sprintf(buf, "a = {");
    for (int i = 0; i <= NHID_CONFIG_MAX_ITEMS; i++)
        n += (size_t)sprintf(buf + n, "k%d=1,", i);
    expect_limit(buf, n, "too many object members (maximum 10000)");
    n = 0;
    for (int i = 0; i <= NHID_CONFIG_MAX_ITEMS; i++)
        n += (size_t)sprintf(buf + n, "b {}\n");
    expect_limit(buf, n, "big.hcl:10001:1: too many attributes and blocks in one body");
    /* Too many values in the whole file (lists of 10000 each). */
    n = 0;
    for (int l = 0; l < 11; l++) {
        n += (size_t)sprintf(buf + n, "a%d = [", l);
        for (int i = 0; i < 9999; i++)
            n += (size_t)sprintf(buf + n, "1,");
        n += (size_t)sprintf(buf + n, "]\n");
    }
    expect_limit(buf, n, "too many values in one file (maximum 100000)");

    /* Input over the size limit. */
    memset(buf, '\n', NHID_CONFIG_MAX_FILE_SIZE + 1);
    expect_limit(buf, NHID_CONFIG_MAX_FILE_SIZE + 1, "big.hcl:1:1: configuration is 1048577 bytes");
    /* Exactly at the size limit is fine. */
    json_t *root = NULL;
    char err[128];
    assert_int_equal(
        nhid_config_parse(buf, NHID_CONFIG_MAX_FILE_SIZE, "big.hcl", &root, err, sizeof(err)),
        NHID_OK);
    json_decref(root);
    free(buf);
}

static void test_api_misuse(void **state)
{
    (void)state;
    char err[128];
    json_t *root = NULL;
    assert_int_equal(nhid_config_parse(NULL, 5, "x", &root, err, sizeof(err)), NHID_ERR_INVALID);
    assert_int_equal(nhid_config_parse("a = 1", 5, "x", NULL, err, sizeof(err)), NHID_ERR_INVALID);
    /* NULL text with zero length is an empty file; NULL filename -> "<config>". */
    assert_int_equal(nhid_config_parse(NULL, 0, NULL, &root, err, sizeof(err)), NHID_OK);
    assert_int_equal(json_object_size(root), 0);
    json_decref(root);
    assert_int_equal(nhid_config_parse("}", 1, NULL, &root, err, sizeof(err)), NHID_ERR_INVALID);
    assert_string_equal(err, "<config>:1:1: unexpected \"}\" (no block is open)");
    /* A tiny errbuf is truncated, never overrun. */
    char tiny[8];
    memset(tiny, 'Z', sizeof(tiny));
    assert_int_equal(nhid_config_parse("}", 1, "file.hcl", &root, tiny, 5), NHID_ERR_INVALID);
    assert_string_equal(tiny, "file");
    assert_int_equal(tiny[5], 'Z');
    /* Input need not be NUL-terminated: only len bytes are read. */
    assert_int_equal(nhid_config_parse("a = 1b", 5, "x", &root, err, sizeof(err)), NHID_OK);
    assert_int_equal(json_integer_value(json_object_get(root, "a")), 1);
    json_decref(root);
}

/* ---- allocation failure -------------------------------------------------- */

static long alloc_budget = -1; /* allocations left before failure; -1 = unlimited */

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

/* Fail every jansson allocation in turn: the parser reports NOMEM, never leaks or crashes. */
static void test_out_of_memory(void **state)
{
    (void)state;
    json_set_alloc_funcs(failing_malloc, free);
    bool succeeded = false;
    for (long budget = 0; budget < 10000 && !succeeded; budget++) {
        char err[128] = "";
        json_t *root = NULL;
        alloc_budget = budget;
        int rc = nhid_config_parse(example, strlen(example), "t.hcl", &root, err, sizeof(err));
        alloc_budget = -1;
        if (rc == NHID_OK) {
            succeeded = true;
            json_decref(root);
        } else {
            assert_int_equal(rc, NHID_ERR_NOMEM);
            assert_null(root);
            assert_string_equal(err, "t.hcl: out of memory");
        }
    }
    json_set_alloc_funcs(malloc, free);
    assert_true(succeeded);
}

/* ---- files --------------------------------------------------------------- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/nhid-config-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_str(const char *path, const char *s)
{
    write_file(path, s, strlen(s));
}

static void test_load_file(void **state)
{
    (void)state;
    char path[128], err[256];
    json_t *root = NULL;

    snprintf(path, sizeof(path), "%s/nhid.hcl", tmpdir);
    write_file(path, example, strlen(example));
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_OK);
    assert_string_equal(labels0(root, "listener", 0, 0), "tcp");
    json_decref(root);
    root = NULL;

    /* Syntax errors carry the path. */
    write_str(path, "a = 1\nlistener \"tcp\" {\n  address \"x\"\n}\n");
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_ERR_INVALID);
    assert_null(root);
    char want[192];
    snprintf(want, sizeof(want), "%s:3:14: expected \"{\" or a quoted label", path);
    assert_true(strncmp(err, want, strlen(want)) == 0);

    /* JSON of the same shape. */
    snprintf(path, sizeof(path), "%s/nhid.JSON", tmpdir);
    const char *js = "{\"trust_domain\": \"x.org\", \"listener\": "
                     "[{\"__labels\": [\"tcp\"], \"address\": \"127.0.0.1:8200\"}]}";
    write_file(path, js, strlen(js));
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_OK);
    assert_string_equal(labels0(root, "listener", 0, 0), "tcp");
    json_decref(root);
    root = NULL;

    /* JSON errors: syntax (with line:col), duplicates, non-object, depth. */
    write_str(path, "{\n  \"a\": 1,\n  \"a\": 2\n}");
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "duplicate object key"));
    snprintf(want, sizeof(want), "%s:3:", path);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    write_str(path, "{\"a\": }");
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_ERR_INVALID);
    snprintf(want, sizeof(want), "%s:1:", path);
    assert_true(strncmp(err, want, strlen(want)) == 0);
    write_str(path, "[1]");
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "must be an object"));
    /* 128 JSON levels (64 HCL block levels) are fine, 129 are not. */
    for (int extra = 0; extra <= 1; extra++) {
        char deep[400];
        int levels = 2 * NHID_CONFIG_MAX_DEPTH + extra;
        size_t n = (size_t)sprintf(deep, "{\"a\":");
        for (int i = 0; i < levels; i++)
            deep[n++] = '[';
        for (int i = 0; i < levels; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        write_file(path, deep, n);
        root = NULL;
        int rc = nhid_config_load_file(path, &root, err, sizeof(err));
        if (extra == 0) {
            assert_int_equal(rc, NHID_OK);
            json_decref(root);
            continue;
        }
        assert_int_equal(rc, NHID_ERR_INVALID);
        assert_non_null(strstr(err, "nesting too deep"));
    }
    assert_null(root);

    /* Missing file, a directory, an oversized file. */
    snprintf(path, sizeof(path), "%s/missing.hcl", tmpdir);
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_ERR_IO);
    assert_non_null(strstr(err, "cannot open configuration file"));
    assert_int_equal(nhid_config_load_file(tmpdir, &root, err, sizeof(err)), NHID_ERR_IO);
    assert_non_null(strstr(err, "not a regular file"));
    snprintf(path, sizeof(path), "%s/big.hcl", tmpdir);
    char *big = malloc(NHID_CONFIG_MAX_FILE_SIZE + 1);
    assert_non_null(big);
    memset(big, '\n', NHID_CONFIG_MAX_FILE_SIZE + 1);
    write_file(path, big, NHID_CONFIG_MAX_FILE_SIZE + 1);
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "larger than 1048576 bytes"));
    write_file(path, big, NHID_CONFIG_MAX_FILE_SIZE);
    assert_int_equal(nhid_config_load_file(path, &root, err, sizeof(err)), NHID_OK);
    json_decref(root);
    root = NULL;
    free(big);
    assert_int_equal(nhid_config_load_file(NULL, &root, err, sizeof(err)), NHID_ERR_INVALID);
}

/* The example in docs/configuration.md must parse. */
static void test_docs_example(void **state)
{
    (void)state;
    const char *src = getenv("NHID_SOURCE_DIR");
    char path[512], err[256];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        skip();
    char *doc = malloc(256 * 1024);
    assert_non_null(doc);
    size_t n = fread(doc, 1, 256 * 1024 - 1, f);
    fclose(f);
    doc[n] = '\0';
    /* Every ```hcl fenced block in the document must parse. */
    int blocks = 0;
    for (char *p = doc; (p = strstr(p, "```hcl\n")) != NULL;) {
        p += 7;
        char *end = strstr(p, "```");
        assert_non_null(end);
        json_t *root = NULL;
        if (nhid_config_parse(p, (size_t)(end - p), "configuration.md", &root, err, sizeof(err)) !=
            NHID_OK)
            fail_msg("hcl block %d in docs/configuration.md: %s", blocks + 1, err);
        json_decref(root);
        blocks++;
        p = end + 3;
    }
    assert_true(blocks >= 2);
    free(doc);
}

/* ---- sizes ---------------------------------------------------------------- */

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint64_t want;
    } good[] = {
        {"1MiB", 1048576},
        {"512KiB", 524288},
        {"1048576", 1048576},
        {"10MB", 10000000},
        {"0", 0},
        {"16KiB", 16384},
        {"4KiB", 4096},
        {"1 GiB", 1073741824ull},
        {"2TiB", 2ull << 40},
        {"3TB", 3000000000000ull},
        {"7B", 7},
        {"1kb", 1000},
        {"1mib", 1048576},
        {"18446744073709551615", UINT64_MAX},
        {"16777215TiB", 16777215ull << 40},
    };
    for (size_t i = 0; i < NHID_ARRAY_LEN(good); i++) {
        uint64_t v = 0;
        char err[200] = "";
        int rc = nhid_config_parse_size(good[i].in, &v, err, sizeof(err));
        if (rc != NHID_OK || v != good[i].want)
            fail_msg("size \"%s\": rc=%d v=%llu err=%s", good[i].in, rc, (unsigned long long)v,
                     err);
    }

    static const struct {
        const char *in;
        const char *msg;
    } bad[] = {
        {"10XB", "size \"10XB\": unknown unit \"XB\" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"},
        {"", "size \"\": expected a non-negative whole number with an optional unit (B, KB, MB, "
             "GB, TB, KiB, MiB, GiB, TiB)"},
        {"MiB", "size \"MiB\": expected a non-negative whole number"},
        {"-1MiB", "size \"-1MiB\": expected a non-negative whole number"},
        {" 1MiB", "expected a non-negative whole number"},
        {"1.5MiB", "size \"1.5MiB\": fractions are not supported"},
        {"1  MiB", "unknown unit \" MiB\""},
        {"1 ", "unknown unit \" \""},
        {"1MiBs", "unknown unit \"MiBs\""},
        {"1m", "unknown unit \"m\""},
        {"18446744073709551616", "size \"18446744073709551616\": number too large"},
        {"16777216TiB", "size \"16777216TiB\": too large"},
        {"1\nMiB", "size \"1?MiB\": unknown unit \"?MiB\""},
    };
    for (size_t i = 0; i < NHID_ARRAY_LEN(bad); i++) {
        uint64_t v = 12345;
        char err[200] = "";
        int rc = nhid_config_parse_size(bad[i].in, &v, err, sizeof(err));
        if (rc != NHID_ERR_INVALID || v != 12345 || strstr(err, bad[i].msg) == NULL)
            fail_msg("size \"%s\": rc=%d err=\"%s\" want \"%s\"", bad[i].in, rc, err, bad[i].msg);
        assert_int_equal(nhid_config_parse_size(bad[i].in, &v, NULL, 0), NHID_ERR_INVALID);
    }
    uint64_t v;
    assert_int_equal(nhid_config_parse_size(NULL, &v, NULL, 0), NHID_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_comments_and_whitespace),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_heredoc),
        cmocka_unit_test(test_numbers_and_bools),
        cmocka_unit_test(test_lists_and_objects),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_string_limit),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test_setup_teardown(test_load_file, make_tmpdir, remove_tmpdir),
        cmocka_unit_test(test_docs_example),
        cmocka_unit_test(test_parse_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
