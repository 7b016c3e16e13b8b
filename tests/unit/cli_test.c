/* cli_test — the pure parts of the `nhid` CLI: flags, key=value arguments,
 * value and table formatting, error printing, and the connection error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"

/* A ctx whose output goes to memory streams. */
struct cap {
    struct cli_ctx ctx;
    char *out, *err;
    size_t outlen, errlen;
    FILE *in;
};

static void cap_open(struct cap *c, const char *stdin_text)
{
    memset(c, 0, sizeof(*c));
    FILE *out = open_memstream(&c->out, &c->outlen);
    FILE *err = open_memstream(&c->err, &c->errlen);
    assert_non_null(out);
    assert_non_null(err);
    if (stdin_text)
        c->in = fmemopen((void *)stdin_text, strlen(stdin_text), "r");
    else
        c->in = fopen("/dev/null", "r");
    assert_non_null(c->in);
    unsetenv("NHID_FORMAT");
    unsetenv("NHID_SKIP_VERIFY");
    unsetenv("NHID_CLIENT_TIMEOUT");
    assert_int_equal(cli_ctx_init(&c->ctx, out, err, c->in), NHID_OK);
}

/* Flush the streams so c->out / c->err hold everything printed so far. */
static void cap_flush(struct cap *c)
{
    fflush(c->ctx.out);
    fflush(c->ctx.err);
}

static void cap_close(struct cap *c)
{
    cli_ctx_cleanup(&c->ctx);
    fclose(c->ctx.out);
    fclose(c->ctx.err);
    fclose(c->in);
    free(c->out);
    free(c->err);
}

/* ---- flags -------------------------------------------------------------- */

static void test_flags_forms(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    const char *path = NULL, *desc = NULL, *name = NULL;
    long long n = 0;
    struct cli_flag flags[] = {
        CLI_FLAG("path", CLI_FLAG_STR, &path, "P", "a path"),
        CLI_FLAG("description", CLI_FLAG_STR, &desc, "S", "a description"),
        CLI_FLAG("name", CLI_FLAG_STR, &name, "N", "a name"),
        CLI_FLAG("key-shares", CLI_FLAG_INT, &n, "N", "a number"),
        CLI_FLAG_END,
    };
    char *argv[] = {"-path=a", "pos1", "-description",   "two words",
                    "--name",  "n1",   "--key-shares=7", "pos2"};
    char err[256] = "";
    assert_int_equal(cli_parse_flags(&c.ctx, 8, argv, flags, err, sizeof(err)), NHID_OK);
    assert_string_equal(path, "a");
    assert_string_equal(desc, "two words");
    assert_string_equal(name, "n1");
    assert_int_equal(n, 7);
    assert_true(flags[0].seen && flags[3].seen);
    assert_int_equal(c.ctx.nargs, 2);
    assert_string_equal(c.ctx.args[0], "pos1");
    assert_string_equal(c.ctx.args[1], "pos2");
    /* A value may itself start with '-' when given as the next argument. */
    char *argv2[] = {"-key-shares", "-3", "-path", "-x"};
    assert_int_equal(cli_parse_flags(&c.ctx, 4, argv2, flags, err, sizeof(err)), NHID_OK);
    assert_int_equal(n, -3);
    assert_string_equal(path, "-x");
    assert_int_equal(c.ctx.nargs, 0);
    cap_close(&c);
}

static void test_flags_bool(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    bool orphan = false, renewable = true;
    struct cli_flag flags[] = {
        CLI_FLAG("orphan", CLI_FLAG_BOOL, &orphan, NULL, "x"),
        CLI_FLAG("renewable", CLI_FLAG_BOOL, &renewable, NULL, "y"),
        CLI_FLAG_END,
    };
    char err[256] = "";
    /* A bool flag never consumes the next argument. */
    char *argv[] = {"-orphan", "false", "-renewable=false"};
    assert_int_equal(cli_parse_flags(&c.ctx, 3, argv, flags, err, sizeof(err)), NHID_OK);
    assert_true(orphan);
    assert_false(renewable);
    assert_int_equal(c.ctx.nargs, 1);
    assert_string_equal(c.ctx.args[0], "false");

    char *argv2[] = {"--orphan=FALSE", "--renewable=1"};
    assert_int_equal(cli_parse_flags(&c.ctx, 2, argv2, flags, err, sizeof(err)), NHID_OK);
    assert_false(orphan);
    assert_true(renewable);

    char *argv3[] = {"-orphan=maybe"};
    assert_int_equal(cli_parse_flags(&c.ctx, 1, argv3, flags, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "-orphan"));
    assert_non_null(strstr(err, "maybe"));
    cap_close(&c);
}

