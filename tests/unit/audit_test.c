/*
 * audit_test — the audit broker, the file device's hash chain and HMAC,
 * fail-closed behaviour, continuation across re-opens, the verifier
 * (each kind of tampering) and `nhid audit verify`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit/audit.h"

static const uint8_t KEY1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t KEY2[32] = {42};

#define SECRET_REQ "hunter2-request-secret"
#define SECRET_NESTED "nested-array-secret-7731"
#define SECRET_RESP "response-secret-value-99"
#define SECRET_TOKEN "nhs.client-token-abcdef"
#define SECRET_REQ_TOKEN "nhs.request-token-123456"

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/nhid-audit-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char p[512];
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------ */

static json_t *make_record(int i)
{
    json_t *r = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:{s:s, s:{s:[s, s, i, b, n]}, s:i}},"
        " s:{s:{s:s}, s:{s:s, s:[s]}}}",
        "time", "2026-01-01T00:00:00Z", "type", "response", "request", "id", "req-id", "operation",
        "update", "path", "secret/data/app", "client_token", SECRET_REQ_TOKEN, "data", "password",
        SECRET_REQ, "nested", "list", SECRET_NESTED, "plain", 7, true, "n", i, "response", "data",
        "value", SECRET_RESP, "auth", "client_token", SECRET_TOKEN, "policies", "default");
    assert_non_null(r);
    return r;
}

static void write_records(const char *path, const uint8_t key[32], int n)
{
    struct nhid_audit *a = NULL;
    char err[256];
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", path, key, "test", err, sizeof(err)),
                     NHID_OK);
    for (int i = 0; i < n; i++)
        assert_int_equal(nhid_audit_submit_wait(a, make_record(i)), NHID_OK);
    assert_true(nhid_audit_healthy(a));
    nhid_audit_free(a);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const char *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

/* The file as an array of lines (each with its '\n'); free with free_lines. */
struct lines {
    char **v;
    size_t n;
};

static struct lines read_lines(const char *path)
{
    size_t len;
    char *buf = slurp(path, &len);
    struct lines l = {calloc(len + 1, sizeof(char *)), 0};
    size_t pos = 0;
    while (pos < len) {
        char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - buf) + 1 : len;
        l.v[l.n] = strndup(buf + pos, end - pos);
        l.n++;
        pos = end;
    }
    free(buf);
    return l;
}

static void write_lines(const char *path, struct lines *l)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] != NULL)
            fputs(l->v[i], fp);
    fclose(fp);
}

static void free_lines(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    uint8_t md[32];
    unsigned mdlen = 0;
    assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A well-formed line with a correct chain value: {"forged":true,"seq":S,"prev":"P",...} */
static char *forge_line(uint64_t seq, const char *prev_hex)
{
    char body[256], hashin[260], chain[65];
    snprintf(body, sizeof(body), "{\"forged\":true,\"seq\":%llu,\"prev\":\"%s\"",
             (unsigned long long)seq, prev_hex);
    snprintf(hashin, sizeof(hashin), "%s}", body);
    sha256_hex(hashin, strlen(hashin), chain);
    char *line = malloc(512);
    snprintf(line, 512, "%s,\"chain\":\"%s\"}\n", body, chain);
    return line;
}

/* The 64-hex value of field "name" in line (the last three fields). */
static void field_hex(const char *line, const char *name, char out[65])
{
    char key[32];
    snprintf(key, sizeof(key), "\"%s\":\"", name);
    const char *p = strstr(line, key);
    assert_non_null(p);
    memcpy(out, p + strlen(key), 64);
    out[64] = '\0';
}

static int verify(const char *path, struct nhid_audit_verify_result *res,
                  enum nhid_audit_problem *kind)
{
    return nhid_audit_verify_file_ex(path, res, kind);
}

#define EXPECT_TAMPER(path, line, seq, k)                                                          \
    do {                                                                                           \
        struct nhid_audit_verify_result r_;                                                        \
        enum nhid_audit_problem k_;                                                                \
        assert_int_equal(verify(path, &r_, &k_), NHID_ERR_TAMPERED);                               \
        print_message("    problem: %s\n", r_.problem);                                            \
        assert_int_equal(r_.bad_line, (line));                                                     \
        assert_int_equal(r_.bad_seq, (seq));                                                       \
        assert_string_equal(nhid_audit_problem_name(k_), nhid_audit_problem_name(k));              \
        assert_true(strlen(r_.problem) > 10);                                                      \
    } while (0)

/* ---- verification of intact and tampered files ----------------------------------- */

static void test_chain_ok_and_format(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 25);
    struct nhid_audit_verify_result res;
    enum nhid_audit_problem kind;
    assert_int_equal(verify(f->path, &res, &kind), NHID_OK);
    assert_int_equal(res.records, 25);
    assert_int_equal(res.bad_line, 0);
    assert_int_equal(kind, NHID_AUDIT_PROBLEM_NONE);

    /* Every line is JSON whose last three fields are seq, prev, chain. */
    struct lines l = read_lines(f->path);
    assert_int_equal(l.n, 25);
    char prev[65] = "0000000000000000000000000000000000000000000000000000000000000000";
    for (size_t i = 0; i < l.n; i++) {
        json_error_t jerr;
        json_t *o = json_loads(l.v[i], 0, &jerr);
        assert_non_null(o);
        const char *keys[3] = {NULL, NULL, NULL};
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v)
        {
            keys[0] = keys[1];
            keys[1] = keys[2];
            keys[2] = k;
        }
        assert_string_equal(keys[0], "seq");
        assert_string_equal(keys[1], "prev");
        assert_string_equal(keys[2], "chain");
        assert_int_equal(json_integer_value(json_object_get(o, "seq")), (json_int_t)i + 1);
        assert_string_equal(json_string_value(json_object_get(o, "prev")), prev);
        strcpy(prev, json_string_value(json_object_get(o, "chain")));
        /* chain = SHA-256(line up to ,"chain":" || "}") */
        const char *cut = strstr(l.v[i], ",\"chain\":\"");
        char *in = strndup(l.v[i], (size_t)(cut - l.v[i]) + 1);
        in[cut - l.v[i]] = '}';
        char h[65];
        sha256_hex(in, strlen(in), h);
        assert_string_equal(h, prev);
        free(in);
        json_decref(o);
    }
    free_lines(&l);
}

