/*
 * audit — tamper-evident audit log devices.
 *
 * A broker fans every record out to the enabled devices (type "file" now).
 * Each device writes one JSON object per line. Before writing, the device
 *  1. replaces every string leaf under "request.data", "response.data",
 *     "response.auth.client_token" and "request.client_token" - and, as
 *     token metadata is caller-supplied and echoed back, also under
 *     "response.auth.metadata" and "auth.metadata" - with
 *     "hmac-sha256:<hex>" computed with the device's own 32-byte key, so
 *     secret values never reach the file (Vault's audit HMAC convention);
 *  2. appends three fields:
 *        "seq":  N        (1, 2, 3, ... per device, continuing across restarts)
 *        "prev": "<hex>"  (the previous record's chain value; 64 zeros first)
 *        "chain":"<hex>"  SHA-256 over the line's bytes up to and excluding
 *                          `,"chain":"...` followed by `}`
 *     so editing, deleting, inserting or reordering records is detected by
 *     nhid_audit_verify_file().
 *
 * Writes are batched by one audit thread: it takes every queued record,
 * writes them with one write() per device and one fdatasync() per device,
 * then calls each record's completion. A completion with rc == NHID_OK
 * means the record is on disk in every enabled device. When no device is
 * enabled, records complete at once with NHID_OK (nothing to write). When
 * any enabled device fails, the completion gets NHID_ERR_IO (fail closed:
 * the caller must fail the request) and the failure is counted.
 */
#ifndef NHID_AUDIT_H
#define NHID_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

#define NHID_AUDIT_NAME_MAX 64
#define NHID_AUDIT_DEVICES_MAX 16

struct nhid_audit;

NHID_MUST_CHECK int nhid_audit_new(struct nhid_audit **out);
/* Flush pending records, stop the thread, close devices. Safe with NULL. */
void nhid_audit_free(struct nhid_audit *a);

/*
 * Enable a file device. If the file exists its last line is read to
 * continue seq and the chain. Created with mode 0600.
 * NHID_ERR_EXISTS if the name is taken; NHID_ERR_IO (message in errbuf)
 * if the file cannot be opened.
 */
NHID_MUST_CHECK int nhid_audit_enable_file(struct nhid_audit *a, const char *name, const char *path,
                                           const uint8_t hmac_key[32], const char *description,
                                           char *errbuf, size_t errlen);
/* Disable (and close) a device. NHID_ERR_NOT_FOUND if absent. */
NHID_MUST_CHECK int nhid_audit_disable(struct nhid_audit *a, const char *name);
/* New reference to {"<name>/": {"type":"file","description":...,"options":{"file_path":...}}}. */
json_t *nhid_audit_list(struct nhid_audit *a);
unsigned nhid_audit_device_count(struct nhid_audit *a);

/* HMAC input with the named device's key as "hmac-sha256:<hex>" (sys/audit-hash). */
NHID_MUST_CHECK int nhid_audit_hash(struct nhid_audit *a, const char *name, const char *input,
                                    char out[80]);

typedef void (*nhid_audit_done_fn)(int rc, void *arg);

/*
 * Queue a record (reference stolen). done (may be NULL) is called once,
 * from the audit thread, when the record is durable on every device or
 * has failed.
 */
NHID_MUST_CHECK int nhid_audit_submit(struct nhid_audit *a, json_t *record, nhid_audit_done_fn done,
                                      void *arg);
/*
 * As nhid_audit_submit, but the caller keeps its reference and frees the
 * record after done has been called (and must not change it before).
 * Records are built on the event loops: freeing them there too keeps
 * their memory off the audit thread (glibc frees across threads contend
 * on the allocating thread's arena). done is required.
 */
NHID_MUST_CHECK int nhid_audit_submit_borrowed(struct nhid_audit *a, json_t *record,
                                               nhid_audit_done_fn done, void *arg);
/*
 * A record assembled field by field (audit_builder.c): plain fields are
 * encoded as JSON text when added; values that may hold secrets are kept
 * by reference and HMAC'd with each device's key when written, under the
 * same rules as a json_t record (above). Keys are written in the order
 * added; the record object is opened by _new and closed on submission.
 * Adders never fail: the first error is kept and the record is refused
 * when submitted (its completion is not called; the submit call fails).
 * Values given by reference must not be modified until done has run.
 */