static void test_flags_repeated(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    struct cli_strv pol = {0};
    struct cli_flag flags[] = {
        CLI_FLAG("policy", CLI_FLAG_STRS, &pol, "P", "x"),
        CLI_FLAG_END,
    };
    char err[256] = "";
    char *argv[] = {"-policy", "a", "--policy=b", "-policy=c"};
    assert_int_equal(cli_parse_flags(&c.ctx, 4, argv, flags, err, sizeof(err)), NHID_OK);
    assert_int_equal(pol.n, 3);
    assert_string_equal(pol.v[0], "a");
    assert_string_equal(pol.v[1], "b");
    assert_string_equal(pol.v[2], "c");

    /* The named maximum holds. */
    struct cli_strv many = {0};
    struct cli_flag f2[] = {CLI_FLAG("p", CLI_FLAG_STRS, &many, "P", "x"), CLI_FLAG_END};
    char *big[CLI_STRV_MAX + 1];
    for (size_t i = 0; i < NHID_ARRAY_LEN(big); i++)
        big[i] = "-p=x";
    assert_int_equal(cli_parse_flags(&c.ctx, (int)NHID_ARRAY_LEN(big), big, f2, err, sizeof(err)),
                     NHID_ERR_TOO_LARGE);
    assert_non_null(strstr(err, "-p"));
    cap_close(&c);
}

static void test_flags_errors(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    long long n = 0;
    struct cli_duration ttl = {0};
    const char *s = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("use-limit", CLI_FLAG_INT, &n, "N", "x"),
        CLI_FLAG("ttl", CLI_FLAG_DURATION, &ttl, "D", "x"),
        CLI_FLAG("display-name", CLI_FLAG_STR, &s, "S", "x"),
        CLI_FLAG_END,
    };
    char err[256];

    char *a1[] = {"pos", "-bogus=1"};
    assert_int_equal(cli_parse_flags(&c.ctx, 2, a1, flags, err, sizeof(err)), NHID_ERR_INVALID);
    assert_string_equal(err, "unknown flag -bogus");

    char *a2[] = {"--also-bogus"};
    assert_int_equal(cli_parse_flags(&c.ctx, 1, a2, flags, err, sizeof(err)), NHID_ERR_INVALID);
    assert_string_equal(err, "unknown flag -also-bogus");

    char *a3[] = {"-use-limit", "ten"};
    assert_int_equal(cli_parse_flags(&c.ctx, 2, a3, flags, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "-use-limit"));
    assert_non_null(strstr(err, "\"ten\" is not a number"));

    char *a4[] = {"-display-name"};
    assert_int_equal(cli_parse_flags(&c.ctx, 1, a4, flags, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "-display-name needs a value"));

    char *a5[] = {"-ttl=90x"};
    assert_int_equal(cli_parse_flags(&c.ctx, 1, a5, flags, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "-ttl"));
    assert_non_null(strstr(err, "unknown unit"));

    char *a6[] = {"-ttl", "1h30m"};
    assert_int_equal(cli_parse_flags(&c.ctx, 2, a6, flags, err, sizeof(err)), NHID_OK);
    assert_int_equal(ttl.seconds, 5400);
    assert_string_equal(ttl.text, "1h30m");

    char *a7[] = {"-format=xml"};
    assert_int_equal(cli_parse_flags(&c.ctx, 1, a7, flags, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "-format"));
    assert_non_null(strstr(err, "xml"));

    char *a8[] = {"-=x"};
    assert_int_equal(cli_parse_flags(&c.ctx, 1, a8, flags, err, sizeof(err)), NHID_ERR_INVALID);
    cap_close(&c);
}