static void test_detect_edit(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    char *p = strstr(l.v[6], "secret/data/app");
    assert_non_null(p);
    p[0] = 'S'; /* one byte in record 7 */
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 7, 7, NHID_AUDIT_PROBLEM_EDITED);
}

static void test_detect_edit_seq_digits(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    char *p = strstr(l.v[11], "\"seq\":12,");
    assert_non_null(p);
    p[7] = '3'; /* seq 12 -> 13 */
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 12, 13, NHID_AUDIT_PROBLEM_EDITED);
}

static void test_detect_delete(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    free(l.v[6]);
    l.v[6] = NULL; /* delete record 7 */
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 7, 8, NHID_AUDIT_PROBLEM_MISSING);
}

static void test_detect_delete_first_and_range(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    free(l.v[0]);
    l.v[0] = NULL; /* the first record */
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 1, 2, NHID_AUDIT_PROBLEM_MISSING);
}

static void test_detect_delete_last_records_range(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    for (int i = 9; i < 12; i++) {
        free(l.v[i]);
        l.v[i] = NULL; /* records 10, 11, 12 */
    }
    write_lines(f->path, &l);
    free_lines(&l);
    struct nhid_audit_verify_result res;
    assert_int_equal(verify(f->path, &res, NULL), NHID_ERR_TAMPERED);
    assert_int_equal(res.bad_line, 10);
    assert_int_equal(res.bad_seq, 13);
    assert_non_null(strstr(res.problem, "10..12"));
}

static void test_detect_forged_insert(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    /* A forged record claiming seq 7 with a made-up prev, valid chain of its own. */
    char *forged =
        forge_line(7, "1111111111111111111111111111111111111111111111111111111111111111");
    memmove(&l.v[7], &l.v[6], (l.n - 6) * sizeof(char *));
    l.v[6] = forged;
    l.n++;
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 7, 7, NHID_AUDIT_PROBLEM_INSERTED);
}

static void test_detect_forged_fork(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    /* A forger who links to record 6 correctly: the original record 7 then collides. */
    char prev6[65];
    field_hex(l.v[5], "chain", prev6);
    char *forged = forge_line(7, prev6);
    memmove(&l.v[7], &l.v[6], (l.n - 6) * sizeof(char *));
    l.v[6] = forged;
    l.n++;
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 8, 7, NHID_AUDIT_PROBLEM_INSERTED);
}

static void test_detect_replaced(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    char prev[65];
    field_hex(l.v[9], "prev", prev);
    free(l.v[9]);
    l.v[9] = forge_line(10, prev); /* record 10 replaced: the next record no longer links */
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 11, 11, NHID_AUDIT_PROBLEM_INSERTED);
}

static void test_detect_swap(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    char *t = l.v[6];
    l.v[6] = l.v[7];
    l.v[7] = t;
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 7, 8, NHID_AUDIT_PROBLEM_REORDERED);
}

static void test_detect_duplicate(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    struct lines l = read_lines(f->path);
    memmove(&l.v[11], &l.v[10], (l.n - 10) * sizeof(char *));
    l.v[10] = strdup(l.v[2]); /* replay record 3 as line 11 */
    l.n++;
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 11, 3, NHID_AUDIT_PROBLEM_REORDERED);
}

static void test_detect_truncated_last_line(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 20);
    size_t len;
    char *buf = slurp(f->path, &len);
    spit(f->path, buf, len - 100); /* crash in the middle of the last write */
    EXPECT_TAMPER(f->path, 20, 0, NHID_AUDIT_PROBLEM_TRUNCATED);
    spit(f->path, buf, len - 1); /* only the newline missing */
    EXPECT_TAMPER(f->path, 20, 20, NHID_AUDIT_PROBLEM_TRUNCATED);
    free(buf);
}

