/*
 * libFuzzer target for the configuration parser (src/config).
 *
 * Feeds arbitrary bytes to nhid_config_parse() and, NUL-terminated, to
 * nhid_config_parse_size(). Beyond "no crash, no leak, no UB" it checks
 * the contract: an error always leaves *out untouched and writes a
 * "FILE:LINE:COL: " message; a success yields an object that jansson can
 * serialise (so every string in it is valid UTF-8).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    json_t *sentinel = (json_t *)&err;
    json_t *root = sentinel;
    err[0] = '\0';

    int rc = nhid_config_parse((const char *)data, size, "fuzz.hcl", &root, err, sizeof(err));
    if (rc == NHID_OK) {
        if (!json_is_object(root))
            abort();
        char *s = json_dumps(root, JSON_COMPACT);
        if (s == NULL)
            abort();
        free(s);
        json_decref(root);
    } else {
        if (root != sentinel || (rc != NHID_ERR_INVALID && rc != NHID_ERR_NOMEM))
            abort();
        if (strncmp(err, "fuzz.hcl:", 9) != 0)
            abort();
    }

    /* The size helper takes a C string: cut at the first NUL, cap the length. */
    char buf[64];
    size_t n = size < sizeof(buf) - 1 ? size : sizeof(buf) - 1;
    memcpy(buf, data, n);
    buf[n] = '\0';
    uint64_t v = 7;
    if (nhid_config_parse_size(buf, &v, err, sizeof(err)) != NHID_OK && v != 7)
        abort();
    return 0;
}
