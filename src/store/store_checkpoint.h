/*
 * store_checkpoint.h — the WAL checkpointer of a store (checkpoint.c).
 * Not for use outside src/store/: engines see only store.h.
 *
 * SQLite checkpoints (copies WAL frames back into the database file and
 * fsyncs it) inside the COMMIT that crosses the WAL size threshold, on the
 * writer thread, stalling every write behind it. This thread does it on
 * its own connection instead: the writer's WAL hook pokes it, and a
 * PASSIVE checkpoint runs alongside later commits (SQLite allows one
 * checkpointer next to one writer; docs/dev/storage.md, "Checkpoints").
 */
#ifndef NHID_STORE_CHECKPOINT_H
#define NHID_STORE_CHECKPOINT_H

#include <stdbool.h>
#include <sqlite3.h>

/* WAL size, in frames (pages), at which the writer's hook asks for a checkpoint (~40 MiB). */
#define NHID_CHECKPOINT_FRAMES 10000

struct nhid_checkpointer;

/*
 * Open a connection to the database at path (WAL mode already set by the
 * writer) through the SQLite VFS named vfs (NULL: the default) and start
 * the thread. Caller stops it with
 * nhid_checkpointer_stop() before closing the writer's connection.
 */
__attribute__((warn_unused_result)) int nhid_checkpointer_start(const char *path, const char *vfs,
                                                                struct nhid_checkpointer **out);

/*
 * Install the hook on the writer's connection `db`: after each commit that
 * leaves at least NHID_CHECKPOINT_FRAMES frames in the WAL it wakes the
 * checkpointer. Replaces SQLite's own automatic checkpoints.
 */
void nhid_checkpointer_attach(struct nhid_checkpointer *cp, sqlite3 *db);

/* Checkpoints run so far (tests and statistics). */
unsigned long nhid_checkpointer_count(struct nhid_checkpointer *cp);

/* Stop the thread and close its connection. Safe with NULL. */
void nhid_checkpointer_stop(struct nhid_checkpointer *cp);

#endif /* NHID_STORE_CHECKPOINT_H */