static void test_detect_malformed(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 5);
    struct lines l = read_lines(f->path);
    memmove(&l.v[3], &l.v[2], (l.n - 2) * sizeof(char *));
    l.v[2] = strdup("{\"note\":\"hello\"}\n");
    l.n++;
    write_lines(f->path, &l);
    free_lines(&l);
    EXPECT_TAMPER(f->path, 3, 0, NHID_AUDIT_PROBLEM_MALFORMED);
}

static void test_verify_edge_inputs(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit_verify_result res;
    spit(f->path, "", 0);
    assert_int_equal(verify(f->path, &res, NULL), NHID_OK);
    assert_int_equal(res.records, 0);
    assert_int_equal(nhid_audit_verify_mem("\n", 1, &res, NULL), NHID_ERR_TAMPERED);
    assert_int_equal(res.bad_line, 1);
    assert_int_equal(nhid_audit_verify_mem("{", 1, &res, NULL), NHID_ERR_TAMPERED);
    /* upper-case hex is not the format */
    char *line = forge_line(1, "0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(nhid_audit_verify_mem(line, strlen(line), &res, NULL), NHID_OK);
    char *p = strstr(line, "\"chain\":\"") + 9;
    for (int i = 0; i < 64; i++)
        if (p[i] >= 'a' && p[i] <= 'f') {
            p[i] = (char)(p[i] - 'a' + 'A');
            break;
        }
    assert_int_equal(nhid_audit_verify_mem(line, strlen(line), &res, NULL), NHID_ERR_TAMPERED);
    free(line);
    /* seq overflow */
    const char *big = "{\"seq\":99999999999999999999999,\"prev\":\"";
    assert_int_equal(nhid_audit_verify_mem(big, strlen(big), &res, NULL), NHID_ERR_TAMPERED);
    assert_int_equal(verify("/nonexistent/nhid/audit.log", &res, NULL), NHID_ERR_IO);
    assert_non_null(strstr(res.problem, "cannot open"));
    assert_int_equal(verify(f->dir, &res, NULL), NHID_ERR_IO);
}

/* ---- HMAC ----------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *path)
{
    /* "a.b.c" or "a.b.0" lookups */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *cur = o;
    for (char *tok = strtok(buf, "."); tok != NULL; tok = strtok(NULL, ".")) {
        if (json_is_array(cur))
            cur = json_array_get(cur, (size_t)atoi(tok));
        else
            cur = json_object_get(cur, tok);
        assert_non_null(cur);
    }
    assert_true(json_is_string(cur));
    return json_string_value(cur);
}

static void test_hmac_secrets_never_written(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char err[256];
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "", err, sizeof(err)),
                     NHID_OK);
    json_t *rec = make_record(1);
    json_t *keep = json_incref(rec);
    assert_int_equal(nhid_audit_submit_wait(a, rec), NHID_OK);
    /* The caller's record is not changed by the device (no in-place HMAC). */
    assert_string_equal(jstr(keep, "request.data.password"), SECRET_REQ);
    assert_string_equal(jstr(keep, "response.auth.client_token"), SECRET_TOKEN);
    json_decref(keep);

    size_t len;
    char *buf = slurp(f->path, &len);
    const char *secrets[] = {SECRET_REQ, SECRET_NESTED, SECRET_RESP, SECRET_TOKEN,
                             SECRET_REQ_TOKEN};
    for (size_t i = 0; i < NHID_ARRAY_LEN(secrets); i++)
        assert_null(memmem(buf, len, secrets[i], strlen(secrets[i])));
    json_t *o = json_loadb(buf, len, 0, NULL);
    assert_non_null(o);
    char h[80];
    assert_int_equal(nhid_audit_hash(a, "file", SECRET_REQ, h), NHID_OK);
    assert_true(strncmp(h, "hmac-sha256:", 12) == 0);
    assert_int_equal(strlen(h), 12 + 64);
    assert_string_equal(jstr(o, "request.data.password"), h);
    assert_int_equal(nhid_audit_hash(a, "file/", SECRET_NESTED, h), NHID_OK);
    assert_string_equal(jstr(o, "request.data.nested.list.0"), h);
    assert_int_equal(nhid_audit_hash(a, "file", SECRET_RESP, h), NHID_OK);
    assert_string_equal(jstr(o, "response.data.value"), h);
    assert_int_equal(nhid_audit_hash(a, "file", SECRET_TOKEN, h), NHID_OK);
    assert_string_equal(jstr(o, "response.auth.client_token"), h);
    assert_int_equal(nhid_audit_hash(a, "file", SECRET_REQ_TOKEN, h), NHID_OK);
    assert_string_equal(jstr(o, "request.client_token"), h);
    /* Non-string leaves and fields outside the secret paths are kept. */
    json_t *list = json_object_get(
        json_object_get(json_object_get(json_object_get(o, "request"), "data"), "nested"), "list");
    assert_int_equal(json_integer_value(json_array_get(list, 2)), 7);
    assert_true(json_is_true(json_array_get(list, 3)));
    assert_true(json_is_null(json_array_get(list, 4)));
    assert_string_equal(jstr(o, "request.path"), "secret/data/app");
    assert_string_equal(jstr(o, "response.auth.policies.0"), "default");
    assert_int_equal(nhid_audit_hash(a, "nope", "x", h), NHID_ERR_NOT_FOUND);
    json_decref(o);
    free(buf);
    nhid_audit_free(a);
}