struct nhid_audit_builder;
enum nhid_audit_hmac {
    NHID_AUDIT_HMAC_NONE, /* no secrets: encoded at once */
    NHID_AUDIT_HMAC_ALL,  /* every string leaf (request/response data) */
    NHID_AUDIT_HMAC_AUTH, /* a response's auth: its client_token and metadata */
};
struct nhid_audit_builder *nhid_audit_builder_new(void);
/* Safe with NULL; wipes kept secret strings. */
void nhid_audit_builder_free(struct nhid_audit_builder *b);
/* "key":{ ... } — every open needs a close. */
void nhid_audit_builder_open(struct nhid_audit_builder *b, const char *key);
void nhid_audit_builder_close(struct nhid_audit_builder *b);
void nhid_audit_builder_str(struct nhid_audit_builder *b, const char *key, const char *value);
void nhid_audit_builder_int(struct nhid_audit_builder *b, const char *key, int64_t value);
void nhid_audit_builder_bool(struct nhid_audit_builder *b, const char *key, bool value);
/* A JSON value (NULL writes null); a reference is kept unless hmac is NONE. */
void nhid_audit_builder_json(struct nhid_audit_builder *b, const char *key, json_t *value,
                             enum nhid_audit_hmac hmac);
/* A secret string (a token): a wiped copy is kept, HMAC'd per device. */
void nhid_audit_builder_secret_str(struct nhid_audit_builder *b, const char *key,
                                   const char *value);
/*
 * Queue a built record, as nhid_audit_submit_borrowed: the caller frees
 * the builder after done has been called (done is required).
 */
NHID_MUST_CHECK int nhid_audit_submit_built(struct nhid_audit *a,
                                            const struct nhid_audit_builder *b,
                                            nhid_audit_done_fn done, void *arg);

/* Queue and wait until durable; returns the completion rc. */
NHID_MUST_CHECK int nhid_audit_submit_wait(struct nhid_audit *a, json_t *record);

/* false once a write failed and no later batch succeeded on all devices. */
bool nhid_audit_healthy(struct nhid_audit *a);
/* Records whose write failed, since start. */
uint64_t nhid_audit_failure_count(struct nhid_audit *a);
/* Records written, since start. */
uint64_t nhid_audit_record_count(struct nhid_audit *a);

/* ---- verification ------------------------------------------------------- */

struct nhid_audit_verify_result {
    uint64_t records;  /* lines checked */
    uint64_t bad_line; /* first bad line (1-based), 0 if the chain holds */
    uint64_t bad_seq;  /* seq found on the bad line, if any */
    char problem[256]; /* "record 17 (line 17) was edited: chain mismatch", ... */
};

/*
 * Verify a file device's chain: each line's chain value, prev == the
 * previous line's chain, seq == previous seq + 1. Names the first edited,
 * missing (seq gap), inserted or reordered record. Returns NHID_OK if the
 * chain holds, NHID_ERR_TAMPERED if not, NHID_ERR_IO if unreadable.
 * Designed to run at >= 1,000,000 records/s (no JSON parsing).
 */
NHID_MUST_CHECK int nhid_audit_verify_file(const char *path, struct nhid_audit_verify_result *res);

/*
 * Additions beyond the original contract (docs/audit.md):
 *
 * The kind of the first problem found, for programs (the CLI's JSON
 * output). nhid_audit_problem_name() gives its stable lower-case name
 * ("ok", "edited", "missing", "reordered", "inserted", "truncated",
 * "malformed"); never NULL.
 */
enum nhid_audit_problem {
    NHID_AUDIT_PROBLEM_NONE = 0,  /* the chain holds */
    NHID_AUDIT_PROBLEM_EDITED,    /* a line's bytes do not hash to its chain value */
    NHID_AUDIT_PROBLEM_MISSING,   /* seq jumps forward: record(s) deleted before the line */
    NHID_AUDIT_PROBLEM_REORDERED, /* seq out of order: records moved or duplicated */
    NHID_AUDIT_PROBLEM_INSERTED,  /* valid-looking record that does not link: forged/replaced */
    NHID_AUDIT_PROBLEM_TRUNCATED, /* last line has no newline (crash during a write) */
    NHID_AUDIT_PROBLEM_MALFORMED, /* a line without seq/prev/chain at its end */
};
const char *nhid_audit_problem_name(enum nhid_audit_problem p);

/*
 * As nhid_audit_verify_file(), also giving the kind of problem (kind may
 * be NULL). res is filled for NHID_OK and NHID_ERR_TAMPERED; on
 * NHID_ERR_IO res->problem says what failed (e.g. "cannot open: ...").
 */
NHID_MUST_CHECK int nhid_audit_verify_file_ex(const char *path,
                                              struct nhid_audit_verify_result *res,
                                              enum nhid_audit_problem *kind);
/* Verify len bytes of file contents held in memory (fuzzing, tests). */
NHID_MUST_CHECK int nhid_audit_verify_mem(const void *buf, size_t len,
                                          struct nhid_audit_verify_result *res,
                                          enum nhid_audit_problem *kind);

/*
 * `nhid audit verify [-format=json] FILE...` with argv[0] == "verify".
 * Prints "FILE: OK, N records" or "FILE: TAMPERED at line L (seq S): ..."
 * per file. Returns the exit status: 0 all files verified, 1 a file is
 * tampered (wins over 2), 2 usage or I/O error. -h prints usage (0).
 */
int nhid_audit_verify_main(int argc, char **argv);

#endif /* NHID_AUDIT_H */
