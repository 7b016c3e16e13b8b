/*
 * audit_verify_fuzz — arbitrary bytes as the contents of an audit file.
 *
 * The verifier must never crash, read out of bounds or loop on any input,
 * and its report must be consistent: OK has no bad line; TAMPERED names a
 * line within the input and a NUL-terminated problem.
 *
 * Inputs starting with 'F' are also written to a temporary file and
 * checked through nhid_audit_verify_file_ex() (the mmap path), which must
 * agree with the in-memory result.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nhid_audit_verify_result res;
    enum nhid_audit_problem kind;
    uint64_t lines = 0;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (size > 0 && data[size - 1] != '\n')
        lines++;

    int rc = nhid_audit_verify_mem(data, size, &res, &kind);
    if (memchr(res.problem, '\0', sizeof(res.problem)) == NULL)
        abort();
    if (rc == NHID_OK) {
        if (res.bad_line != 0 || kind != NHID_AUDIT_PROBLEM_NONE || res.records != lines)
            abort();
    } else if (rc == NHID_ERR_TAMPERED) {
        if (res.bad_line == 0 || res.bad_line > lines || kind == NHID_AUDIT_PROBLEM_NONE ||
            res.records != res.bad_line - 1 || res.problem[0] == '\0')
            abort();
    } else {
        abort();
    }

    if (size > 0 && data[0] == 'F') {
        char path[] = "/tmp/nhid-audit-fuzz-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
            return 0;
        if (write(fd, data, size) == (ssize_t)size) {
            struct nhid_audit_verify_result fres;
            enum nhid_audit_problem fkind;
            int frc = nhid_audit_verify_file_ex(path, &fres, &fkind);
            if (frc != rc || fkind != kind || fres.bad_line != res.bad_line ||
                fres.records != res.records)
                abort();
        }
        close(fd);
        unlink(path);
    }
    return 0;
}
