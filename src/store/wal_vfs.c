/*
 * wal_vfs — a SQLite VFS that gathers WAL writes until the WAL's next
 * sync (store_wal_vfs.h).
 *
 * Every file but a WAL is opened by the underlying VFS in place, with its
 * own methods. A WAL file is wrapped: contiguous writes are appended to a
 * buffer, which is written with one call (the underlying xWrite) before
 * anything that could observe the file — xSync, xRead, xFileSize,
 * xTruncate, xFetch, a file control — and at xClose. A write that does
 * not continue the buffer flushes it first, so writes reach the file in
 * the order SQLite made them.
 */
#include "store/store_wal_vfs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Largest gathered run: the unix VFS writes at most 128 KiB - 1 bytes per
 * call (its seekAndWriteFd() masks the length with 0x1ffff), so 31 frames
 * of 4 KiB pages; a longer commit flushes along the way.
 */
#define WAL_BUFFER_MAX 0x1ffffu

#define VFS_NAME "nhid-wal"

struct wal_file {
    sqlite3_file base;   /* pMethods = wal_methods */
    sqlite3_file *real;  /* the underlying VFS's file, in the memory after this struct */
    unsigned char *buf;  /* WAL_BUFFER_MAX bytes, allocated on the first write */
    size_t len;          /* bytes gathered */
    sqlite3_int64 start; /* file offset of buf[0] */
};

static sqlite3_vfs g_vfs;
static sqlite3_vfs *g_real;
static sqlite3_io_methods g_methods;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_registered;

static int wal_flush(struct wal_file *f)
{
    if (f->len == 0)
        return SQLITE_OK;
    int src = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->start);
    f->len = 0;
    return src;
}

static int wal_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
    struct wal_file *f = (struct wal_file *)file;
    size_t n = (size_t)amt;

    if (f->len > 0 && (off != f->start + (sqlite3_int64)f->len || f->len + n > WAL_BUFFER_MAX)) {
        int src = wal_flush(f);
        if (src != SQLITE_OK)
            return src;
    }
    if (n > WAL_BUFFER_MAX)
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    if (f->buf == NULL && (f->buf = malloc(WAL_BUFFER_MAX)) == NULL)
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    if (f->len == 0)
        f->start = off;
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return SQLITE_OK;
}

static int wal_close(sqlite3_file *file)
{
    struct wal_file *f = (struct wal_file *)file;
    int src = wal_flush(f);
    int csrc = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    return src != SQLITE_OK ? src : csrc;
}

static int wal_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
    struct wal_file *f = (struct wal_file *)file;
    int src = wal_flush(f);
    return src != SQLITE_OK ? src : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int wal_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct wal_file *f = (struct wal_file *)file;
    int src = wal_flush(f);
    return src != SQLITE_OK ? src : f->real->pMethods->xTruncate(f->real, size);
}

static int wal_sync(sqlite3_file *file, int flags)
{
    struct wal_file *f = (struct wal_file *)file;
    int src = wal_flush(f);
    return src != SQLITE_OK ? src : f->real->pMethods->xSync(f->real, flags);
}

static int wal_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct wal_file *f = (struct wal_file *)file;
    int src = wal_flush(f);
    return src != SQLITE_OK ? src : f->real->pMethods->xFileSize(f->real, size);
}

static int wal_lock(sqlite3_file *file, int level)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->xLock(f->real, level);
}

static int wal_unlock(sqlite3_file *file, int level)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int wal_check_reserved(sqlite3_file *file, int *out)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wal_file_control(sqlite3_file *file, int op, void *arg)
{
    struct wal_file *f = (struct wal_file *)file;
    int src = wal_flush(f);
    return src != SQLITE_OK ? src : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wal_sector_size(sqlite3_file *file)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int wal_device_characteristics(sqlite3_file *file)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* A WAL file has no shared memory of its own (the -shm belongs to the database); forwarded. */
static int wal_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->xShmMap(f->real, region, size, extend, out);
}