static void test_flags_globals(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    char err[256];
    char *argv[] = {"-address",
                    "https://h:1",
                    "-ca-cert=/ca.pem",
                    "--client-cert",
                    "/c.pem",
                    "-client-key=/k.pem",
                    "-format",
                    "json",
                    "-tls-skip-verify",
                    "-h",
                    "--",
                    "-notaflag",
                    "-"};
    assert_int_equal(cli_parse_flags(&c.ctx, 13, argv, NULL, err, sizeof(err)), NHID_OK);
    assert_string_equal(c.ctx.opts.addr, "https://h:1");
    assert_string_equal(c.ctx.opts.ca_cert, "/ca.pem");
    assert_string_equal(c.ctx.opts.client_cert, "/c.pem");
    assert_string_equal(c.ctx.opts.client_key, "/k.pem");
    assert_int_equal(c.ctx.opts.format, CLI_FORMAT_JSON);
    assert_true(c.ctx.opts.skip_verify);
    assert_true(c.ctx.help);
    /* after "--" everything is positional; a lone "-" is always positional */
    assert_int_equal(c.ctx.nargs, 2);
    assert_string_equal(c.ctx.args[0], "-notaflag");
    assert_string_equal(c.ctx.args[1], "-");
    cap_close(&c);
}

static void test_env_format(void **state)
{
    (void)state;
    struct cli_ctx ctx;
    setenv("NHID_FORMAT", "json", 1);
    assert_int_equal(cli_ctx_init(&ctx, stdout, stderr, stdin), NHID_OK);
    assert_int_equal(ctx.opts.format, CLI_FORMAT_JSON);
    cli_ctx_cleanup(&ctx);
    FILE *err = tmpfile();
    setenv("NHID_FORMAT", "yaml", 1);
    assert_int_equal(cli_ctx_init(&ctx, stdout, err, stdin), NHID_ERR_INVALID);
    cli_ctx_cleanup(&ctx);
    unsetenv("NHID_FORMAT");
    fclose(err);
}

static void test_begin(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    char *a1[] = {"x", "y"};
    assert_int_equal(cli_begin(&c.ctx, 2, a1, NULL, 1, 1), CLI_EXIT_USAGE);
    char *a2[] = {"x"};
    assert_int_equal(cli_begin(&c.ctx, 1, a2, NULL, 1, 1), CLI_CONTINUE);
    char *a3[] = {"-nope"};
    assert_int_equal(cli_begin(&c.ctx, 1, a3, NULL, 0, 0), CLI_EXIT_USAGE);
    char *a4[] = {"-h"};
    assert_int_equal(cli_begin(&c.ctx, 1, a4, NULL, 1, 1), CLI_EXIT_OK);
    cap_flush(&c);
    assert_non_null(strstr(c.err, "takes 1 argument, got 2"));
    assert_non_null(strstr(c.err, "unknown flag -nope"));
    assert_non_null(strstr(c.out, "-format table|json"));
    cap_close(&c);
}

/* ---- key=value arguments ------------------------------------------------ */

static void test_kv_basic_and_arrays(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *o = NULL;
    char *args[] = {"a=1", "b=x=y", "tag=one", "tag=two", "tag=three", "empty=", "lit=\\@x"};
    assert_int_equal(cli_kv_parse(args, 7, NULL, &o, err, sizeof(err)), NHID_OK);
    assert_string_equal(json_string_value(json_object_get(o, "a")), "1");
    assert_string_equal(json_string_value(json_object_get(o, "b")), "x=y");
    assert_string_equal(json_string_value(json_object_get(o, "empty")), "");
    assert_string_equal(json_string_value(json_object_get(o, "lit")), "@x");
    json_t *tags = json_object_get(o, "tag");
    assert_true(json_is_array(tags));
    assert_int_equal(json_array_size(tags), 3);
    assert_string_equal(json_string_value(json_array_get(tags, 2)), "three");
    cli_json_free(o);
}

static void test_kv_file_and_stdin(void **state)
{
    (void)state;
    char path[] = "/tmp/nhid_cli_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "-----BEGIN X-----\n", 18), 18);
    close(fd);

    char arg[128];
    snprintf(arg, sizeof(arg), "pem=@%s", path);
    const char *in_text = "{\"n\": 5, \"pem\": \"second\"}";
    FILE *in = fmemopen((void *)in_text, strlen(in_text), "r");
    char *args[] = {arg, "-"};
    char err[256] = "";
    json_t *o = NULL;
    assert_int_equal(cli_kv_parse(args, 2, in, &o, err, sizeof(err)), NHID_OK);
    fclose(in);
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 5);
    /* stdin's "pem" joins the @file value into an array */
    json_t *pem = json_object_get(o, "pem");
    assert_true(json_is_array(pem));
    assert_string_equal(json_string_value(json_array_get(pem, 0)), "-----BEGIN X-----\n");
    assert_string_equal(json_string_value(json_array_get(pem, 1)), "second");
    cli_json_free(o);

    /* key=- takes stdin verbatim */
    in = fmemopen("s3cret\n", 7, "r");
    char *args2[] = {"password=-"};
    o = NULL;
    assert_int_equal(cli_kv_parse(args2, 1, in, &o, err, sizeof(err)), NHID_OK);
    assert_string_equal(json_string_value(json_object_get(o, "password")), "s3cret\n");
    cli_json_free(o);
    fclose(in);
    unlink(path);
}

