/*
 * cidr — CIDR blocks and membership (core/cidr.h).
 */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <string.h>

int nhid_cidr_parse(const char *s, struct nhid_cidr *out)
{
    char buf[64];
    struct nhid_cidr c = {0};
    if (s == NULL || strlen(s) >= sizeof(buf))
        return NHID_ERR_INVALID;
    snprintf(buf, sizeof(buf), "%s", s);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, c.addr) == 1) {
        c.family = AF_INET;
        c.bits = 32;
    } else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
        c.family = AF_INET6;
        c.bits = 128;
    } else {
        return NHID_ERR_INVALID;
    }
    if (slash) {
        char *end;
        const char *b = slash + 1;
        if (*b < '0' || *b > '9')
            return NHID_ERR_INVALID;
        unsigned long bits = strtoul(b, &end, 10);
        if (*end || bits > (c.family == AF_INET ? 32u : 128u))
            return NHID_ERR_INVALID;
        c.bits = (unsigned)bits;
    }
    *out = c;
    return NHID_OK;
}

bool nhid_cidr_contains(const struct nhid_cidr *c, const char *addr)
{
    unsigned char a[16];
    int fam = c->family;
    if (addr == NULL || inet_pton(fam, addr, a) != 1) {
        /* An IPv4 client seen on an IPv6 socket arrives as ::ffff:a.b.c.d */
        if (fam == AF_INET && addr && nhid_has_prefix(addr, "::ffff:") &&
            inet_pton(AF_INET, addr + 7, a) == 1)
            ;
        else
            return false;
    }
    unsigned full = c->bits / 8, rem = c->bits % 8;
    if (memcmp(a, c->addr, full) != 0)
        return false;
    if (rem) {
        unsigned char mask = (unsigned char)(0xff << (8 - rem));
        if ((a[full] & mask) != (c->addr[full] & mask))
            return false;
    }
    return true;
}

bool nhid_cidr_list_allows(const json_t *cidrs, const char *addr)
{
    if (json_array_size(cidrs) == 0)
        return true;
    size_t i;
    json_t *v;
    json_array_foreach(cidrs, i, v)
    {
        struct nhid_cidr c;
        if (nhid_cidr_parse(json_string_value(v), &c) == NHID_OK && nhid_cidr_contains(&c, addr))
            return true;
    }
    return false;
}