static void test_hmac_per_device_key(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char p2[160], err[256], h1[80], h2[80];
    snprintf(p2, sizeof(p2), "%s/second.log", f->dir);
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "one", f->path, KEY1, "", err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "two", p2, KEY2, "", err, sizeof(err)), NHID_OK);
    assert_int_equal(nhid_audit_submit_wait(a, make_record(1)), NHID_OK);
    assert_int_equal(nhid_audit_hash(a, "one", SECRET_REQ, h1), NHID_OK);
    assert_int_equal(nhid_audit_hash(a, "two", SECRET_REQ, h2), NHID_OK);
    assert_string_not_equal(h1, h2);
    size_t len;
    char *b1 = slurp(f->path, &len);
    assert_non_null(strstr(b1, h1));
    assert_null(strstr(b1, h2));
    free(b1);
    char *b2 = slurp(p2, &len);
    assert_non_null(strstr(b2, h2));
    free(b2);
    nhid_audit_free(a);
    struct nhid_audit_verify_result res;
    assert_int_equal(verify(f->path, &res, NULL), NHID_OK);
    assert_int_equal(verify(p2, &res, NULL), NHID_OK);
}

struct built_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
};

static void built_done(int rc, void *arg)
{
    struct built_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* make_record(0), field by field: the builder must write the very same line. */
static void test_builder_matches_json_record(void **state)
{
    struct fixture *f = *state;
    char p2[160], err[256];
    snprintf(p2, sizeof(p2), "%s/built.log", f->dir);
    write_records(f->path, KEY1, 1);

    struct nhid_audit *a = NULL;
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", p2, KEY1, "test", err, sizeof(err)),
                     NHID_OK);
    json_t *req_data = json_pack("{s:s, s:{s:[s, s, i, b, n]}, s:i}", "password", SECRET_REQ,
                                 "nested", "list", SECRET_NESTED, "plain", 7, true, "n", 0);
    json_t *resp_data = json_pack("{s:s}", "value", SECRET_RESP);
    json_t *resp_auth =
        json_pack("{s:s, s:[s]}", "client_token", SECRET_TOKEN, "policies", "default");
    struct nhid_audit_builder *b = nhid_audit_builder_new();
    assert_non_null(b);
    nhid_audit_builder_str(b, "time", "2026-01-01T00:00:00Z");
    nhid_audit_builder_str(b, "type", "response");
    nhid_audit_builder_open(b, "request");
    nhid_audit_builder_str(b, "id", "req-id");
    nhid_audit_builder_str(b, "operation", "update");
    nhid_audit_builder_str(b, "path", "secret/data/app");
    nhid_audit_builder_secret_str(b, "client_token", SECRET_REQ_TOKEN);
    nhid_audit_builder_json(b, "data", req_data, NHID_AUDIT_HMAC_ALL);
    nhid_audit_builder_close(b);
    nhid_audit_builder_open(b, "response");
    nhid_audit_builder_json(b, "data", resp_data, NHID_AUDIT_HMAC_ALL);
    nhid_audit_builder_json(b, "auth", resp_auth, NHID_AUDIT_HMAC_AUTH);
    nhid_audit_builder_close(b);
    struct built_wait w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    assert_int_equal(nhid_audit_submit_built(a, b, built_done, &w), NHID_OK);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(w.rc, NHID_OK);
    nhid_audit_builder_free(b);
    json_decref(req_data);
    json_decref(resp_data);
    json_decref(resp_auth);

    /* A builder left open, or misused, is refused without a completion. */
    b = nhid_audit_builder_new();
    nhid_audit_builder_open(b, "request");
    assert_int_equal(nhid_audit_submit_built(a, b, built_done, &w), NHID_ERR_INVALID);
    nhid_audit_builder_close(b);
    nhid_audit_builder_close(b);
    assert_int_equal(nhid_audit_submit_built(a, b, built_done, &w), NHID_ERR_INVALID);
    nhid_audit_builder_free(b);
    nhid_audit_free(a);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);

    size_t l1, l2;
    char *b1 = slurp(f->path, &l1), *b2 = slurp(p2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    assert_null(memmem(b2, l2, SECRET_REQ_TOKEN, strlen(SECRET_REQ_TOKEN)));
    free(b1);
    free(b2);
}

