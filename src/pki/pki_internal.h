/*
 * pki_internal.h — shared between the pki/ source files only (never
 * included by another module). See pki.h for the public contract and
 * docs/pki.md for the design.
 */
#ifndef NHID_PKI_INTERNAL_H
#define NHID_PKI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "barrier/barrier.h"
#include "core/core.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "pki/pki.h"
#include "store/store.h"

#define PKI_MOD "pki"
#define PKI_ISSUERS_MAX 16
#define PKI_SERIAL_LEN 16         /* bytes: 0x01, 48-bit time in ms, 72 random bits */
#define PKI_SERIAL_MAX 20         /* RFC 5280 §4.1.2.2: at most 20 octets */
#define PKI_CSR_MAX (16u * 1024u) /* bytes of a PEM CSR */
#define PKI_OCSP_REQ_MAX (16u * 1024u)
#define PKI_OCSP_REQ_CERTS_MAX 16 /* certificates asked about in one OCSP request */
#define PKI_SANS_MAX 64           /* DNS + IP SANs in one certificate */
#define PKI_DEFAULT_TTL 3600      /* DESIGN.md: certificates live 1 h by default */
#define PKI_DEFAULT_MAX_TTL (24 * 3600)
#define PKI_BACKDATE 30 /* notBefore = now - 30 s (clock skew, as Vault) */
#define PKI_CRL_VALIDITY (12 * 3600)
#define PKI_CRL_REFRESH (6 * 3600) /* re-sign when less than this is left */
#define PKI_OCSP_VALIDITY 3600
#define PKI_BUNDLE_REFRESH_HINT 300
#define PKI_CRED_TYPE "x509"

/* Route counts per file (checked by _Static_assert where each table is defined). */
#define PKI_N_ISSUER_ROUTES 16
#define PKI_N_ROLE_ROUTES 4
#define PKI_N_ISSUE_ROUTES 5
#define PKI_N_CRL_ROUTES 7
#define PKI_N_OCSP_ROUTES 2
#define PKI_N_BUNDLE_ROUTES 1
#define PKI_N_ROUTES                                                                               \
    (PKI_N_ISSUER_ROUTES + PKI_N_ROLE_ROUTES + PKI_N_ISSUE_ROUTES + PKI_N_CRL_ROUTES +             \
     PKI_N_OCSP_ROUTES + PKI_N_BUNDLE_ROUTES)

/* RFC 5280 §5.3.1 reason codes we accept. */
enum pki_reason {
    PKI_REASON_UNSPECIFIED = 0,
    PKI_REASON_KEY_COMPROMISE = 1,
    PKI_REASON_CA_COMPROMISE = 2,
    PKI_REASON_AFFILIATION_CHANGED = 3,
    PKI_REASON_SUPERSEDED = 4,
    PKI_REASON_CESSATION = 5,
    PKI_REASON_CERTIFICATE_HOLD = 6,
    PKI_REASON_PRIVILEGE_WITHDRAWN = 9,
};

/* One revoked certificate, in memory. */
struct pki_revoked {
    uint8_t serial[PKI_SERIAL_MAX];
    uint8_t serial_len;
    uint8_t reason;
    int64_t revoked_at;
    int64_t expires;
    uint32_t der_off; /* its encoded CRL entry in the issuer's entry buffer */
    uint32_t der_len;
};

/* The revoked set of one issuer: an array, a hash index and the encoded entries. */
struct pki_revset {
    struct pki_revoked *v;
    size_t n, cap;
    uint32_t *slots; /* open addressing, index+1 into v (0 = empty) */
    size_t nslots;
    uint8_t *der; /* concatenated DER of every entry (CRL revokedCertificates content) */
    size_t der_len, der_cap;
};

struct pki_issuer {
    char id[37];
    char name[129];
    X509 *cert;
    char *cert_pem;
    uint8_t *cert_der;
    size_t cert_der_len;
    json_t *chain_pem; /* array: this cert's chain up to the root (excluding itself) */
    struct nhid_signer *signer;
    enum nhid_key_type key_type;
    uint8_t *name_der; /* DER of the subject Name */
    size_t name_der_len;
    uint8_t ski[64];
    size_t ski_len;
    uint8_t key_sha1[20]; /* SHA-1 of the subject public key BIT STRING (OCSP byKey) */
    uint8_t name_sha1[20], name_sha256[32], key_sha256[32]; /* OCSP CertID matching */
    int64_t not_before, not_after;
    bool retired;
    /* Per-issuer extensions precomputed once (AKI, CRL DP, AIA), and their DER in that order. */
    X509_EXTENSION *ext_aki, *ext_crldp, *ext_aia;
    uint8_t *leaf_ext_der;
    size_t leaf_ext_der_len;
    /* CRL state (guarded by pki_state.rev_lock). */
    struct pki_revset rev;
    uint64_t crl_number;
    bool crl_dirty;
    uint8_t *crl_der;
    size_t crl_der_len;
    int64_t crl_this_update;
};

