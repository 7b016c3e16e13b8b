/*
 * auth/cert — TLS client-certificate authentication (Vault's auth/cert API).
 *
 *   auth/cert/certs/:name   a role: trusted CA certificate(s) (PEM), allowed
 *                           SPIFFE IDs (allowed_uri_sans / allowed_spiffe_ids,
 *                           '*' matches within one path segment), allowed
 *                           common names, token policies and TTLs
 *   auth/cert/login         over mTLS: a token for the identity named by the
 *                           certificate's URI SAN (SPIFFE ID)
 *
 * Beyond login, a request that carries no token but a client certificate
 * trusted by a role is authenticated as that identity (method "cert"), so
 * machines can call the API over mTLS alone.
 *
 * Verification (RFC 5280 §6 path validation by OpenSSL): the chain must
 * lead to the role's CA, every certificate must be within its validity
 * period, and the leaf must be fit for TLS client authentication
 * (X509_PURPOSE_SSL_CLIENT). Storage: auth/cert/role/<name> (encrypted
 * JSON), auth/cert/gen (a change counter that invalidates the cached
 * X509_STOREs).
 */
#ifndef NHID_AUTH_CERT_H
#define NHID_AUTH_CERT_H

#include "engine/engine.h"

extern const struct nhid_engine nhid_cert_engine;

#define NHID_CERT_ROLES_MAX 256
#define NHID_CERT_PATTERNS_MAX 64
#define NHID_CERT_PEM_MAX (256 * 1024)

#endif /* NHID_AUTH_CERT_H */
