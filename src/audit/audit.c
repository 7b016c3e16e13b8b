/*
 * audit — the broker, the audit thread and the file device.
 *
 * Threads and locks (docs/audit.md, "Concurrency"):
 *  - qmu/qcv guard the submit queue (a singly linked list). submit()
 *    appends and returns; the one audit thread takes the whole list.
 *  - iomu is held by the audit thread for the whole of a batch (write +
 *    fdatasync on every device). enable/disable take it too, so a device
 *    is never added, removed or closed while a batch writes to it.
 *  - devmu guards the device array for readers (list, count, hash) so they
 *    never wait for an fdatasync. Lock order: iomu, then devmu.
 *  - Device fields seq/chain_hex/good_off/broken/fd are touched only with
 *    iomu held.
 *
 * Failure (fail closed): if write() or fdatasync() fails on a device, every
 * record of the batch completes with NHID_ERR_IO. The device truncates
 * its file back to the last durable offset (good_off) and keeps its seq
 * and chain from the last durable record, so the file's chain stays
 * intact and later batches continue it. If the file cannot be truncated
 * (or is not a regular file) the device is marked broken: every later
 * batch fails on it until it is disabled and enabled again, which reads
 * the file's last line afresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit/audit.h"
#include "audit/audit_internal.h"

#define MOD "audit"

/* Records taken into one write() + fdatasync() per device. */
#define AUDIT_BATCH_MAX 16384
/* Records waiting in the queue before submit() refuses (503). */
#define AUDIT_QUEUE_MAX (1u << 20)
/* A device's buffer is written out once it holds this much (one fdatasync still). */
#define AUDIT_WRITE_MAX ((size_t)32 << 20)
/* Bytes appended to a serialized record: ,"seq":N,"prev":"..","chain":".."}\n */
#define AUDIT_LINE_EXTRA 192
#define AUDIT_BUF_INIT ((size_t)1 << 20)

struct audit_item {
    struct audit_item *next;
    json_t *rec;
    const struct nhid_audit_builder *built; /* instead of rec (nhid_audit_submit_built) */
    bool borrowed; /* the submitter frees rec, after done (nhid_audit_submit_borrowed) */
    nhid_audit_done_fn done;
    void *arg;
    int rc;
};

struct audit_dev {
    char name[NHID_AUDIT_NAME_MAX + 1];
    char *path;
    char *description;
    int fd;
    bool regular;
    dev_t st_dev;
    ino_t st_ino;
    /* iomu: */
    bool broken;
    uint64_t seq;                      /* last durable record's seq (0: none) */
    char chain_hex[AUDIT_HEX_LEN + 1]; /* its chain (zeros: none) */
    off_t good_off;                    /* file size after the last durable batch */
    EVP_MAC_CTX *mac;                  /* keyed HMAC-SHA256, audit thread only */
    uint8_t key[32];                   /* for nhid_audit_hash(), devmu */
};

struct nhid_audit {
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct audit_item *head;
    struct audit_item **tailp;
    size_t qlen;
    bool stop;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t iomu;
    pthread_mutex_t devmu;
    struct audit_dev *devs[NHID_AUDIT_DEVICES_MAX];
    unsigned ndevs;

    atomic_bool healthy;
    atomic_uint_least64_t failures;
    atomic_uint_least64_t records;

    /* Audit thread scratch. */
    struct audit_out out;
    EVP_MD_CTX *md;
    struct audit_item **batch;
};