static void test_reserved_and_empty_records(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char err[256];
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "", err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(nhid_audit_submit_wait(a, json_object()), NHID_OK);
    assert_int_equal(
        nhid_audit_submit_wait(a, json_pack("{s:s, s:i, s:s}", "seq", "x", "chain", 5, "a", "b")),
        NHID_OK);
    assert_int_equal(nhid_audit_submit_wait(a, json_string("not an object")), NHID_ERR_INVALID);
    assert_int_equal(nhid_audit_submit(a, NULL, NULL, NULL), NHID_ERR_INVALID);
    nhid_audit_free(a);
    struct lines l = read_lines(f->path);
    assert_int_equal(l.n, 2);
    assert_true(strncmp(l.v[0], "{\"seq\":1,\"prev\":\"", 17) == 0);
    assert_true(strncmp(l.v[1], "{\"a\":\"b\",\"seq\":2,", 17) == 0);
    free_lines(&l);
    struct nhid_audit_verify_result res;
    assert_int_equal(verify(f->path, &res, NULL), NHID_OK);
    assert_int_equal(res.records, 2);
}

/* ---- the serializer equals jansson's JSON_COMPACT | JSON_PRESERVE_ORDER ---------- */

/* Reference transform with jansson: every string leaf HMAC'd via nhid_audit_hash(). */
static json_t *ref_hmac(struct nhid_audit *a, json_t *v)
{
    char h[80];
    if (json_is_string(v)) {
        assert_int_equal(nhid_audit_hash(a, "file", json_string_value(v), h), NHID_OK);
        return json_string(h);
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) json_object_set_new(o, k, ref_hmac(a, c));
        return o;
    }
    if (json_is_array(v)) {
        json_t *o = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(o, ref_hmac(a, json_array_get(v, i)));
        return o;
    }
    return json_incref(v);
}

static void test_serializer_matches_jansson(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char err[256];
    const char *docs[] = {
        "{\"s\":\"quote\\\" backslash\\\\ slash/ nl\\n tab\\t cr\\r bs\\b ff\\f c1\\u0001 "
        "c1f\\u001f del\\u007f nul\\u0000 e\\u00e9 emoji\\ud83d\\ude00 \\u2028\"}",
        "{\"k\\\"ey\\n\":1,\"\":\"\",\"int\":[0,-1,9223372036854775807,-9223372036854775808],"
        "\"real\":[1.5,-0.0,1e300,0.1,3.0,-2.5e-7,123456789.125],\"b\":[true,false,null],"
        "\"e\":{},\"ea\":[],\"n\":[[[{\"x\":[{}]}]]]}",
        "{\"request\":\"not an object\",\"response\":[{\"data\":\"x\"}]}",
        "{\"request\":{\"data\":null,\"client_token\":5,\"path\":\"p\"},"
        "\"response\":{\"auth\":\"s\",\"data\":[1,\"two\",{\"three\":[\"3\",3.5,false]}]}}",
        "{\"request\":{\"data\":{\"a\":{\"b\":[\"x\",{\"c\":\"y\"}]}},\"client_token\":\"t\"},"
        "\"response\":{\"auth\":{\"client_token\":\"ct\",\"accessor\":\"acc\"},"
        "\"data\":\"plain string\"},\"data\":\"top-level data is not secret\"}",
        "{\"auth\":{\"accessor\":\"acc\",\"metadata\":{\"k\":\"v\",\"n\":[\"w\",2]}},"
        "\"response\":{\"auth\":{\"metadata\":{\"m\":\"planted\"},\"policies\":[\"p\"]}}}",
    };
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "", err, sizeof(err)),
                     NHID_OK);
    for (size_t i = 0; i < NHID_ARRAY_LEN(docs); i++) {
        json_error_t jerr;
        json_t *rec = json_loads(docs[i], JSON_ALLOW_NUL, &jerr);
        if (rec == NULL)
            fail_msg("doc %zu: %s", i, jerr.text);
        assert_int_equal(nhid_audit_submit_wait(a, json_incref(rec)), NHID_OK);
        /* Expected: jansson's own transform + dump. */
        json_t *exp = json_copy(rec);
        json_t *req = json_object_get(rec, "request");
        json_t *resp = json_object_get(rec, "response");
        if (json_is_object(req)) {
            json_t *nr = json_copy(req);
            if (json_object_get(req, "data") != NULL)
                json_object_set_new(nr, "data", ref_hmac(a, json_object_get(req, "data")));
            if (json_object_get(req, "client_token") != NULL)
                json_object_set_new(nr, "client_token",
                                    ref_hmac(a, json_object_get(req, "client_token")));
            json_object_set_new(exp, "request", nr);
        }
        json_t *tauth = json_object_get(rec, "auth");
        if (json_is_object(tauth) && json_object_get(tauth, "metadata") != NULL) {
            json_t *na = json_copy(tauth);
            json_object_set_new(na, "metadata", ref_hmac(a, json_object_get(tauth, "metadata")));
            json_object_set_new(exp, "auth", na);
        }
        if (json_is_object(resp)) {
            json_t *nr = json_copy(resp);
            if (json_object_get(resp, "data") != NULL)
                json_object_set_new(nr, "data", ref_hmac(a, json_object_get(resp, "data")));
            json_t *auth = json_object_get(resp, "auth");
            if (json_is_object(auth)) {
                json_t *na = json_copy(auth);
                if (json_object_get(auth, "client_token") != NULL)
                    json_object_set_new(na, "client_token",
                                        ref_hmac(a, json_object_get(auth, "client_token")));
                if (json_object_get(auth, "metadata") != NULL)
                    json_object_set_new(na, "metadata",
                                        ref_hmac(a, json_object_get(auth, "metadata")));
                json_object_set_new(nr, "auth", na);
            }
            json_object_set_new(exp, "response", nr);
        }
        char *want = json_dumps(exp, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_non_null(want);
        struct lines l = read_lines(f->path);
        assert_int_equal(l.n, i + 1);
        char *line = l.v[i];
        char *cut = strstr(line, ",\"seq\":");
        assert_non_null(cut);
        cut[0] = '}';
        cut[1] = '\0';
        assert_string_equal(line, want);
        free(want);
        free_lines(&l);
        json_decref(exp);
        json_decref(rec);
    }
    /* Too deep: the record fails, nothing is written, the chain is unaffected. */
    json_t *deep = json_array();
    json_t *top = json_pack("{s:o}", "d", deep);
    for (int i = 0; i < 300; i++) {
        json_t *next = json_array();
        json_array_append_new(deep, next);
        deep = next;
    }
    assert_int_equal(nhid_audit_submit_wait(a, top), NHID_ERR_TOO_LARGE);
    /* Malformed UTF-8 (only *_nocheck can make it) fails the record like json_dumpb would. */
    json_t *bad = json_object();
    json_object_set_new(bad, "s", json_stringn_nocheck("\xff\xfe", 2));
    assert_int_equal(nhid_audit_submit_wait(a, bad), NHID_ERR_INVALID);
    assert_int_equal(nhid_audit_submit_wait(a, json_object()), NHID_OK);
    nhid_audit_free(a);
    struct nhid_audit_verify_result res;
    assert_int_equal(verify(f->path, &res, NULL), NHID_OK);
    assert_int_equal(res.records, NHID_ARRAY_LEN(docs) + 1);
}

