/* libFuzzer target: Cedar policy parser (and, on success, template
 * linking and the scope index). Must never crash or leak. */
#include <stddef.h>
#include <stdint.h>

#include "cedar/cedar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct cedar_policy_set *ps = NULL;
    if (cedar_policy_set_parse((const char *)data, size, "fuzz", &ps, err, sizeof(err)) == NHID_OK) {
        for (size_t i = 0; i < ps->ntemplates && i < 4; i++) {
            struct cedar_uid u = {{"T", 1}, {"x", 1}, 0};
            u.hash = cedar_uid_hash("T", 1, "x", 1);
            char id[32];
            snprintf(id, sizeof(id), "link%zu", i);
            if (cedar_policy_set_link(ps, ps->templates[i]->id.ptr, id,
                                        ps->templates[i]->principal.is_slot ? &u : NULL,
                                        ps->templates[i]->resource.is_slot ? &u : NULL, err,
                                        sizeof(err)) != NHID_OK)
                continue; /* rejected links are fine */
        }
    }
    cedar_policy_set_free(ps);
    return 0;
}
