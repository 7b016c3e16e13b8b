/*
 * barrier_decrypt_fuzz — untrusted bytes into the barrier's entry codec and
 * into unseal. Stored entries and unseal shares come from outside (a
 * tampered database file, an operator's paste), so neither may crash,
 * leak or be accepted without the right key.
 *
 * Input: byte 0 selects the target; for decrypt, byte 1 is the storage key
 * length and the key follows, then the entry blob; for unseal, the rest is
 * one share.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "barrier/barrier.h"
#include "crypto/crypto.h"

static struct nhid_store *st;
static struct nhid_barrier *open_b;   /* unsealed: entries are checked against real keys */
static struct nhid_barrier *sealed_b; /* sealed: shares are checked against the keyring */
static char dir[64];

static void fuzz_cleanup(void)
{
    char p[160];
    static const char *const files[] = {"fuzz.db", "fuzz.db-wal", "fuzz.db-shm"};

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void fuzz_init(void)
{
    char path[128], err[128];
    uint8_t **shares = NULL;
    struct nhid_store_config cfg;

    nhid_log_set_level(NHID_LOG_ERROR + 1);
    strcpy(dir, "/tmp/nhid-fuzz-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
    atexit(fuzz_cleanup);
    snprintf(path, sizeof(path), "%s/fuzz.db", dir);
    cfg = (struct nhid_store_config){.backend = "sqlite", .path = path, .durable = false};
    if (nhid_store_open(&cfg, &st) != NHID_OK || nhid_barrier_new(st, &open_b) != NHID_OK ||
        nhid_barrier_new(st, &sealed_b) != NHID_OK ||
        nhid_barrier_init(open_b, 3, 2, &shares, err, sizeof(err)) != NHID_OK ||
        nhid_barrier_unseal(open_b, shares[0], NHID_SHARE_LEN, NULL) != NHID_OK ||
        nhid_barrier_unseal(open_b, shares[1], NHID_SHARE_LEN, NULL) != NHID_OK ||
        nhid_barrier_sealed(open_b))
        abort();
    nhid_shamir_free_shares(shares, 3, NHID_SHARE_LEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (st == NULL)
        fuzz_init();
    if (size < 2)
        return 0;
    if (data[0] & 1) {
        char key[65];
        size_t klen = data[1] % 64 + 1;
        uint8_t *pt = NULL;
        size_t ptlen = 0;
        uint32_t term = 0;
        int rc;

        if (size < 2 + klen)
            return 0;
        for (size_t i = 0; i < klen; i++)
            key[i] = data[2 + i] ? (char)data[2 + i] : 'k';
        key[klen] = '\0';
        rc = nhid_barrier_decrypt(open_b, key, data + 2 + klen, size - 2 - klen, &pt, &ptlen,
                                  &term);
        /* Forging an entry needs the term key: only rejection is acceptable. */
        if (rc != NHID_ERR_TAMPERED && rc != NHID_ERR_TOO_LARGE)
            abort();
        if (pt != NULL)
            abort();
    } else {
        struct nhid_seal_status s;
        int rc = nhid_barrier_unseal(sealed_b, data + 1, size - 1, &s);
        if (rc == NHID_OK && !nhid_barrier_sealed(sealed_b))
            abort(); /* unsealed by a guessed share */
        if (rc != NHID_OK && rc != NHID_ERR_INVALID && rc != NHID_ERR_DENIED)
            abort();
    }
    return 0;
}
