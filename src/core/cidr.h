/*
 * core/cidr.h — CIDR blocks ("10.0.0.0/8", "2001:db8::/32", or a bare
 * address) and membership tests, for the bound-CIDR settings of auth
 * methods and tokens (Vault's secret_id_bound_cidrs, token_bound_cidrs).
 */
#ifndef NHID_CORE_CIDR_H
#define NHID_CORE_CIDR_H

#include <jansson.h>
#include <stdbool.h>

#include "core/core.h"

/* A CIDR block. */
struct nhid_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
};
/* Parse a CIDR, or a bare address (then a /32 or /128); NHID_ERR_INVALID if malformed. */
NHID_MUST_CHECK int nhid_cidr_parse(const char *s, struct nhid_cidr *out);
/* true if the textual address addr is inside c. */
bool nhid_cidr_contains(const struct nhid_cidr *c, const char *addr);
/* true if addr is in any CIDR of the JSON array of strings (an empty array allows all). */
bool nhid_cidr_list_allows(const json_t *cidrs, const char *addr);

#endif /* NHID_CORE_CIDR_H */