static int wal_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void wal_shm_barrier(sqlite3_file *file)
{
    struct wal_file *f = (struct wal_file *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static int wal_shm_unmap(sqlite3_file *file, int delete_flag)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int wal_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    struct wal_file *f = (struct wal_file *)file;
    int src = wal_flush(f);
    if (src != SQLITE_OK || f->real->pMethods->iVersion < 3) {
        *out = NULL; /* no memory map: SQLite reads instead */
        return src;
    }
    return f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int wal_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    struct wal_file *f = (struct wal_file *)file;
    return f->real->pMethods->iVersion < 3 ? SQLITE_OK
                                           : f->real->pMethods->xUnfetch(f->real, off, p);
}

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return g_real->xOpen(g_real, name, file, flags, out_flags); /* in place, its own methods */

    struct wal_file *f = (struct wal_file *)file;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    int src = g_real->xOpen(g_real, name, f->real, flags, out_flags);
    if (src != SQLITE_OK || f->real->pMethods == NULL) {
        f->base.pMethods = NULL; /* SQLite does not close a file whose open failed */
        return src != SQLITE_OK ? src : SQLITE_CANTOPEN;
    }
    f->base.pMethods = &g_methods;
    return SQLITE_OK;
}

/* The rest of the VFS is the underlying one's. */
static int vfs_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return g_real->xDelete(g_real, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return g_real->xAccess(g_real, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return g_real->xFullPathname(g_real, name, n, out);
}

static void *vfs_dl_open(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return g_real->xDlOpen(g_real, name);
}

static void vfs_dl_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    g_real->xDlError(g_real, n, out);
}

static void (*vfs_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return g_real->xDlSym(g_real, h, sym);
}

static void vfs_dl_close(sqlite3_vfs *v, void *h)
{
    (void)v;
    g_real->xDlClose(g_real, h);
}

static int vfs_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return g_real->xRandomness(g_real, n, out);
}

static int vfs_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return g_real->xSleep(g_real, us);
}

static int vfs_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return g_real->xCurrentTime(g_real, out);
}

static int vfs_get_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return g_real->xGetLastError ? g_real->xGetLastError(g_real, n, out) : 0;
}

static int vfs_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return g_real->xCurrentTimeInt64(g_real, out);
}

static void vfs_register(void)
{
    g_real = sqlite3_vfs_find(NULL);
    /* Version 2 methods (shared memory; no xSetSystemCall) are all a WAL needs. */
    if (g_real == NULL || g_real->iVersion < 2 || g_real->xCurrentTimeInt64 == NULL)
        return;
    g_methods = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = wal_close,
        .xRead = wal_read,
        .xWrite = wal_write,
        .xTruncate = wal_truncate,
        .xSync = wal_sync,
        .xFileSize = wal_file_size,
        .xLock = wal_lock,
        .xUnlock = wal_unlock,
        .xCheckReservedLock = wal_check_reserved,
        .xFileControl = wal_file_control,
        .xSectorSize = wal_sector_size,
        .xDeviceCharacteristics = wal_device_characteristics,
        .xShmMap = wal_shm_map,
        .xShmLock = wal_shm_lock,
        .xShmBarrier = wal_shm_barrier,
        .xShmUnmap = wal_shm_unmap,
        .xFetch = wal_fetch,
        .xUnfetch = wal_unfetch,
    };
    g_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct wal_file) + g_real->szOsFile,
        .mxPathname = g_real->mxPathname,
        .zName = VFS_NAME,
        .xOpen = vfs_open,
        .xDelete = vfs_delete,
        .xAccess = vfs_access,
        .xFullPathname = vfs_full_pathname,
        .xDlOpen = vfs_dl_open,
        .xDlError = vfs_dl_error,
        .xDlSym = vfs_dl_sym,
        .xDlClose = vfs_dl_close,
        .xRandomness = vfs_randomness,
        .xSleep = vfs_sleep,
        .xCurrentTime = vfs_current_time,
        .xGetLastError = vfs_get_last_error,
        .xCurrentTimeInt64 = vfs_current_time_int64,
    };
    g_registered = sqlite3_vfs_register(&g_vfs, 0) == SQLITE_OK;
}

const char *nhid_wal_vfs_name(void)
{
    pthread_once(&g_once, vfs_register);
    return g_registered ? VFS_NAME : NULL;
}