/* ---- continuation ----------------------------------------------------------------- */

static void test_continue_after_reopen(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char err[256];
    write_records(f->path, KEY1, 10); /* a previous server run */
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "", err, sizeof(err)),
                     NHID_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(nhid_audit_submit_wait(a, make_record(i)), NHID_OK);
    assert_int_equal(nhid_audit_disable(a, "file"), NHID_OK);
    assert_int_equal(nhid_audit_disable(a, "file"), NHID_ERR_NOT_FOUND);
    assert_int_equal(nhid_audit_submit_wait(a, make_record(0)), NHID_OK); /* no device */
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "", err, sizeof(err)),
                     NHID_OK);
    for (int i = 0; i < 5; i++)
        assert_int_equal(nhid_audit_submit_wait(a, make_record(i)), NHID_OK);
    nhid_audit_free(a);
    struct nhid_audit_verify_result res;
    assert_int_equal(verify(f->path, &res, NULL), NHID_OK);
    assert_int_equal(res.records, 20);
}

static void test_continue_after_crash_partial_line(void **state)
{
    struct fixture *f = *state;
    write_records(f->path, KEY1, 10);
    size_t len;
    char *buf = slurp(f->path, &len);
    spit(f->path, buf, len - 50); /* the last write was cut short */
    free(buf);
    write_records(f->path, KEY1, 3); /* enable cuts the partial line and continues from 9 */
    struct nhid_audit_verify_result res;
    assert_int_equal(verify(f->path, &res, NULL), NHID_OK);
    assert_int_equal(res.records, 12);
}

static void test_enable_refuses_tampered_tail(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char err[256];
    write_records(f->path, KEY1, 3);
    struct lines l = read_lines(f->path);
    char *p = strstr(l.v[2], "secret/data");
    p[0] = 'X';
    write_lines(f->path, &l);
    free_lines(&l);
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "", err, sizeof(err)),
                     NHID_ERR_IO);
    assert_non_null(strstr(err, "chain check"));
    spit(f->path, "not an audit log\n", 17);
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "", err, sizeof(err)),
                     NHID_ERR_IO);
    assert_non_null(strstr(err, "not an audit record"));
    assert_int_equal(nhid_audit_device_count(a), 0);
    nhid_audit_free(a);
}

/* ---- devices, listing ------------------------------------------------------------ */