static void test_kv_errors(void **state)
{
    (void)state;
    char err[256] = "";
    json_t *o = NULL;
    char *a1[] = {"novalue"};
    assert_int_equal(cli_kv_parse(a1, 1, NULL, &o, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "\"novalue\": expected key=value"));
    char *a2[] = {"=v"};
    assert_int_equal(cli_kv_parse(a2, 1, NULL, &o, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "empty key"));
    char *a3[] = {"k=@/nonexistent/file"};
    assert_int_equal(cli_kv_parse(a3, 1, NULL, &o, err, sizeof(err)), NHID_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/file"));

    FILE *in = fmemopen("not json", 8, "r");
    char *a4[] = {"-"};
    assert_int_equal(cli_kv_parse(a4, 1, in, &o, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "stdin is not JSON"));
    fclose(in);

    in = fmemopen("[1,2]", 5, "r");
    assert_int_equal(cli_kv_parse(a4, 1, in, &o, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "expected a JSON object"));
    fclose(in);

    in = fmemopen("{}", 2, "r");
    char *a5[] = {"-", "k=-"};
    assert_int_equal(cli_kv_parse(a5, 2, in, &o, err, sizeof(err)), NHID_ERR_INVALID);
    assert_non_null(strstr(err, "only once"));
    fclose(in);
    assert_null(o); /* untouched on failure */
}

static void test_read_secret_from_pipe(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, "abc123==\r\nnext line\n");
    char buf[64];
    assert_int_equal(cli_read_secret(&c.ctx, "Key: ", buf, sizeof(buf)), NHID_OK);
    assert_string_equal(buf, "abc123==");
    nhid_wipe(buf, sizeof(buf));
    cap_flush(&c);
    assert_int_equal(c.errlen, 0); /* no prompt when stdin is not a terminal */
    cap_close(&c);

    cap_open(&c, "\n");
    assert_int_equal(cli_read_secret(&c.ctx, "Key: ", buf, sizeof(buf)), NHID_ERR_INVALID);
    cap_close(&c);

    cap_open(&c, "0123456789abcdef0123456789");
    char small[8];
    assert_int_equal(cli_read_secret(&c.ctx, "Key: ", small, sizeof(small)), NHID_ERR_TOO_LARGE);
    cap_close(&c);
}

/* ---- formatting --------------------------------------------------------- */

static void check_text(const char *key, const char *json, const char *want)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    char *s = cli_json_to_text(key, v);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
    json_decref(v);
}

static void test_value_format(void **state)
{
    (void)state;
    check_text("x", "\"plain\"", "plain");
    check_text("x", "42", "42");
    check_text("x", "1.5", "1.5");
    check_text("x", "true", "true");
    check_text("x", "null", "n/a");
    check_text("x", "[\"a\",\"b\",3]", "[a b 3]");
    check_text("x", "{\"k\":\"v\",\"n\":[1]}", "map[k:v n:[1]]");
    check_text("x", "3600", "3600");
    /* duration-valued keys format like Vault */
    check_text("ttl", "3600", "1h0m0s");
    check_text("period", "90", "1m30s");
    check_text("lease_duration", "0", "0s");
    check_text("explicit_max_ttl", "5430", "1h30m30s");

    char d[32];
    nhid_duration_format(86400 + 61, d, sizeof(d));
    assert_string_equal(d, "24h1m1s");
}

