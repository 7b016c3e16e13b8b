/*
 * pki — nhid's certificate authority on Vault's PKI paths (mount "pki/"):
 * issuers (root, intermediate, imported), roles, X509-SVID issuance
 * (sign/issue/renew), revocation with an incrementally maintained CRL
 * and an RFC 6960 OCSP responder, and the SPIFFE trust bundle.
 *
 * Storage (barrier-encrypted JSON unless said otherwise):
 *   pki/issuer/<id>                 issuer: certificate, chain, private key (PEM)
 *   pki/config/issuers              {"default": "<id>"}
 *   pki/intermediate/<id>           pending intermediate: key and CSR
 *   pki/role/<name>                 role
 *   pki/cert/<serial hex>           issued certificate (or compact record with no_store)
 *   (listing by identity or expiry uses the credential registry's indexes,
 *    identity/cred/<entity>/x509/<serial> and identity/cred-expiry/...)
 *   pki/revoked/<serial hex>        "<issuer> <revoked_at> <expires> <reason>" — public
 *                                   information (it is in the CRL), stored in plaintext so
 *                                   a million entries load at unseal without decryption
 *   pki/revoked-by-expiry/<unix,20>/<serial hex>  index for dropping expired entries
 *   pki/crl/<issuer>                {"number": N} last CRL number (plaintext)
 *   pki/bundle                      {"sequence": N} SPIFFE bundle sequence
 *
 * Keys: CA private keys are generated with nhid_signer_generate, stored
 * only through the barrier and used only through struct nhid_signer.
 */
#ifndef NHID_PKI_H
#define NHID_PKI_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

extern const struct nhid_engine nhid_pki_engine;

/*
 * Parse a CSR (PEM, or DER when the input does not start with "-----")
 * of at most 16 KiB and verify its self-signature (RFC 2986 §3). On
 * success *out is an X509_REQ * (caller frees with X509_REQ_free). On
 * error a message naming the problem goes to err.
 */
NHID_MUST_CHECK int nhid_pki_csr_parse(const uint8_t *in, size_t len, void **out, char *err,
                                       size_t errlen);

/*
 * Check a public key against a key policy: key_type "any", "ec", "rsa"
 * or "ed25519"; key_bits the RSA minimum (>= 2048) or the EC curve size
 * (256 or 384; 0 = either). Weak keys (RSA < 2048, curves other than
 * P-256/P-384, Ed25519) are refused with a message naming the allowed
 * values.
 */
NHID_MUST_CHECK int nhid_pki_key_check(void *evp_pkey, const char *key_type, int64_t key_bits,
                                       char *err, size_t errlen);

/*
 * Parse a DER OCSP request (RFC 6960 §4.1.1) of at most 16 KiB with at
 * most 16 CertIDs. *n_certs gets the number of certificates asked about
 * and *has_nonce whether it carries a nonce (RFC 8954). For the fuzzer
 * and tests; the responder uses the same code.
 */
NHID_MUST_CHECK int nhid_pki_ocsp_request_check(const uint8_t *in, size_t len, size_t *n_certs,
                                                int *has_nonce, char *err, size_t errlen);

#endif /* NHID_PKI_H */