static void test_enable_list_disable(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char err[256], p2[160];
    snprintf(p2, sizeof(p2), "%s/b.log", f->dir);
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "main log", err, sizeof(err)),
                     NHID_OK);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(nhid_audit_enable_file(a, "file", p2, KEY1, "", err, sizeof(err)),
                     NHID_ERR_EXISTS);
    assert_int_equal(nhid_audit_enable_file(a, "other", f->path, KEY1, "", err, sizeof(err)),
                     NHID_ERR_EXISTS); /* same file: two chains would fork it */
    assert_non_null(strstr(err, "already written"));
    assert_int_equal(nhid_audit_enable_file(a, "bad name!", p2, KEY1, "", err, sizeof(err)),
                     NHID_ERR_INVALID);
    assert_int_equal(
        nhid_audit_enable_file(a, "x", "/nonexistent-dir/a.log", KEY1, "", err, sizeof(err)),
        NHID_ERR_IO);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(nhid_audit_enable_file(a, "x", "", KEY1, "", err, sizeof(err)),
                     NHID_ERR_INVALID);
    assert_int_equal(nhid_audit_enable_file(a, "second/", p2, KEY2, NULL, err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(nhid_audit_device_count(a), 2);

    json_t *l = nhid_audit_list(a);
    json_t *want =
        json_pack("{s:{s:s, s:s, s:{s:s}, s:b, s:s}, s:{s:s, s:s, s:{s:s}, s:b, s:s}}", "file/",
                  "type", "file", "description", "main log", "options", "file_path", f->path,
                  "local", 0, "path", "file/", "second/", "type", "file", "description", "",
                  "options", "file_path", p2, "local", 0, "path", "second/");
    assert_true(json_equal(l, want));
    json_decref(l);
    json_decref(want);
    assert_int_equal(nhid_audit_disable(a, "second/"), NHID_OK);
    assert_int_equal(nhid_audit_device_count(a), 1);
    nhid_audit_free(a);
}

/* ---- fail closed ----------------------------------------------------------------- */

struct done_counter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok, io, other;
};

static void count_done(int rc, void *arg)
{
    struct done_counter *c = arg;
    pthread_mutex_lock(&c->mu);
    c->done++;
    if (rc == NHID_OK)
        c->ok++;
    else if (rc == NHID_ERR_IO)
        c->io++;
    else
        c->other++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void wait_done(struct done_counter *c, int n)
{
    pthread_mutex_lock(&c->mu);
    while (c->done < n)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static void test_fail_closed_dev_full(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char err[256];
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "good", f->path, KEY1, "", err, sizeof(err)),
                     NHID_OK);
    assert_int_equal(nhid_audit_submit_wait(a, make_record(0)), NHID_OK);
    assert_true(nhid_audit_healthy(a));
    assert_int_equal(nhid_audit_enable_file(a, "full", "/dev/full", KEY1, "", err, sizeof(err)),
                     NHID_OK);

    struct done_counter c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};
    for (int i = 0; i < 10; i++)
        assert_int_equal(nhid_audit_submit(a, make_record(i), count_done, &c), NHID_OK);
    wait_done(&c, 10);
    assert_int_equal(c.io, 10);
    assert_int_equal(c.ok, 0);
    assert_false(nhid_audit_healthy(a));
    assert_int_equal(nhid_audit_failure_count(a), 10);
    assert_int_equal(nhid_audit_submit_wait(a, make_record(0)), NHID_ERR_IO);
    assert_false(nhid_audit_healthy(a));

    /* Removing the failed device: the next batch succeeds on all devices. */
    assert_int_equal(nhid_audit_disable(a, "full"), NHID_OK);
    assert_int_equal(nhid_audit_submit_wait(a, make_record(0)), NHID_OK);
    assert_true(nhid_audit_healthy(a));
    assert_int_equal(nhid_audit_record_count(a), 2);
    nhid_audit_free(a);
    /* The good device's chain holds; failed records may appear in it (over-recording). */
    struct nhid_audit_verify_result res;
    assert_int_equal(verify(f->path, &res, NULL), NHID_OK);
    assert_int_equal(res.records, 13);
}

static void test_no_devices_completes_ok(void **state)
{
    struct nhid_audit *a = NULL;
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_device_count(a), 0);
    assert_int_equal(nhid_audit_submit_wait(a, make_record(0)), NHID_OK);
    struct done_counter c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};
    assert_int_equal(nhid_audit_submit(a, make_record(1), count_done, &c), NHID_OK);
    assert_int_equal(nhid_audit_submit(a, make_record(2), NULL, NULL), NHID_OK);
    wait_done(&c, 1);
    assert_int_equal(c.ok, 1);
    assert_true(nhid_audit_healthy(a));
    json_t *l = nhid_audit_list(a);
    assert_int_equal(json_object_size(l), 0);
    json_decref(l);
    nhid_audit_free(a);
    nhid_audit_free(NULL);
}

/* ---- concurrency ------------------------------------------------------------------ */

struct submitter {
    struct nhid_audit *a;
    struct done_counter *c;
    int n;
};

static void *submit_thread(void *arg)
{
    struct submitter *s = arg;
    for (int i = 0; i < s->n; i++)
        if (nhid_audit_submit(s->a, make_record(i), count_done, s->c) != NHID_OK)
            abort();
    return NULL;
}