/* Message for the caller (truncation is harmless: it is only a message). */
NHID_PRINTF(3, 4)
static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (errbuf == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* ---- file I/O helpers ----------------------------------------------------- */

/* write() all of p, across partial writes and EINTR. 0 or an errno. */
static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int datasync(int fd)
{
    while (fdatasync(fd) != 0) {
        if (errno != EINTR)
            return errno;
    }
    return 0;
}

/* pread() exactly n bytes at off. 0 or an errno (EIO on a short file). */
static int pread_full(int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EIO;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/*
 * Offset of the last '\n' before `end`, reading back at most AUDIT_LINE_MAX
 * bytes; -1 if the file has none before end. 0 or an errno (EFBIG: the
 * line is longer than AUDIT_LINE_MAX).
 */
static int find_last_nl(int fd, off_t end, off_t *pos)
{
    char chunk[65536];
    off_t hi = end;
    while (hi > 0) {
        if (end - hi >= (off_t)AUDIT_LINE_MAX)
            return EFBIG;
        off_t lo = hi > (off_t)sizeof(chunk) ? hi - (off_t)sizeof(chunk) : 0;
        int e = pread_full(fd, chunk, (size_t)(hi - lo), lo);
        if (e != 0)
            return e;
        const char *nl = memrchr(chunk, '\n', (size_t)(hi - lo));
        if (nl != NULL) {
            *pos = lo + (off_t)(nl - chunk);
            return 0;
        }
        hi = lo;
    }
    *pos = -1;
    return 0;
}

static void fsync_parent_dir(const char *path)
{
    char *copy = nhid_strdup(path);
    if (copy == NULL)
        return;
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(copy);
}

/* ---- devices ------------------------------------------------------------- */

static void dev_free(struct audit_dev *d)
{
    if (d == NULL)
        return;
    if (d->fd >= 0)
        close(d->fd);
    EVP_MAC_CTX_free(d->mac);
    free(d->path);
    free(d->description);
    nhid_free_secret(d, sizeof(*d));
}

/*
 * Read the file's last complete line to continue seq and chain. An
 * incomplete last line (a crash during a write, whose records were never
 * acknowledged) is cut off with a warning. Caller holds iomu.
 */
static int dev_load_tail(struct audit_dev *d, char *errbuf, size_t errlen)
{
    int rc = NHID_OK;
    struct stat st;
    char *line = NULL;
    EVP_MD_CTX *ctx = NULL;
    off_t size, nl;
    int e;

    d->seq = 0;
    memcpy(d->chain_hex, nhid_audit_zero_chain, sizeof(d->chain_hex));
    d->good_off = 0;
    if (fstat(d->fd, &st) != 0) {
        e = errno;
        goto io_err;
    }
    d->regular = S_ISREG(st.st_mode);
    d->st_dev = st.st_dev;
    d->st_ino = st.st_ino;
    if (!d->regular)
        return NHID_OK; /* a pipe or character device: nothing to continue */
    size = st.st_size;
    if (size == 0)
        return NHID_OK;
    char last;
    if ((e = pread_full(d->fd, &last, 1, size - 1)) != 0)
        goto io_err;
    if (last != '\n') {
        if ((e = find_last_nl(d->fd, size, &nl)) != 0)
            goto io_err;
        off_t keep = nl + 1;
        nhid_warn(MOD,
                  "device %s: %s ends with an incomplete line (%lld bytes, a crash during a "
                  "write?); cutting it off to continue the chain from the last complete record",
                  d->name, d->path, (long long)(size - keep));
        if (ftruncate(d->fd, keep) != 0 || datasync(d->fd) != 0) {
            e = errno;
            goto io_err;
        }
        size = keep;
        if (size == 0)
            return NHID_OK;
    }
    if ((e = find_last_nl(d->fd, size - 1, &nl)) != 0)
        goto io_err;
    size_t len = (size_t)(size - 1 - (nl + 1));
    line = malloc(len + 1);
    NHID_CHECK_ALLOC(line);
    if ((e = pread_full(d->fd, line, len, nl + 1)) != 0)
        goto io_err;
    struct audit_tail t;
    const char *why = audit_tail_parse(line, len, &t);
    if (why != NULL) {
        set_err(errbuf, errlen,
                "audit file \"%s\": its last line is not an audit record (%s); run "
                "`nhid audit verify %s` and move the file aside",
                d->path, why, d->path);
        NHID_FAIL(NHID_ERR_IO);
    }
    uint8_t digest[32];
    char hex[AUDIT_HEX_LEN];
    ctx = EVP_MD_CTX_new();
    NHID_CHECK_ALLOC(ctx);
    if (!audit_chain_hash(ctx, line, t.body_len, digest))
        NHID_FAIL(NHID_ERR_CRYPTO);
    audit_hex32_encode(digest, hex);
    if (memcmp(hex, t.chain_hex, AUDIT_HEX_LEN) != 0) {
        set_err(errbuf, errlen,
                "audit file \"%s\": its last record (seq %llu) fails its chain check "
                "(edited?); run `nhid audit verify %s` and move the file aside",
                d->path, (unsigned long long)t.seq, d->path);
        NHID_FAIL(NHID_ERR_IO);
    }
    d->seq = t.seq;
    memcpy(d->chain_hex, t.chain_hex, AUDIT_HEX_LEN);
    d->good_off = size;
    goto out;
io_err:
    if (e == EFBIG)
        set_err(errbuf, errlen,
                "audit file \"%s\": its last line is longer than %lld bytes; move the "
                "file aside",
                d->path, (long long)AUDIT_LINE_MAX);
    else
        set_err(errbuf, errlen, "audit file \"%s\": cannot read its last record: %s", d->path,
                strerror(e));
    rc = NHID_ERR_IO;
out:
    EVP_MD_CTX_free(ctx);
    free(line);
    return rc;
}

/* Roll back a failed batch on d (see the comment at the top). iomu held. */
static void dev_fail(struct audit_dev *d, const char *what, int e)
{
    nhid_error(MOD, "device %s: %s %s failed: %s; failing the batch's requests", d->name, what,
               d->path, strerror(e));
    if (d->regular && ftruncate(d->fd, d->good_off) == 0 && datasync(d->fd) == 0) {
        nhid_warn(MOD, "device %s: rolled %s back to its last durable record (seq %llu)", d->name,
                  d->path, (unsigned long long)d->seq);
        return;
    }
    d->broken = true;
    nhid_error(MOD,
               "device %s: cannot roll %s back; the device is broken and every record "
               "fails until it is disabled and enabled again",
               d->name, d->path);
}

static size_t u64_dec(uint64_t v, char *out)
{
    char tmp[AUDIT_SEQ_DIGITS_MAX];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/*
 * Serialize items into d's format, append with one write() and make
 * durable with one fdatasync(). Per-record errors go to item->rc.
 * NHID_ERR_IO if the device failed. iomu held.
 */
static int dev_write_batch(struct nhid_audit *a, struct audit_dev *d, struct audit_item **items,
                           size_t n)
{
    struct audit_out *o = &a->out;
    off_t written = 0;
    uint64_t seq = d->seq;
    char prev[AUDIT_HEX_LEN];
    int e;

    if (d->broken)
        return NHID_ERR_IO;
    memcpy(prev, d->chain_hex, AUDIT_HEX_LEN);
    o->len = 0;
    for (size_t i = 0; i < n; i++) {
        struct audit_item *it = items[i];
        size_t start = o->len;
        if (it->rc < 0)
            continue;
        int src = it->built ? audit_builder_serialize(o, it->built, d->mac)
                            : audit_serialize(o, it->rec, d->mac);
        if (src == NHID_OK && o->len - start > AUDIT_LINE_MAX - AUDIT_LINE_EXTRA)
            src = NHID_ERR_TOO_LARGE; /* the verifier would refuse the line */
        if (src == NHID_OK)
            src = audit_out_reserve(o, AUDIT_LINE_EXTRA);
        if (src < 0) {
            o->len = start;
            it->rc = src;
            continue;
        }
        /* BODY = the object without its '}' + "seq":N,"prev":"<hex>" */
        char *line = o->buf + start;
        char *p = o->buf + o->len - 1;
        if (o->len - start > 2)
            *p++ = ',';
        memcpy(p, AUDIT_SEQ_KEY, AUDIT_SEQ_KEY_LEN);
        p += AUDIT_SEQ_KEY_LEN;
        p += u64_dec(seq + 1, p);
        memcpy(p, AUDIT_PREV_KEY, AUDIT_PREV_KEY_LEN);
        p += AUDIT_PREV_KEY_LEN;
        memcpy(p, prev, AUDIT_HEX_LEN);
        p += AUDIT_HEX_LEN;
        *p++ = '"';
        /* chain = SHA-256(BODY || "}") */
        uint8_t digest[32];
        if (!audit_chain_hash(a->md, line, (size_t)(p - line), digest)) {
            o->len = start;
            it->rc = NHID_ERR_CRYPTO;
            continue;
        }
        seq++;
        memcpy(p, AUDIT_CHAIN_KEY, AUDIT_CHAIN_KEY_LEN);
        p += AUDIT_CHAIN_KEY_LEN;
        audit_hex32_encode(digest, p);
        memcpy(prev, p, AUDIT_HEX_LEN);
        p += AUDIT_HEX_LEN;
        *p++ = '"';
        *p++ = '}';
        *p++ = '\n';
        o->len = (size_t)(p - o->buf);
        if (o->len >= AUDIT_WRITE_MAX) {
            /* Bound memory for batches of huge records: write now, sync once. */
            if ((e = write_full(d->fd, o->buf, o->len)) != 0) {
                dev_fail(d, "write to", e);
                return NHID_ERR_IO;
            }
            written += (off_t)o->len;
            o->len = 0;
        }
    }
    if (o->len == 0 && written == 0)
        return NHID_OK;
    if ((e = write_full(d->fd, o->buf, o->len)) != 0) {
        dev_fail(d, "write to", e);
        return NHID_ERR_IO;
    }
    if ((e = datasync(d->fd)) != 0) {
        dev_fail(d, "fdatasync of", e);
        return NHID_ERR_IO;
    }
    written += (off_t)o->len;
    d->seq = seq;
    memcpy(d->chain_hex, prev, AUDIT_HEX_LEN);
    d->good_off += written;
    return NHID_OK;
}

/* ---- the audit thread ----------------------------------------------------- */

static void process_batch(struct nhid_audit *a, struct audit_item **items, size_t n)
{
    struct audit_dev *devs[NHID_AUDIT_DEVICES_MAX];
    unsigned nd;
    bool failed = false;
    uint64_t ok = 0, bad = 0;

    pthread_mutex_lock(&a->iomu);
    pthread_mutex_lock(&a->devmu);
    nd = a->ndevs;
    memcpy(devs, a->devs, nd * sizeof(devs[0]));
    pthread_mutex_unlock(&a->devmu);
    for (unsigned i = 0; i < nd; i++)
        if (dev_write_batch(a, devs[i], items, n) < 0)
            failed = true;
    if (a->out.cap > 2 * AUDIT_WRITE_MAX) {
        /* Give back the memory of an unusually large batch. */
        free(a->out.buf);
        a->out = (struct audit_out){NULL, 0, 0};
    }
    pthread_mutex_unlock(&a->iomu);

    /* A batch that reached every enabled device (maybe none) restores health. */
    atomic_store(&a->healthy, !failed);
    /* Counters first, so a completed caller sees them updated. */
    for (size_t i = 0; i < n; i++) {
        struct audit_item *it = items[i];
        it->rc = it->rc < 0 ? it->rc : failed ? NHID_ERR_IO : NHID_OK;
        if (it->rc == NHID_OK)
            ok++;
        else
            bad++;
    }
    atomic_fetch_add(&a->records, ok);
    atomic_fetch_add(&a->failures, bad);
    /* Completions run without locks: they may submit or enable/disable. */
    for (size_t i = 0; i < n; i++) {
        struct audit_item *it = items[i];
        if (!it->borrowed)
            json_decref(it->rec);
        if (it->done != NULL)
            it->done(it->rc, it->arg);
        free(it);
    }
}

static void *audit_thread(void *arg)
{
    struct nhid_audit *a = arg;
    for (;;) {
        pthread_mutex_lock(&a->qmu);
        while (a->head == NULL && !a->stop)
            pthread_cond_wait(&a->qcv, &a->qmu);
        struct audit_item *list = a->head;
        bool stop = a->stop;
        a->head = NULL;
        a->tailp = &a->head;
        a->qlen = 0;
        pthread_mutex_unlock(&a->qmu);
        if (list == NULL && stop)
            break;
        /* Everything queued goes out now, AUDIT_BATCH_MAX records per write. */
        while (list != NULL) {
            size_t n = 0;
            while (list != NULL && n < AUDIT_BATCH_MAX) {
                a->batch[n++] = list;
                list = list->next;
            }
            process_batch(a, a->batch, n);
        }
    }
    return NULL;
}

/* ---- public API ----------------------------------------------------------- */

int nhid_audit_new(struct nhid_audit **out)
{
    int rc = NHID_OK;
    struct nhid_audit *a = calloc(1, sizeof(*a));
    bool qmu = false, qcv = false, iomu = false, devmu = false;
    sigset_t all, old;

    NHID_CHECK_ALLOC(a);
    a->tailp = &a->head;
    atomic_init(&a->healthy, true);
    atomic_init(&a->failures, 0);
    atomic_init(&a->records, 0);
    if (pthread_mutex_init(&a->qmu, NULL) != 0)
        NHID_FAIL(NHID_ERR_INTERNAL);
    qmu = true;
    if (pthread_cond_init(&a->qcv, NULL) != 0)
        NHID_FAIL(NHID_ERR_INTERNAL);
    qcv = true;
    if (pthread_mutex_init(&a->iomu, NULL) != 0)
        NHID_FAIL(NHID_ERR_INTERNAL);
    iomu = true;
    if (pthread_mutex_init(&a->devmu, NULL) != 0)
        NHID_FAIL(NHID_ERR_INTERNAL);
    devmu = true;
    NHID_TRY(audit_out_reserve(&a->out, AUDIT_BUF_INIT));
    a->md = EVP_MD_CTX_new();
    NHID_CHECK_ALLOC(a->md);
    if (audit_sha256_md() == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    a->batch = calloc(AUDIT_BATCH_MAX, sizeof(*a->batch));
    NHID_CHECK_ALLOC(a->batch);
    /* The audit thread takes no signals; the server's threads handle them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&a->thread, NULL, audit_thread, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        nhid_error(MOD, "cannot start the audit thread: %s", strerror(e));
        NHID_FAIL(NHID_ERR_NOMEM);
    }
    a->thread_started = true;
    *out = a;
    a = NULL;
out:
    if (a != NULL) {
        free(a->batch);
        EVP_MD_CTX_free(a->md);
        free(a->out.buf);
        if (devmu)
            pthread_mutex_destroy(&a->devmu);
        if (iomu)
            pthread_mutex_destroy(&a->iomu);
        if (qcv)
            pthread_cond_destroy(&a->qcv);
        if (qmu)
            pthread_mutex_destroy(&a->qmu);
        free(a);
    }
    return rc;
}

void nhid_audit_free(struct nhid_audit *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->qmu);
    a->stop = true;
    pthread_cond_broadcast(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    if (a->thread_started)
        pthread_join(a->thread, NULL); /* drains the queue first */
    for (unsigned i = 0; i < a->ndevs; i++)
        dev_free(a->devs[i]);
    free(a->batch);
    EVP_MD_CTX_free(a->md);
    free(a->out.buf);
    pthread_mutex_destroy(&a->devmu);
    pthread_mutex_destroy(&a->iomu);
    pthread_cond_destroy(&a->qcv);
    pthread_mutex_destroy(&a->qmu);
    free(a);
}

/* "file" or "file/" → "file" in out; NHID_ERR_INVALID if not [A-Za-z0-9._-]{1,64}. */
static int device_name(const char *name, char out[NHID_AUDIT_NAME_MAX + 1])
{
    if (name == NULL)
        return NHID_ERR_INVALID;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '/')
        len--;
    if (len == 0 || len > NHID_AUDIT_NAME_MAX)
        return NHID_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return NHID_ERR_INVALID;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return NHID_ERR_INVALID;
    memcpy(out, name, len);
    out[len] = '\0';
    return NHID_OK;
}

/* Index of the device named name, or -1. devmu held. */
static int find_dev(struct nhid_audit *a, const char *name)
{
    for (unsigned i = 0; i < a->ndevs; i++)
        if (strcmp(a->devs[i]->name, name) == 0)
            return (int)i;
    return -1;
}

int nhid_audit_enable_file(struct nhid_audit *a, const char *name, const char *path,
                           const uint8_t hmac_key[32], const char *description, char *errbuf,
                           size_t errlen)
{
    int rc = NHID_OK;
    struct audit_dev *d = NULL;
    bool locked = false;
    bool created = false;
    char dummy[8];

    if (errbuf == NULL) {
        errbuf = dummy;
        errlen = sizeof(dummy);
    }
    if (errlen > 0)
        errbuf[0] = '\0';
    if (a == NULL || hmac_key == NULL)
        NHID_FAIL(NHID_ERR_INVALID);
    if (path == NULL || path[0] == '\0') {
        set_err(errbuf, errlen, "file_path is required (the audit log file to append to)");
        NHID_FAIL(NHID_ERR_INVALID);
    }
    d = calloc(1, sizeof(*d));
    NHID_CHECK_ALLOC(d);
    d->fd = -1;
    if (device_name(name, d->name) < 0) {
        set_err(errbuf, errlen,
                "audit device name \"%s\": use 1 to %d letters, digits, '.', '_' or '-'",
                name != NULL ? name : "", NHID_AUDIT_NAME_MAX);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    d->path = nhid_strdup(path);
    d->description = nhid_strdup(description != NULL ? description : "");
    NHID_CHECK_ALLOC(d->path);
    NHID_CHECK_ALLOC(d->description);
    memcpy(d->key, hmac_key, sizeof(d->key));
    d->mac = audit_hmac_ctx_new(d->key);
    if (d->mac == NULL)
        NHID_FAIL(NHID_ERR_CRYPTO);
    /* Read-write so the last record can be read back and a failed batch cut off. */
    d->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
    if (d->fd >= 0)
        created = true;
    else if (errno == EEXIST)
        d->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOCTTY);
    if (d->fd < 0) {
        set_err(errbuf, errlen,
                "audit file \"%s\": cannot open: %s (the directory must exist and be "
                "writable by the server)",
                path, strerror(errno));
        NHID_FAIL(NHID_ERR_IO);
    }
    if (created)
        fsync_parent_dir(path); /* the new name must survive a crash too */

    pthread_mutex_lock(&a->iomu);
    locked = true;
    NHID_TRY(dev_load_tail(d, errbuf, errlen));
    pthread_mutex_lock(&a->devmu);
    const char *other = NULL;
    for (unsigned i = 0; i < a->ndevs; i++)
        if (d->regular && a->devs[i]->regular && a->devs[i]->st_dev == d->st_dev &&
            a->devs[i]->st_ino == d->st_ino)
            other = a->devs[i]->name;
    if (find_dev(a, d->name) >= 0) {
        rc = NHID_ERR_EXISTS;
        set_err(errbuf, errlen, "audit device \"%s/\" is already enabled", d->name);
    } else if (other != NULL) {
        /* Two chains in one file would fork it. */
        rc = NHID_ERR_EXISTS;
        set_err(errbuf, errlen, "audit file \"%s\" is already written by device \"%s/\"", path,
                other);
    } else if (a->ndevs >= NHID_AUDIT_DEVICES_MAX) {
        rc = NHID_ERR_TOO_LARGE;
        set_err(errbuf, errlen, "at most %d audit devices can be enabled", NHID_AUDIT_DEVICES_MAX);
    } else {
        a->devs[a->ndevs++] = d;
        d = NULL;
    }
    pthread_mutex_unlock(&a->devmu);
out:
    if (locked)
        pthread_mutex_unlock(&a->iomu);
    if (rc == NHID_OK)
        nhid_info(MOD, "enabled file device \"%s/\" (%s)", name, path);
    if (created && rc != NHID_OK && d != NULL && d->fd >= 0)
        (void)unlink(path);
    dev_free(d);
    return rc;
}

int nhid_audit_disable(struct nhid_audit *a, const char *name)
{
    char n[NHID_AUDIT_NAME_MAX + 1];
    struct audit_dev *d = NULL;

    if (a == NULL || device_name(name, n) < 0)
        return NHID_ERR_NOT_FOUND;
    pthread_mutex_lock(&a->iomu); /* no batch is writing to it now */
    pthread_mutex_lock(&a->devmu);
    int i = find_dev(a, n);
    if (i >= 0) {
        d = a->devs[i];
        memmove(&a->devs[i], &a->devs[i + 1], (a->ndevs - (unsigned)i - 1) * sizeof(a->devs[0]));
        a->ndevs--;
        a->devs[a->ndevs] = NULL;
    }
    pthread_mutex_unlock(&a->devmu);
    pthread_mutex_unlock(&a->iomu);
    if (d == NULL)
        return NHID_ERR_NOT_FOUND;
    nhid_info(MOD, "disabled device \"%s/\" (%s) at seq %llu", d->name, d->path,
              (unsigned long long)d->seq);
    dev_free(d);
    return NHID_OK;
}

json_t *nhid_audit_list(struct nhid_audit *a)
{
    json_t *out = json_object();
    if (out == NULL || a == NULL)
        return out;
    pthread_mutex_lock(&a->devmu);
    for (unsigned i = 0; i < a->ndevs; i++) {
        struct audit_dev *d = a->devs[i];
        char key[NHID_AUDIT_NAME_MAX + 2];
        snprintf(key, sizeof(key), "%s/", d->name);
        json_t *v =
            json_pack("{s:s, s:s, s:{s:s}, s:b, s:s}", "type", "file", "description",
                      d->description, "options", "file_path", d->path, "local", 0, "path", key);
        if (v == NULL || json_object_set_new(out, key, v) != 0) {
            json_decref(out);
            out = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&a->devmu);
    return out;
}

unsigned nhid_audit_device_count(struct nhid_audit *a)
{
    if (a == NULL)
        return 0;
    pthread_mutex_lock(&a->devmu);
    unsigned n = a->ndevs;
    pthread_mutex_unlock(&a->devmu);
    return n;
}

int nhid_audit_hash(struct nhid_audit *a, const char *name, const char *input, char out[80])
{
    int rc = NHID_OK;
    char n[NHID_AUDIT_NAME_MAX + 1];
    char s[AUDIT_HMAC_STR_LEN];
    EVP_MAC_CTX *ctx = NULL;

    if (a == NULL || input == NULL || out == NULL)
        return NHID_ERR_INVALID;
    if (device_name(name, n) < 0)
        return NHID_ERR_NOT_FOUND;
    pthread_mutex_lock(&a->devmu);
    int i = find_dev(a, n);
    if (i >= 0)
        ctx = audit_hmac_ctx_new(a->devs[i]->key);
    pthread_mutex_unlock(&a->devmu);
    if (i < 0)
        NHID_FAIL(NHID_ERR_NOT_FOUND);
    if (ctx == NULL || !audit_hmac_str(ctx, input, strlen(input), s))
        NHID_FAIL(NHID_ERR_CRYPTO);
    memcpy(out, s, sizeof(s));
    out[sizeof(s)] = '\0';
out:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

static int submit(struct nhid_audit *a, json_t *record, const struct nhid_audit_builder *built,
                  bool borrowed, nhid_audit_done_fn done, void *arg)
{
    if (a == NULL || (built == NULL && !json_is_object(record))) {
        if (!borrowed)
            json_decref(record);
        return NHID_ERR_INVALID;
    }
    struct audit_item *it = malloc(sizeof(*it));
    if (it == NULL) {
        if (!borrowed)
            json_decref(record);
        return NHID_ERR_NOMEM;
    }
    it->next = NULL;
    it->rec = record;
    it->built = built;
    it->borrowed = borrowed;
    it->done = done;
    it->arg = arg;
    it->rc = NHID_OK;
    pthread_mutex_lock(&a->qmu);
    if (a->stop || a->qlen >= AUDIT_QUEUE_MAX) {
        pthread_mutex_unlock(&a->qmu);
        if (!borrowed)
            json_decref(record);
        free(it);
        return NHID_ERR_UNAVAILABLE;
    }
    *a->tailp = it;
    a->tailp = &it->next;
    a->qlen++;
    pthread_cond_signal(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    return NHID_OK;
}

int nhid_audit_submit(struct nhid_audit *a, json_t *record, nhid_audit_done_fn done, void *arg)
{
    return submit(a, record, NULL, false, done, arg);
}

int nhid_audit_submit_borrowed(struct nhid_audit *a, json_t *record, nhid_audit_done_fn done,
                               void *arg)
{
    if (done == NULL)
        return NHID_ERR_INVALID; /* the caller could never know when to free */
    return submit(a, record, NULL, true, done, arg);
}

int nhid_audit_submit_built(struct nhid_audit *a, const struct nhid_audit_builder *b,
                            nhid_audit_done_fn done, void *arg)
{
    if (b == NULL || done == NULL)
        return NHID_ERR_INVALID;
    if (audit_builder_failed(b))
        return NHID_ERR_INVALID;
    return submit(a, NULL, b, true, done, arg);
}

struct audit_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
};

static void waiter_done(int rc, void *arg)
{
    struct audit_waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->rc = rc;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int nhid_audit_submit_wait(struct nhid_audit *a, json_t *record)
{
    struct audit_waiter w = {.done = false, .rc = NHID_OK};

    if (a != NULL && a->thread_started && pthread_equal(pthread_self(), a->thread)) {
        /* From a completion: waiting would deadlock the audit thread. */
        json_decref(record);
        return NHID_ERR_INTERNAL;
    }
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    int rc = nhid_audit_submit(a, record, waiter_done, &w);
    if (rc == NHID_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        rc = w.rc;
        pthread_mutex_unlock(&w.mu);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

bool nhid_audit_healthy(struct nhid_audit *a)
{
    return a != NULL && atomic_load(&a->healthy);
}

uint64_t nhid_audit_failure_count(struct nhid_audit *a)
{
    return a != NULL ? atomic_load(&a->failures) : 0;
}

uint64_t nhid_audit_record_count(struct nhid_audit *a)
{
    return a != NULL ? atomic_load(&a->records) : 0;
}