static void test_table_print(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct cli_table *t = cli_table_kv();
    assert_non_null(t);
    assert_int_equal(cli_table_add(t, "Sealed", "%s", "false"), NHID_OK);
    assert_int_equal(cli_table_add(t, "Unseal Progress", "%d/%d", 1, 3), NHID_OK);
    assert_int_equal(cli_table_row(t, "Nonce", NULL), NHID_OK);
    assert_int_equal(cli_table_row(t, "Evil", "a\x1b[2Jb"), NHID_OK);
    cli_table_print(t, f);
    cli_table_free(t);
    fclose(f);
    assert_string_equal(buf, "Key                Value\n"
                             "---                -----\n"
                             "Sealed             false\n"
                             "Unseal Progress    1/3\n"
                             "Nonce              n/a\n"
                             "Evil               a?[2Jb\n");
    free(buf);

    f = open_memstream(&buf, &len);
    t = cli_table_new(3, "Path", "Type", "Description");
    assert_int_equal(cli_table_row(t, "file/", "file", "main"), NHID_OK);
    cli_table_print(t, f);
    cli_table_free(t);
    cli_table_free(NULL);
    fclose(f);
    assert_string_equal(buf, "Path     Type    Description\n"
                             "----     ----    -----------\n"
                             "file/    file    main\n");
    free(buf);
}

static void test_print_secret_and_auth(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    json_t *resp = json_loads(
        "{\"request_id\":\"r\",\"lease_id\":\"\",\"lease_duration\":0,\"renewable\":false,"
        "\"data\":{\"zeta\":\"z\",\"alpha\":[\"a\"],\"ttl\":60},\"warnings\":[\"careful\"],"
        "\"auth\":null}",
        0, NULL);
    assert_int_equal(cli_print_secret(&c.ctx, resp), CLI_EXIT_OK);
    cli_json_free(resp);
    cap_flush(&c);
    assert_string_equal(c.out, "Key      Value\n"
                               "---      -----\n"
                               "alpha    [a]\n"
                               "ttl      1m0s\n"
                               "zeta     z\n"
                               "\nWARNING! The following warnings were returned from nhid:\n\n"
                               "  * careful\n");
    cap_close(&c);

    cap_open(&c, NULL);
    resp = json_loads("{\"auth\":{\"client_token\":\"hvs.T\",\"accessor\":\"acc\","
                      "\"policies\":[\"default\",\"web\"],\"token_policies\":[\"default\",\"web\"],"
                      "\"identity_policies\":null,\"metadata\":{\"team\":\"a\"},"
                      "\"lease_duration\":900,\"renewable\":true}}",
                      0, NULL);
    assert_int_equal(cli_print_auth(&c.ctx, resp), CLI_EXIT_OK);
    cli_json_free(resp);
    cap_flush(&c);
    assert_string_equal(c.out, "Key                  Value\n"
                               "---                  -----\n"
                               "token                hvs.T\n"
                               "token_accessor       acc\n"
                               "token_duration       15m0s\n"
                               "token_renewable      true\n"
                               "token_policies       [\"default\",\"web\"]\n"
                               "identity_policies    []\n"
                               "policies             [\"default\",\"web\"]\n"
                               "token_meta_team      a\n");
    cap_close(&c);

    /* -field prints one value, even with -format=json; an absent field is a usage error */
    cap_open(&c, NULL);
    char *fa[] = {"-field", "token_accessor", "-format=json"};
    assert_int_equal(cli_begin(&c.ctx, 3, fa, NULL, 0, 0), CLI_CONTINUE);
    resp = json_loads("{\"auth\":{\"client_token\":\"hvs.T\",\"accessor\":\"acc\"}}", 0, NULL);
    assert_int_equal(cli_print_auth(&c.ctx, resp), CLI_EXIT_OK);
    c.ctx.opts.field = "nope";
    assert_int_equal(cli_print_auth(&c.ctx, resp), CLI_EXIT_USAGE);
    cli_json_free(resp);
    cap_flush(&c);
    assert_string_equal(c.out, "acc\n");
    assert_non_null(strstr(c.err, "flag -field: \"nope\" is not in the response"));
    cap_close(&c);

    /* -format=json prints the whole response */
    cap_open(&c, NULL);
    c.ctx.opts.format = CLI_FORMAT_JSON;
    resp = json_loads("{\"data\":{\"k\":\"v\"}}", 0, NULL);
    assert_int_equal(cli_print_secret(&c.ctx, resp), CLI_EXIT_OK);
    cli_json_free(resp);
    cap_flush(&c);
    assert_string_equal(c.out, "{\n  \"data\": {\n    \"k\": \"v\"\n  }\n}\n");
    cap_close(&c);
}

