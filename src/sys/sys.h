/*
 * sys — Vault-compatible system endpoints: health, seal-status, init,
 * unseal, seal, rotate, key-status, audit devices, audit-hash, metrics.
 */
#ifndef NHID_SYS_H
#define NHID_SYS_H

#include "engine/engine.h"

extern const struct nhid_engine nhid_sys_engine;

/*
 * Initialise the barrier with n shares of threshold t and create the root
 * token (the barrier is left sealed). *shares: n buffers of
 * NHID_SHARE_LEN bytes (free with nhid_shamir_free_shares).
 */
NHID_MUST_CHECK int nhid_sys_initialize(struct nhid_core *core, unsigned n, unsigned t,
                                        uint8_t ***shares, char root_token[64], char *errbuf,
                                        size_t errlen);

#endif /* NHID_SYS_H */
