/*
 * config_size — byte sizes in configuration values ("1MiB", "10MB").
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"

#define SIZE_UNITS "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"

static const struct {
    const char *name;
    uint64_t mult;
} size_units[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1000ull},
    {"MB", 1000ull * 1000},
    {"GB", 1000ull * 1000 * 1000},
    {"TB", 1000ull * 1000 * 1000 * 1000},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
};

/* Printable, bounded copy of untrusted text for an error message. */
static void shown(const char *s, char out[72])
{
    size_t o = 0, i = 0;
    for (; s[i] != '\0' && o < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (s[i] != '\0') {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

NHID_PRINTF(3, 4)
static int size_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return NHID_ERR_INVALID;
}

int nhid_config_parse_size(const char *s, uint64_t *out, char *errbuf, size_t errlen)
{
    char v[72], u[72];
    uint64_t n = 0;
    size_t i = 0;
    if (s == NULL || out == NULL)
        return size_err(errbuf, errlen, "size: no value given");
    shown(s, v);
    if (s[0] < '0' || s[0] > '9')
        return size_err(errbuf, errlen,
                        "size \"%s\": expected a non-negative whole number with an optional "
                        "unit (%s), e.g. \"1MiB\"",
                        v, SIZE_UNITS);
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return size_err(errbuf, errlen, "size \"%s\": number too large", v);
        n = n * 10 + d;
    }
    if (s[i] == '.' || s[i] == ',')
        return size_err(errbuf, errlen,
                        "size \"%s\": fractions are not supported (use a smaller unit, e.g. "
                        "\"1536KiB\" for 1.5MiB)",
                        v);
    if (s[i] == ' ' && s[i + 1] != '\0')
        i++;
    const char *unit = s + i;
    for (size_t k = 0; k < NHID_ARRAY_LEN(size_units); k++) {
        if (strcasecmp(unit, size_units[k].name) != 0)
            continue;
        if (size_units[k].mult > 1 && n > UINT64_MAX / size_units[k].mult)
            return size_err(errbuf, errlen, "size \"%s\": too large", v);
        *out = n * size_units[k].mult;
        return NHID_OK;
    }
    shown(unit, u);
    return size_err(errbuf, errlen, "size \"%s\": unknown unit \"%s\" (use %s)", v, u, SIZE_UNITS);
}