static void test_seal_status_exit_codes(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    json_t *st = json_loads("{\"initialized\":true,\"sealed\":true,\"t\":3,\"n\":5,"
                            "\"progress\":1,\"nonce\":\"\",\"version\":\"0.1.0\"}",
                            0, NULL);
    assert_int_equal(cli_print_seal_status(&c.ctx, st), CLI_EXIT_ERROR);
    json_object_set_new(st, "sealed", json_false());
    assert_int_equal(cli_print_seal_status(&c.ctx, st), CLI_EXIT_OK);
    cli_json_free(st);
    cap_flush(&c);
    assert_non_null(strstr(c.out, "Unseal Progress    1/3\n"));
    assert_non_null(strstr(c.out, "Sealed          false\n"));
    cap_close(&c);
}

static void test_api_error(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_t *resp = json_loads("{\"errors\":[\"permission denied\",\"bad \\u001b[31m\"]}", 0, NULL);
    assert_int_equal(cli_print_api_error(f, "PUT", "https://h:8200/v1/sys/seal", 403, resp, NULL),
                     NHID_ERR_DENIED);
    json_decref(resp);
    assert_int_equal(cli_print_api_error(f, "GET", "https://h/v1/x", 500, NULL, "<html>oops"),
                     NHID_ERR_INTERNAL);
    assert_int_equal(cli_print_api_error(f, "GET", "https://h/v1/y", 503, NULL, NULL),
                     NHID_ERR_SEALED);
    fclose(f);
    assert_string_equal(buf,
                        "Error: PUT https://h:8200/v1/sys/seal: 403: permission denied; bad ?[31m\n"
                        "Error: GET https://h/v1/x: 500: <html>oops\n"
                        "Error: GET https://h/v1/y: 503: unavailable (is it sealed? see nhid "
                        "status)\n");
    free(buf);
    assert_int_equal(cli_status_to_err(404), NHID_ERR_NOT_FOUND);
    assert_int_equal(cli_status_to_err(400), NHID_ERR_INVALID);
    assert_int_equal(cli_status_to_err(429), NHID_ERR_RATE_LIMIT);
}

/* ---- HTTP: the parts that need no server -------------------------------- */

static void test_connect_error(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    c.ctx.opts.addr = "https://127.0.0.1:1";
    json_t *resp = NULL;
    assert_true(cli_call(&c.ctx, "GET", "sys/health", NULL, &resp) < 0);
    assert_null(resp);
    cap_flush(&c);
    assert_true(nhid_has_prefix(c.err, "Error: cannot connect to https://127.0.0.1:1: "));
    assert_non_null(strstr(c.err, "(is the server running? set NHID_ADDR)\n"));
    assert_string_equal(cli_client_last_url(c.ctx.client), "https://127.0.0.1:1/v1/sys/health");
    /* the same client (and curl handle) is reused for the next request */
    assert_true(cli_call(&c.ctx, "GET", "/v1/sys/seal-status", NULL, NULL) < 0);
    assert_string_equal(cli_client_last_url(c.ctx.client),
                        "https://127.0.0.1:1/v1/sys/seal-status");
    /* bytes that may not appear in a URL are percent-encoded */
    assert_true(cli_call(&c.ctx, "GET", "secret/a b\"#", NULL, NULL) < 0);
    assert_string_equal(cli_client_last_url(c.ctx.client),
                        "https://127.0.0.1:1/v1/secret/a%20b%22%23");
    cap_close(&c);
}

static void test_bad_address(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    c.ctx.opts.addr = "ftp://example";
    assert_true(cli_call(&c.ctx, "GET", "sys/health", NULL, NULL) < 0);
    cap_flush(&c);
    assert_non_null(strstr(c.err, "must start with https://"));
    cap_close(&c);

    cap_open(&c, NULL);
    c.ctx.opts.client_cert = "/c.pem"; /* without a key */
    assert_true(cli_call(&c.ctx, "GET", "sys/health", NULL, NULL) < 0);
    cap_flush(&c);
    assert_non_null(strstr(c.err, "NHID_CLIENT_KEY"));
    cap_close(&c);
}