struct pki_state {
    struct nhid_core *core;
    pthread_rwlock_t lock; /* issuers array and default (admin changes) */
    struct pki_issuer *issuers[PKI_ISSUERS_MAX];
    size_t n_issuers;
    char default_id[37];
    uint64_t bundle_sequence;
    pthread_mutex_t rev_lock; /* revoked sets and CRL caches */
    bool ready;
};

struct pki_state *pki_state(struct nhid_core *core);

/* ---- DER helpers (pki_der.c) ---------------------------------------------- */

struct der {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

void der_init(struct der *d);
void der_free(struct der *d);
void der_raw(struct der *d, const void *p, size_t n);
/* Header (tag + definite length) for content of n bytes. */
void der_hdr(struct der *d, uint8_t tag, size_t n);
void der_tlv(struct der *d, uint8_t tag, const void *p, size_t n);
/* Wrap d's bytes from `start` to the end in a TLV of tag (moves them). */
void der_wrap(struct der *d, size_t start, uint8_t tag);
void der_uint(struct der *d, const uint8_t *be, size_t n); /* INTEGER from unsigned big-endian */
void der_uint64(struct der *d, uint64_t v);
void der_utctime(struct der *d, int64_t t); /* UTCTime or GeneralizedTime per RFC 5280 §4.1.2.5 */
void der_gentime(struct der *d, int64_t t); /* GeneralizedTime (OCSP) */
/* AlgorithmIdentifier of the signature a key type makes (RFC 5758, 8410, 4055). */
const uint8_t *pki_sigalg_der(enum nhid_key_type t, size_t *len);
/*
 * d holds a finished to-be-signed SEQUENCE (TBSCertificate, TBSCertList,
 * ResponseData): sign it with signer (key type t) and append
 * signatureAlgorithm and the signature BIT STRING (RFC 5280 §4.1.1.2-3,
 * §5.1.1.2-3; RFC 6960 §4.2.1). The caller wraps the whole.
 */
NHID_MUST_CHECK int der_append_signature(struct der *d, const struct nhid_signer *signer,
                                         enum nhid_key_type t);
/* The DER encodings of n extensions, concatenated (caller frees *out with free()). */
NHID_MUST_CHECK int pki_ext_der_cat(X509_EXTENSION *const *exts, size_t n, uint8_t **out,
                                    size_t *len);

/* ---- issuers (pki_issuer.c) ---------------------------------------------- */

/* Load every issuer from storage into st (on_unseal). */
NHID_MUST_CHECK int pki_issuers_load(struct pki_state *st, struct nhid_txn *txn);
void pki_issuer_free(struct pki_issuer *is);
/* The issuer by id, name or "default"; caller holds st->lock (read). */
struct pki_issuer *pki_issuer_find(struct pki_state *st, const char *ref);
/* The issuer whose key signed cert (issuer name + signature), or NULL; st->lock held. */
struct pki_issuer *pki_issuer_of(struct pki_state *st, X509 *cert);
int pki_trusted_cas(struct nhid_core *core, void *x509_store);
extern const struct nhid_route pki_issuer_routes[];
extern const size_t pki_n_issuer_routes;

/* ---- roles (pki_role.c) -------------------------------------------------- */

struct pki_role {
    char name[129];
    json_t *allowed_spiffe_ids; /* array of patterns */
    json_t *allowed_dns_names;  /* array of patterns */
    json_t *allowed_ip_sans;    /* array of CIDRs */
    int64_t ttl, max_ttl;
    char key_type[16]; /* "any", "ec", "rsa", "ed25519" */
    int64_t key_bits;  /* minimum (RSA) or exact curve size (EC); 0 = default */
    bool no_store;
    bool allow_other_identities;
    char issuer_ref[64];
};

NHID_MUST_CHECK int pki_role_load(struct nhid_core *core, struct nhid_txn *txn, const char *name,
                                  struct pki_role *out);
void pki_role_clear(struct pki_role *r);
/* glob match of '*' (any run of characters) as Vault's allowed_* patterns. */
bool pki_glob_match(const char *pattern, const char *s);
/* Parse an address or CIDR; family AF_INET/AF_INET6. */
NHID_MUST_CHECK int pki_cidr_parse(const char *s, uint8_t addr[16], int *family, int *prefix);
NHID_MUST_CHECK int pki_role_save_default(struct nhid_core *core, struct nhid_txn *txn);
extern const struct nhid_route pki_role_routes[];
extern const size_t pki_n_role_routes;

/* ---- CSR fast path (pki_csr.c) ---------------------------------------------- */

/* Largest uncompressed EC point the fast path takes: P-384, 0x04 || X || Y. */
#define PKI_CSR_POINT_MAX 97

struct pki_csr {
    EVP_PKEY *pkey;                   /* the CSR's key, imported without a decoder */
    int curve_nid;                    /* NID_X9_62_prime256v1 or NID_secp384r1 */
    uint8_t point[PKI_CSR_POINT_MAX]; /* uncompressed point */
    size_t point_len;
    bool has_attributes; /* attributes present (may request SANs) */
    uint8_t *der;
    size_t der_len;
};

/*
 * Parse and verify an EC P-256/P-384 CSR without OpenSSL's decoders.
 * NHID_ERR_UNSUPPORTED: not this shape, use nhid_pki_csr_parse();
 * NHID_ERR_INVALID: the CSR is bad (message in err).
 */
NHID_MUST_CHECK int pki_csr_parse_fast(const uint8_t *in, size_t len, struct pki_csr *out,
                                       char *err, size_t errlen);
void pki_csr_free(struct pki_csr *c);

/* ---- issuance (pki_issue.c) ---------------------------------------------- */

extern const struct nhid_route pki_issue_routes[];
extern const size_t pki_n_issue_routes;
int pki_issue_for_identity(struct nhid_core *core, struct nhid_txn *txn, const char *identity,
                           const char *spiffe_id, const char *csr_pem, json_t **out, char *err,
                           size_t errlen);
void pki_serial_hex(const uint8_t *serial, size_t len, char *out);   /* "3ab4..." */
void pki_serial_colon(const uint8_t *serial, size_t len, char *out); /* "3a:b4:..." */
/* Parse "3ab4..." or "3a:b4:..." into bytes. */
NHID_MUST_CHECK int pki_serial_parse(const char *s, uint8_t *out, size_t *len);

/* ---- revocation and CRL (pki_crl.c) -------------------------------------- */

extern const struct nhid_route pki_crl_routes[];
extern const size_t pki_n_crl_routes;
extern const struct nhid_job pki_jobs[];
extern const size_t pki_n_jobs;
NHID_MUST_CHECK int pki_revoked_load(struct pki_state *st, struct nhid_txn *txn);
void pki_revset_free(struct pki_revset *r);
/* Is serial revoked by issuer? Fills *rev on true. Takes rev_lock. */
bool pki_is_revoked(struct pki_state *st, struct pki_issuer *is, const uint8_t *serial, size_t len,
                    struct pki_revoked *rev);
/* Revoke a stored certificate inside a writable txn (and schedule the in-memory update). */
NHID_MUST_CHECK int pki_revoke_serial(struct nhid_core *core, struct nhid_txn *txn,
                                      const char *serial_hex, int reason, bool from_lifecycle,
                                      char *err, size_t errlen);
int pki_cred_revoke_hook(struct nhid_core *core, struct nhid_txn *txn, const char *entity_id,
                         const char *id);
/* The issuer's current CRL (re-signed if stale); *der malloc'd. */
NHID_MUST_CHECK int pki_crl_get(struct pki_state *st, struct pki_issuer *is, uint8_t **der,
                                size_t *len);

/* ---- OCSP (pki_ocsp.c) and bundle (pki_bundle.c) ------------------------- */

extern const struct nhid_route pki_ocsp_routes[];
extern const size_t pki_n_ocsp_routes;
extern const struct nhid_route pki_bundle_routes[];
extern const size_t pki_n_bundle_routes;
/* Persist a new bundle sequence (issuer set changed). txn writable. */
NHID_MUST_CHECK int pki_bundle_bump(struct nhid_core *core, struct nhid_txn *txn);
NHID_MUST_CHECK int pki_bundle_load(struct pki_state *st, struct nhid_txn *txn);

/* ---- small helpers -------------------------------------------------------- */

char *pki_x509_pem(X509 *x); /* malloc'd PEM */
NHID_MUST_CHECK int pki_pem_to_x509(const char *pem, X509 **out);
const char *pki_jstr(json_t *o, const char *k);

#endif /* NHID_PKI_INTERNAL_H */
