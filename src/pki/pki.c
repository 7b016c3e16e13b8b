/*
 * pki — the engine table and lifecycle: issuers, their revoked sets and
 * the bundle sequence are loaded into memory at unseal (keys into
 * signers) and wiped at seal. The route table is the concatenation of
 * the tables of pki_issuer.c, pki_role.c, pki_issue.c, pki_crl.c,
 * pki_ocsp.c and pki_bundle.c, assembled before main() runs.
 */
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"
#include "pki/pki_internal.h"

#define PKI_ROUTES_MAX PKI_N_ROUTES

static struct nhid_route pki_routes[PKI_ROUTES_MAX];
static size_t pki_n_routes;

__attribute__((constructor)) static void pki_routes_init(void)
{
    const struct {
        const struct nhid_route *r;
        const size_t *n;
    } tables[] = {
        {pki_issuer_routes, &pki_n_issuer_routes}, {pki_role_routes, &pki_n_role_routes},
        {pki_issue_routes, &pki_n_issue_routes},   {pki_crl_routes, &pki_n_crl_routes},
        {pki_ocsp_routes, &pki_n_ocsp_routes},     {pki_bundle_routes, &pki_n_bundle_routes}};
    for (size_t t = 0; t < NHID_ARRAY_LEN(tables); t++)
        for (size_t i = 0; i < *tables[t].n && pki_n_routes < PKI_ROUTES_MAX; i++)
            pki_routes[pki_n_routes++] = tables[t].r[i];
}

struct pki_state *pki_state(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "pki");
    return slot ? *slot : NULL;
}

static void free_issuers(struct pki_state *st)
{
    pthread_rwlock_wrlock(&st->lock);
    pthread_mutex_lock(&st->rev_lock);
    for (size_t i = 0; i < st->n_issuers; i++)
        pki_issuer_free(st->issuers[i]);
    st->n_issuers = 0;
    st->default_id[0] = '\0';
    pthread_mutex_unlock(&st->rev_lock);
    pthread_rwlock_unlock(&st->lock);
}

static int pki_on_unseal(struct nhid_core *core)
{
    void **slot = nhid_core_state(core, "pki");
    struct nhid_txn *txn = NULL;
    int rc = NHID_OK;
    if (slot == NULL)
        return NHID_ERR_INTERNAL;
    struct pki_state *st = *slot;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st == NULL)
            return NHID_ERR_NOMEM;
        pthread_rwlock_init(&st->lock, NULL);
        pthread_mutex_init(&st->rev_lock, NULL);
        st->core = core;
        *slot = st;
    }
    free_issuers(st);
    NHID_TRY(nhid_store_read_begin(core->store, &txn));
    pthread_rwlock_wrlock(&st->lock);
    rc = pki_issuers_load(st, txn);
    if (rc == NHID_OK)
        rc = pki_revoked_load(st, txn);
    pthread_rwlock_unlock(&st->lock);
    NHID_TRY(rc);
    NHID_TRY(pki_bundle_load(st, txn));
    NHID_TRY(nhid_identity_cred_register_type(PKI_CRED_TYPE, pki_cred_revoke_hook));
    core->pki_trusted_cas = pki_trusted_cas;
    core->pki_issue_for_identity = pki_issue_for_identity;
    st->ready = true;
    if (st->n_issuers)
        nhid_info(PKI_MOD, "%zu issuer(s) loaded", st->n_issuers);
out:
    nhid_store_read_end(txn);
    if (rc < 0)
        nhid_error(PKI_MOD, "cannot load the PKI state: %s", nhid_strerror(rc));
    return rc;
}

static void pki_on_seal(struct nhid_core *core)
{
    struct pki_state *st = pki_state(core);
    core->pki_trusted_cas = NULL;
    core->pki_issue_for_identity = NULL;
    if (st == NULL)
        return;
    st->ready = false;
    free_issuers(st); /* signers free (and OpenSSL cleanses) the CA keys */
}

static void pki_metrics(struct nhid_core *core, json_t *gauges)
{
    struct pki_state *st = pki_state(core);
    if (st == NULL || !st->ready)
        return;
    size_t revoked = 0;
    pthread_rwlock_rdlock(&st->lock);
    pthread_mutex_lock(&st->rev_lock);
    for (size_t i = 0; i < st->n_issuers; i++)
        revoked += st->issuers[i]->rev.n;
    pthread_mutex_unlock(&st->rev_lock);
    json_object_set_new(gauges, "nhid_pki_issuers", json_integer((json_int_t)st->n_issuers));
    pthread_rwlock_unlock(&st->lock);
    json_object_set_new(gauges, "nhid_pki_revoked_certificates", json_integer((json_int_t)revoked));
}

const struct nhid_engine nhid_pki_engine = {
    .name = "pki",
    .routes = pki_routes,
    .n_routes = PKI_N_ROUTES,
    .jobs = pki_jobs,
    .n_jobs = 1,
    .on_unseal = pki_on_unseal,
    .on_seal = pki_on_seal,
    .metrics = pki_metrics,
};
