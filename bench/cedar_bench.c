/*
 * cedar_bench — Cedar engine figures on a machine-identity workload:
 * Machine principals with group and owner parents, Action::"read" etc.,
 * Path resources with a `path` attribute, context with ip and
 * auth_method. For 10, 100, 1,000 and 10,000 policies prints decisions/s
 * and median/p99 latency (in-process, one thread), and the time to parse
 * 10,000 policies.
 *
 *   cedar_bench [-dump DIR]   also write DIR/<n>/{policies.cedar,
 *                             entities.json,requests.json} and
 *                             DIR/nhid.json for bench/cedar_wasm_bench.js
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cedar/cedar.h"
#include "cedar/internal.h"

#define NMACHINES 2000
#define NGROUPS 50
#define NOWNERS 200
#define NDIRS 100
#define NPATHS 2000
#define NREQ 2000

static const char *actions[] = {"read", "write", "list", "delete"};

static uint64_t rs = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static void gen_policies(struct cedar_buf *b, int n)
{
    for (int i = 0; i < n; i++) {
        int kind = i % 10;
        int m = (int)(rnd() % NMACHINES), g = (int)(rnd() % NGROUPS), d = (int)(rnd() % NDIRS);
        int o = (int)(rnd() % NOWNERS);
        const char *a = actions[rnd() % 4];
        cedar_buf_printf(b, "@id(\"p%d\")\n", i);
        switch (kind) {
        case 0: case 1: case 2: case 3:
            cedar_buf_printf(b,
                             "permit(principal == Machine::\"m%d\", action == Action::\"%s\", "
                             "resource in Path::\"dir%d\")\n  when { context.auth_method == \"mtls\" "
                             "&& context.ip.isInRange(ip(\"10.0.0.0/8\")) };\n",
                             m, a, d);
            break;
        case 4: case 5: case 6:
            cedar_buf_printf(b,
                             "permit(principal in Group::\"g%d\", action in [Action::\"read\", "
                             "Action::\"list\"], resource is Path)\n  when { resource.path like "
                             "\"/srv/dir%d/*\" };\n",
                             g, d);
            break;
        case 7:
            cedar_buf_printf(b,
                             "permit(principal in Owner::\"o%d\", action, resource in "
                             "Path::\"dir%d\")\n  unless { context.auth_method == \"token\" };\n",
                             o, d);
            break;
        case 8:
            cedar_buf_printf(b,
                             "forbid(principal == Machine::\"m%d\", action == Action::\"delete\", "
                             "resource)\n  unless { principal in Group::\"admins\" };\n",
                             m);
            break;
        default:
            cedar_buf_printf(b,
                             "forbid(principal is Machine, action == Action::\"write\", resource == "
                             "Path::\"p%d\")\n  when { !context.ip.isInRange(ip(\"10.0.0.0/8\")) };\n",
                             (int)(rnd() % NPATHS));
        }
    }
}

static void gen_entities(struct cedar_buf *b)
{
    cedar_buf_puts(b, "[\n");
    for (int i = 0; i < NMACHINES; i++)
        cedar_buf_printf(b,
                         "{\"uid\":{\"type\":\"Machine\",\"id\":\"m%d\"},\"attrs\":{\"env\":\"%s\"},"
                         "\"parents\":[{\"type\":\"Group\",\"id\":\"g%d\"},{\"type\":\"Owner\","
                         "\"id\":\"o%d\"}]},\n",
                         i, i % 3 ? "prod" : "dev", i % NGROUPS, i % NOWNERS);
    for (int i = 0; i < NGROUPS; i++)
        cedar_buf_printf(b, "{\"uid\":{\"type\":\"Group\",\"id\":\"g%d\"},\"attrs\":{},\"parents\":[]},\n",
                         i);
    for (int i = 0; i < NDIRS; i++)
        cedar_buf_printf(b, "{\"uid\":{\"type\":\"Path\",\"id\":\"dir%d\"},\"attrs\":{\"path\":"
                            "\"/srv/dir%d\"},\"parents\":[]},\n",
                         i, i);
    for (int i = 0; i < NPATHS; i++)
        cedar_buf_printf(b,
                         "{\"uid\":{\"type\":\"Path\",\"id\":\"p%d\"},\"attrs\":{\"path\":"
                         "\"/srv/dir%d/f%d\"},\"parents\":[{\"type\":\"Path\",\"id\":\"dir%d\"}]},\n",
                         i, i % NDIRS, i, i % NDIRS);
    for (int i = 0; i < 4; i++)
        cedar_buf_printf(b, "{\"uid\":{\"type\":\"Action\",\"id\":\"%s\"},\"attrs\":{},\"parents\":[]}%s\n",
                         actions[i], i == 3 ? "" : ",");
    cedar_buf_puts(b, "]\n");
}

static json_t *gen_requests(void)
{
    json_t *arr = json_array();
    for (int i = 0; i < NREQ; i++) {
        char m[32], p[32], ipb[32];
        snprintf(m, sizeof(m), "m%d", (int)(rnd() % NMACHINES));
        snprintf(p, sizeof(p), "p%d", (int)(rnd() % NPATHS));
        snprintf(ipb, sizeof(ipb), "%s.%d.%d.%d", rnd() % 4 ? "10" : "192", (int)(rnd() % 256),
                 (int)(rnd() % 256), (int)(rnd() % 256));
        json_array_append_new(
            arr, json_pack("{s:{s:s,s:s},s:{s:s,s:s},s:{s:s,s:s},s:{s:{s:{s:s,s:s}},s:s}}",
                           "principal", "type", "Machine", "id", m, "action", "type", "Action", "id",
                           actions[rnd() % 4], "resource", "type", "Path", "id", p, "context", "ip",
                           "__extn", "fn", "ip", "arg", ipb, "auth_method",
                           rnd() % 3 ? "mtls" : "token"));
    }
    return arr;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fwrite(data, 1, len, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *dump = NULL;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-dump") == 0 && i + 1 < argc)
            dump = argv[++i];
    char err[512];
    struct cedar_buf eb = {0};
    gen_entities(&eb);
    struct cedar_entities *es = NULL;
    if (cedar_entities_from_json_text(eb.p, eb.len, &es, err, sizeof(err)) < 0) {
        fprintf(stderr, "entities: %s\n", err);
        return 1;
    }
    json_t *reqs = gen_requests();
    json_t *summary = json_object();
    static const int sizes[] = {10, 100, 1000, 10000};
    printf("nhid Cedar engine, in-process, single thread; %d entities, %d distinct requests\n",
           NMACHINES + NGROUPS + NDIRS + NPATHS + 4, NREQ);
    printf("%8s %12s %12s %12s %10s %s\n", "policies", "decisions/s", "median(ns)", "p99(ns)",
           "allow%", "parse");
    for (size_t si = 0; si < NHID_ARRAY_LEN(sizes); si++) {
        int n = sizes[si];
        struct cedar_buf pb = {0};
        gen_policies(&pb, n);
        struct cedar_policy_set *ps = NULL;
        int64_t t0 = nhid_mono_ns();
        if (cedar_policy_set_parse(pb.p, pb.len, "bench.cedar", &ps, err, sizeof(err)) < 0) {
            fprintf(stderr, "parse: %s\n", err);
            return 1;
        }
        int64_t parse_ns = nhid_mono_ns() - t0;
        struct cedar_arena a;
        cedar_arena_init(&a);
        struct cedar_request *rv = calloc(NREQ, sizeof(*rv));
        for (int i = 0; i < NREQ; i++) {
            json_t *r = json_array_get(reqs, (size_t)i);
            const struct cedar_uid *p, *ac, *res;
            if (cedar_uid_from_json(&a, json_object_get(r, "principal"), &p, err, sizeof(err)) ||
                cedar_uid_from_json(&a, json_object_get(r, "action"), &ac, err, sizeof(err)) ||
                cedar_uid_from_json(&a, json_object_get(r, "resource"), &res, err, sizeof(err)) ||
                cedar_request_make(&a, p, ac, res, json_object_get(r, "context"), &rv[i], err,
                                   sizeof(err))) {
                fprintf(stderr, "request: %s\n", err);
                return 1;
            }
        }
        struct cedar_decision d;
        cedar_decision_init(&d);
        /* warm up, then time individual decisions for ~2 s or 400k calls */
        size_t allow = 0;
        for (int i = 0; i < NREQ; i++)
            if (cedar_authorize(ps, es, &rv[i], &d) == NHID_OK && d.allow)
                allow++;
        size_t cap = 400000, cnt = 0;
        int64_t *lat = malloc(cap * sizeof(*lat));
        int64_t start = nhid_mono_ns(), total = 0;
        while (cnt < cap && nhid_mono_ns() - start < 2000000000LL) {
            for (int i = 0; i < NREQ && cnt < cap; i++) {
                int64_t s = nhid_mono_ns();
                if (cedar_authorize(ps, es, &rv[i], &d) != NHID_OK)
                    return 1;
                int64_t e = nhid_mono_ns() - s;
                lat[cnt++] = e;
                total += e;
            }
        }
        qsort(lat, cnt, sizeof(*lat), cmp_i64);
        double dps = (double)cnt / ((double)total / 1e9);
        int64_t med = lat[cnt / 2], p99 = lat[cnt * 99 / 100];
        printf("%8d %12.0f %12" PRId64 " %12" PRId64 " %9.1f%% %.2f ms\n", n, dps, med, p99,
               100.0 * (double)allow / NREQ, (double)parse_ns / 1e6);
        char key[16];
        snprintf(key, sizeof(key), "%d", n);
        json_object_set_new(summary, key,
                            json_pack("{s:f,s:I,s:I,s:f,s:I}", "decisions_per_s", dps, "median_ns",
                                      (json_int_t)med, "p99_ns", (json_int_t)p99, "parse_ms",
                                      (double)parse_ns / 1e6, "allow", (json_int_t)allow));
        if (dump != NULL) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%d", dump, n);
            mkdir(dump, 0755);
            mkdir(path, 0755);
            snprintf(path, sizeof(path), "%s/%d/policies.cedar", dump, n);
            write_file(path, pb.p, pb.len);
            snprintf(path, sizeof(path), "%s/%d/entities.json", dump, n);
            write_file(path, eb.p, eb.len);
            snprintf(path, sizeof(path), "%s/%d/requests.json", dump, n);
            json_dump_file(reqs, path, JSON_COMPACT);
        }
        free(lat);
        free(rv);
        cedar_decision_free(&d);
        cedar_arena_free(&a);
        cedar_policy_set_free(ps);
        cedar_buf_free(&pb);
    }
    if (dump != NULL) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/nhid.json", dump);
        json_dump_file(summary, path, JSON_INDENT(2));
    }
    json_decref(summary);
    json_decref(reqs);
    cedar_entities_free(es);
    cedar_buf_free(&eb);
    return 0;
}