static void test_token_and_limits(void **state)
{
    (void)state;
    struct cap c;
    cap_open(&c, NULL);
    c.ctx.opts.addr = "https://127.0.0.1:1";
    /* a token with CR/LF would inject headers: refused, and never echoed */
    setenv("NHID_TOKEN", "abc\r\nX-Evil: 1", 1);
    assert_null(cli_client_get(&c.ctx));
    cap_flush(&c);
    assert_non_null(strstr(c.err, "NHID_TOKEN is malformed"));
    assert_null(strstr(c.err, "abc"));
    unsetenv("NHID_TOKEN");
    struct cli_client *cl = cli_client_get(&c.ctx);
    assert_non_null(cl);
    assert_int_equal(cli_client_set_token(cl, "nhs.ok"), NHID_OK);
    assert_int_equal(cli_client_set_token(cl, "bad\ntoken"), NHID_ERR_INVALID);
    assert_int_equal(cli_client_set_token(cl, NULL), NHID_OK);
    cap_close(&c);

    /* input readers stop at their named maximum */
    char big[100];
    memset(big, 'x', sizeof(big));
    FILE *f = fmemopen(big, sizeof(big), "r");
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(cli_read_stream(f, 50, &out, &len), NHID_ERR_TOO_LARGE);
    assert_null(out);
    rewind(f);
    assert_int_equal(cli_read_stream(f, 100, &out, &len), NHID_OK);
    assert_int_equal(len, 100);
    nhid_free_secret(out, len + 1);
    fclose(f);
}

/* ---- dispatch (exit codes) ----------------------------------------------- */

static int run(int argc, char **argv)
{
    /* Silence the command's own output: only exit codes are checked here. */
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    FILE *null = fopen("/dev/null", "w");
    dup2(fileno(null), 1);
    dup2(fileno(null), 2);
    int rc = nhid_cli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    fclose(null);
    return rc;
}

static void test_dispatch(void **state)
{
    (void)state;
    setenv("NHID_ADDR", "https://127.0.0.1:1", 1);
    unsetenv("NHID_FORMAT");
    char *v[] = {"nhid", "version"};
    assert_int_equal(run(2, v), 0);
    char *h[] = {"nhid", "-h"};
    assert_int_equal(run(2, h), 0);
    char *none[] = {"nhid"};
    assert_int_equal(run(1, none), 1);
    char *unk[] = {"nhid", "frobnicate"};
    assert_int_equal(run(2, unk), 1);
    char *grp[] = {"nhid", "operator", "-h"};
    assert_int_equal(run(3, grp), 0);
    char *help[] = {"nhid", "help", "token", "create"};
    assert_int_equal(run(4, help), 0);
    char *bad[] = {"nhid", "token", "create", "-bogus"};
    assert_int_equal(run(4, bad), 1);
    char *shares[] = {"nhid", "operator", "init", "-key-shares", "2", "-key-threshold", "3"};
    assert_int_equal(run(7, shares), 1);
    /* status: 1 when the server cannot be reached (Vault's convention) */
    char *st[] = {"nhid", "status"};
    assert_int_equal(run(2, st), 1);
    /* other commands: 2 */
    char *rd[] = {"nhid", "read", "sys/mounts"};
    assert_int_equal(run(3, rd), 2);
    char *rd2[] = {"nhid", "read"};
    assert_int_equal(run(2, rd2), 1);
    /* audit verify is local; a missing file is the audit module's I/O error */
    char *av[] = {"nhid", "audit", "verify", "/nonexistent/audit.log"};
    assert_int_equal(run(4, av), 2);
    unsetenv("NHID_ADDR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_forms),
        cmocka_unit_test(test_flags_bool),
        cmocka_unit_test(test_flags_repeated),
        cmocka_unit_test(test_flags_errors),
        cmocka_unit_test(test_flags_globals),
        cmocka_unit_test(test_env_format),
        cmocka_unit_test(test_begin),
        cmocka_unit_test(test_kv_basic_and_arrays),
        cmocka_unit_test(test_kv_file_and_stdin),
        cmocka_unit_test(test_kv_errors),
        cmocka_unit_test(test_read_secret_from_pipe),
        cmocka_unit_test(test_value_format),
        cmocka_unit_test(test_table_print),
        cmocka_unit_test(test_print_secret_and_auth),
        cmocka_unit_test(test_seal_status_exit_codes),
        cmocka_unit_test(test_api_error),
        cmocka_unit_test(test_connect_error),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_token_and_limits),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
