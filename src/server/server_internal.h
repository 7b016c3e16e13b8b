/* server internals: dev-mode TLS material. */
#ifndef NHID_SERVER_INTERNAL_H
#define NHID_SERVER_INTERNAL_H

#include <stddef.h>

#include "core/core.h"

/*
 * Write ca.pem, server.pem (with the CA appended) and server-key.pem
 * (0600) into dir, unless all three exist already.
 */
NHID_MUST_CHECK int nhid_dev_tls_generate(const char *dir, char *ca_path, char *cert_path,
                                          char *key_path, size_t pathlen);

#endif
