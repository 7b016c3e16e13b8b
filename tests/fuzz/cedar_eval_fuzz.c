/* libFuzzer target: Cedar evaluation. The input is split at the first
 * 0x00 byte into policy text and entity JSON (the rest, optionally
 * followed by a second 0x00 and context JSON); every parsed policy set is
 * evaluated for a fixed request. Must never crash, hang or leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cedar/cedar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    const char *s = (const char *)data;
    const char *z1 = memchr(s, 0, size);
    size_t plen = z1 ? (size_t)(z1 - s) : size;
    const char *ej = z1 ? z1 + 1 : "[]";
    size_t elen = z1 ? size - plen - 1 : 2;
    const char *z2 = z1 ? memchr(ej, 0, elen) : NULL;
    const char *cj = NULL;
    size_t clen = 0;
    if (z2 != NULL) {
        cj = z2 + 1;
        clen = elen - (size_t)(z2 - ej) - 1;
        elen = (size_t)(z2 - ej);
    }
    struct cedar_policy_set *ps = NULL;
    struct cedar_entities *es = NULL;
    json_t *ctx = NULL;
    struct cedar_arena a;
    struct cedar_decision d;
    cedar_arena_init(&a);
    cedar_decision_init(&d);
    if (cedar_policy_set_parse(s, plen, "fuzz", &ps, err, sizeof(err)) != NHID_OK)
        goto out;
    if (cedar_entities_from_json_text(ej, elen, &es, err, sizeof(err)) != NHID_OK &&
        cedar_entities_new(&es) != NHID_OK)
        goto out;
    if (cj != NULL)
        ctx = json_loadb(cj, clen, 0, NULL);
    struct cedar_uid p, ac, r;
    struct cedar_request req;
    if (cedar_uid_make(&a, "User", "alice", &p) || cedar_uid_make(&a, "Action", "read", &ac) ||
        cedar_uid_make(&a, "Doc", "d", &r))
        goto out;
    if (cedar_request_make(&a, &p, &ac, &r, json_is_object(ctx) ? ctx : NULL, &req, err,
                           sizeof(err)) != NHID_OK)
        goto out;
    if (cedar_authorize(ps, es, &req, &d) != NHID_OK)
        goto out;
out:
    json_decref(ctx);
    cedar_decision_free(&d);
    cedar_arena_free(&a);
    cedar_entities_free(es);
    cedar_policy_set_free(ps);
    return 0;
}
