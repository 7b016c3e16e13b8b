/*
 * libFuzzer target for OCSP request parsing (src/pki/pki_ocsp.c):
 * nhid_pki_ocsp_request_check() on arbitrary bytes. Checks the contract:
 * success reports 1..16 certificates; failure writes a message.
 */
#include <stdint.h>
#include <stdlib.h>

#include "pki/pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    size_t n = 0;
    int nonce = -1;
    err[0] = '\0';
    int rc = nhid_pki_ocsp_request_check(data, size, &n, &nonce, err, sizeof(err));
    if (rc == 0 && (n == 0 || n > 16 || (nonce != 0 && nonce != 1)))
        abort();
    if (rc < 0 && err[0] == '\0')
        abort();
    return 0;
}
