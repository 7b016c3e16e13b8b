/*
 * store_wal_vfs.h — a SQLite VFS that gathers WAL writes (wal_vfs.c). Not
 * for use outside src/store/: engines see only store.h.
 *
 * SQLite appends a commit to the WAL as two pwrite calls per page (a
 * 24-byte frame header, then the page): ~80 system calls for a typical
 * group-commit batch. With synchronous=FULL every commit ends with an
 * xSync of the WAL before the commit is published to readers (the
 * wal-index), so writes to a WAL file wait in memory until that xSync
 * and reach the kernel in a few large pwrite calls. Nothing is published
 * before the sync and nothing acknowledged before it returns
 * (docs/dev/storage.md, "Gathered WAL writes").
 */
#ifndef NHID_STORE_WAL_VFS_H
#define NHID_STORE_WAL_VFS_H

#include <sqlite3.h>

/*
 * Register the VFS (once per process) on top of SQLite's default VFS and
 * return its name for sqlite3_open_v2(), or NULL if it could not be
 * registered (then the default VFS is used as it is). Only for
 * connections whose WAL writer runs with synchronous=FULL.
 */
const char *nhid_wal_vfs_name(void);

#endif /* NHID_STORE_WAL_VFS_H */