static void test_concurrent_submit_and_toggle(void **state)
{
    struct fixture *f = *state;
    struct nhid_audit *a = NULL;
    char err[256], p2[160];
    snprintf(p2, sizeof(p2), "%s/toggle.log", f->dir);
    assert_int_equal(nhid_audit_new(&a), NHID_OK);
    assert_int_equal(nhid_audit_enable_file(a, "file", f->path, KEY1, "", err, sizeof(err)),
                     NHID_OK);
    struct done_counter c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};
    enum { THREADS = 4, PER = 3000 };
    pthread_t th[THREADS];
    struct submitter s = {a, &c, PER};
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, submit_thread, &s), 0);
    /* Enable and disable a second device while records flow. */
    for (int i = 0; i < 40; i++) {
        assert_int_equal(nhid_audit_enable_file(a, "toggle", p2, KEY2, "", err, sizeof(err)),
                         NHID_OK);
        json_decref(nhid_audit_list(a));
        usleep(200);
        assert_int_equal(nhid_audit_disable(a, "toggle"), NHID_OK);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    wait_done(&c, THREADS * PER);
    assert_int_equal(c.ok, THREADS * PER);
    nhid_audit_free(a);
    struct nhid_audit_verify_result res;
    assert_int_equal(verify(f->path, &res, NULL), NHID_OK);
    assert_int_equal(res.records, THREADS * PER);
    assert_int_equal(verify(p2, &res, NULL), NHID_OK);
}

/* ---- nhid audit verify ---------------------------------------------------------- */

static int run_cli(char *out, size_t outlen, int argc, char **argv)
{
    char tmpl[] = "/tmp/nhid-audit-cli-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    int rc = nhid_audit_verify_main(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(tmpl);
    return rc;
}

static void test_cli_verify(void **state)
{
    struct fixture *f = *state;
    char out[4096], bad[160];
    write_records(f->path, KEY1, 20);
    snprintf(bad, sizeof(bad), "%s/bad.log", f->dir);
    struct lines l = read_lines(f->path);
    strstr(l.v[6], "secret/data")[0] = 'Z';
    write_lines(bad, &l);
    free_lines(&l);

    char *ok_argv[] = {"verify", f->path};
    assert_int_equal(run_cli(out, sizeof(out), 2, ok_argv), 0);
    assert_non_null(strstr(out, ": OK, 20 records"));
    char *bad_argv[] = {"verify", f->path, bad};
    assert_int_equal(run_cli(out, sizeof(out), 3, bad_argv), 1);
    assert_non_null(strstr(out, "bad.log: TAMPERED at line 7 (seq 7): "));
    char *json_argv[] = {"verify", "-format=json", f->path, bad};
    assert_int_equal(run_cli(out, sizeof(out), 4, json_argv), 1);
    json_t *o = json_loads(out, 0, NULL);
    assert_non_null(o);
    assert_true(json_is_false(json_object_get(o, "ok")));
    json_t *b = json_array_get(json_object_get(o, "files"), 1);
    assert_string_equal(json_string_value(json_object_get(b, "kind")), "edited");
    assert_int_equal(json_integer_value(json_object_get(b, "line")), 7);
    json_decref(o);
    char *missing_argv[] = {"verify", "/nonexistent/x.log"};
    assert_int_equal(run_cli(out, sizeof(out), 2, missing_argv), 2);
    char *none_argv[] = {"verify"};
    assert_int_equal(run_cli(out, sizeof(out), 1, none_argv), 2);
    char *flag_argv[] = {"verify", "-bogus", f->path};
    assert_int_equal(run_cli(out, sizeof(out), 3, flag_argv), 2);
    char *help_argv[] = {"verify", "-h"};
    assert_int_equal(run_cli(out, sizeof(out), 2, help_argv), 0);
    assert_non_null(strstr(out, "Usage: nhid audit verify"));
}

/* The auditor's Python script in docs/audit.md verifies a real file. */
static void test_doc_python_script(void **state)
{
    struct fixture *f = *state;
    if (system("python3 -c 'import hashlib' >/dev/null 2>&1") != 0)
        skip();
    const char *src = getenv("NHID_SOURCE_DIR");
    char doc[512], script[160], cmd[1024], out[256];
    snprintf(doc, sizeof(doc), "%s/docs/audit.md", src != NULL ? src : ".");
    size_t len;
    if (access(doc, R_OK) != 0)
        skip();
    char *md = slurp(doc, &len);
    const char *begin = strstr(md, "```python\n");
    assert_non_null(begin);
    begin += 10;
    const char *end = strstr(begin, "```");
    assert_non_null(end);
    snprintf(script, sizeof(script), "%s/verify.py", f->dir);
    spit(script, begin, (size_t)(end - begin));
    free(md);

    write_records(f->path, KEY1, 30);
    snprintf(cmd, sizeof(cmd), "python3 %s %s 2>&1", script, f->path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(out, "OK, 30 records"));

    struct lines l = read_lines(f->path);
    char *t = l.v[3];
    l.v[3] = l.v[4];
    l.v[4] = t;
    write_lines(f->path, &l);
    free_lines(&l);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_not_equal(pclose(p), 0);
    assert_non_null(strstr(out, "line 4"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_ok_and_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_edit_seq_digits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_delete_first_and_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_delete_last_records_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_forged_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_forged_fork, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_truncated_last_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detect_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_edge_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hmac_secrets_never_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hmac_per_device_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_and_empty_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serializer_matches_jansson, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builder_matches_json_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continue_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continue_after_crash_partial_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_refuses_tampered_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable_list_disable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_closed_dev_full, setup, teardown),
        cmocka_unit_test(test_no_devices_completes_ok),
        cmocka_unit_test_setup_teardown(test_concurrent_submit_and_toggle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_python_script, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
