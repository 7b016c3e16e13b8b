/* cedar_schema_fuzz.c — libFuzzer target for both schema syntaxes. The
 * first byte picks the syntax; the rest is the schema text. */
#include <stddef.h>
#include <stdint.h>

#include "cedar/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct cedar_schema *s = NULL;
    char err[256];
    bool json = (data[0] & 1) != 0;
    if (cedar_schema_parse((const char *)data + 1, size - 1, "fuzz", json, &s, err,
                           sizeof(err)) == NHID_OK) {
        /* exercise the lookups on whatever was built */
        for (size_t i = 0; i < s->n_etypes; i++) {
            char buf[256];
            cs_type_format(s->etypes[i].shape, buf, sizeof(buf));
            (void)cs_find_etype(s, s->etypes[i].name);
        }
        cedar_schema_free(s);
    }
    return 0;
}
