/*
 * checkpoint — the WAL checkpointer of a store (store_checkpoint.h).
 *
 * PASSIVE checkpoints copy every frame no reader still needs and never
 * wait for readers or the writer; the writer restarts the WAL from its
 * start at its next commit once everything was copied. If the WAL has
 * grown past the threshold again when a checkpoint ends, the next one
 * starts at once.
 */
#include "store/store_checkpoint.h"

#include "core/core.h"

#include <pthread.h>
#include <stdlib.h>

#define MOD "store"

struct nhid_checkpointer {
    sqlite3 *db;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool wanted; /* a commit left the WAL past the threshold */
    bool closing;
    unsigned long runs;
    int asked_at; /* WAL frames at the last request (writer thread only) */
    pthread_t thread;
};

static void *checkpointer_main(void *arg)
{
    struct nhid_checkpointer *cp = arg;

    pthread_mutex_lock(&cp->mu);
    for (;;) {
        while (!cp->wanted && !cp->closing)
            pthread_cond_wait(&cp->wake, &cp->mu);
        if (cp->closing)
            break;
        cp->wanted = false;
        pthread_mutex_unlock(&cp->mu);

        int log_frames = 0, copied = 0;
        int src = sqlite3_wal_checkpoint_v2(cp->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                            &copied);
        /* BUSY: another connection is checkpointing (the writer closing); the next poke retries. */
        if (src != SQLITE_OK && src != SQLITE_BUSY)
            nhid_error(MOD, "checkpoint: %s (sqlite %d)", sqlite3_errmsg(cp->db), src);

        pthread_mutex_lock(&cp->mu);
        cp->runs++;
    }
    pthread_mutex_unlock(&cp->mu);
    return NULL;
}

/*
 * After each commit, on the writer thread. A checkpoint that copied every
 * frame lets the writer restart the WAL from its start, but only once no
 * reader still holds a snapshot that needs the old frames (loops keep
 * theirs for up to 50 ms); until then the WAL stays past the threshold.
 * So ask again only after another half threshold of frames, not after
 * every commit: each checkpoint costs two fsyncs, which the writer's own
 * fsync would queue behind.
 */
static int wal_hook(void *arg, sqlite3 *db, const char *schema, int frames)
{
    struct nhid_checkpointer *cp = arg;
    (void)db;
    (void)schema;
    if (frames < cp->asked_at)
        cp->asked_at = 0; /* the WAL was restarted */
    if (frames >= NHID_CHECKPOINT_FRAMES && frames >= cp->asked_at + NHID_CHECKPOINT_FRAMES / 2) {
        cp->asked_at = frames;
        pthread_mutex_lock(&cp->mu);
        if (!cp->wanted) {
            cp->wanted = true;
            pthread_cond_signal(&cp->wake);
        }
        pthread_mutex_unlock(&cp->mu);
    }
    return SQLITE_OK;
}

int nhid_checkpointer_start(const char *path, const char *vfs, struct nhid_checkpointer **out)
{
    int rc = NHID_OK;
    bool mu = false, cv = false;
    struct nhid_checkpointer *cp = calloc(1, sizeof(*cp));

    NHID_CHECK_ALLOC(cp);
    int src = sqlite3_open_v2(path, &cp->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs);
    if (src != SQLITE_OK) {
        nhid_error(MOD, "open %s: %s", path, cp->db ? sqlite3_errmsg(cp->db) : "no memory");
        NHID_FAIL(NHID_ERR_IO);
    }
    /*
     * FULL: the checkpoint syncs the WAL before copying it and the
     * database after, whatever the writer's setting. The copy reads WAL
     * frames straight into the database; a small page cache is enough.
     */
    if (sqlite3_exec(cp->db, "PRAGMA synchronous = FULL; PRAGMA cache_size = -256", NULL, NULL,
                     NULL) != SQLITE_OK) {
        nhid_error(MOD, "checkpointer set-up: %s", sqlite3_errmsg(cp->db));
        NHID_FAIL(NHID_ERR_IO);
    }
    if (pthread_mutex_init(&cp->mu, NULL) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    mu = true;
    if (pthread_cond_init(&cp->wake, NULL) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    cv = true;
    if (pthread_create(&cp->thread, NULL, checkpointer_main, cp) != 0)
        NHID_FAIL(NHID_ERR_NOMEM);
    (void)pthread_setname_np(cp->thread, "nhid-ckpt");
    *out = cp;
    cp = NULL;
out:
    if (cp) {
        if (cv)
            pthread_cond_destroy(&cp->wake);
        if (mu)
            pthread_mutex_destroy(&cp->mu);
        sqlite3_close_v2(cp->db);
        free(cp);
    }
    return rc;
}

void nhid_checkpointer_attach(struct nhid_checkpointer *cp, sqlite3 *db)
{
    (void)sqlite3_wal_hook(db, wal_hook, cp);
}

unsigned long nhid_checkpointer_count(struct nhid_checkpointer *cp)
{
    pthread_mutex_lock(&cp->mu);
    unsigned long n = cp->runs;
    pthread_mutex_unlock(&cp->mu);
    return n;
}

void nhid_checkpointer_stop(struct nhid_checkpointer *cp)
{
    if (cp == NULL)
        return;
    pthread_mutex_lock(&cp->mu);
    cp->closing = true;
    pthread_cond_signal(&cp->wake);
    pthread_mutex_unlock(&cp->mu);
    pthread_join(cp->thread, NULL);
    pthread_cond_destroy(&cp->wake);
    pthread_mutex_destroy(&cp->mu);
    sqlite3_close_v2(cp->db);
    free(cp);
}
