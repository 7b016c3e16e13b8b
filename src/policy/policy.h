/*
 * policy — Cedar policies deciding every API request (engine).
 *
 * Policies are stored with PUT/GET/LIST/DELETE /v1/sys/policies/cedar/:name
 * (validated on write) and an optional schema at
 * /v1/sys/policies/cedar-schema. The loaded set — the built-in baseline
 * followed by every stored policy document — is compiled into one
 * immutable cedar_policy_set and swapped in atomically: a request is
 * decided entirely by the old set or entirely by the new one.
 *
 * The request model (docs/policy.md):
 *   principal  Machine::"<identity>" (parents: its groups and owner, and
 *              Role::"<p>" for each token policy p), or Token::"<accessor>"
 *              for tokens not bound to an identity (parents: Role::"<p>")
 *   action     Action::"<operation>" (the route's action: read, create,
 *              update, delete, list, login, issue, sign, revoke, rotate, ...)
 *   resource   Path::"<api path>" with attributes path and method
 *   context    ip (ipaddr), auth_method, mtls, spiffe_id, time (datetime),
 *              identity_state, own_token, token_policies
 * The root token bypasses policy (bootstrap only).
 */
#ifndef NHID_POLICY_H
#define NHID_POLICY_H

#include "engine/engine.h"

extern const struct nhid_engine nhid_policy_engine;

/* The built-in baseline policy text (Cedar), as loaded before stored policies. */
const char *nhid_policy_baseline(void);

#endif /* NHID_POLICY_H */
