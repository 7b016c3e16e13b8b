/*
 * server — `nhid server`: loads the configuration (file, then NHID_*
 * environment, then flags), opens the store, barrier and audit broker,
 * registers the engines, starts the HTTPS listeners and the scheduler,
 * and runs until SIGINT/SIGTERM.
 *
 * `nhid server --dev` is a throwaway server: a generated CA and server
 * certificate, a fresh SQLite store, initialised with one key share and
 * unsealed automatically. Never use it for real secrets.
 */
#include "server/server.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ssl.h>

#include "audit/audit.h"
#include "auth/token/token.h"
#include "barrier/barrier.h"
#include "config/config.h"
#include "crypto/crypto.h"
#include "engine/engine.h"
#include "http/http.h"
#include "identity/identity.h"
#include "database/database.h"
#include "lease/lease.h"
#include "kv/kv.h"
#include "auth/approle/approle.h"
#include "auth/join/join.h"
#include "auth/cert/cert.h"
#include "pki/pki.h"
#include "policy/policy.h"
#include "server/server_internal.h"
#include "store/store.h"
#include "sys/sys.h"

#define MOD "server"
#define PATH_LEN 1024

/* Every engine of the server, in authentication order. */
static const struct nhid_engine *const all_engines[] = {
    &nhid_sys_engine,     &nhid_token_engine,    &nhid_policy_engine, &nhid_identity_engine,
    &nhid_approle_engine, &nhid_join_engine,     &nhid_cert_engine,   &nhid_kv_engine,
    &nhid_lease_engine,   &nhid_database_engine, &nhid_pki_engine,
};

struct server_opts {
    bool dev;
    char data_dir[PATH_LEN];
    char config_file[PATH_LEN];
    char address[256];
    char cert_file[PATH_LEN];
    char key_file[PATH_LEN];
    char client_ca_file[PATH_LEN];
    char storage_path[PATH_LEN];
    char trust_domain[256];
    char api_addr[256];
    char log_level[16];
    bool tls13_only;
    unsigned threads;
    json_t *audit_devices; /* [{"name","path","description"}] */
    struct nhid_limits limits;
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: nhid server [-dev] [-data DIR] [-config FILE] [flags]\n\n"
               "Start the nhid server.\n\n"
               "  -dev              throwaway dev server: generated TLS, fresh SQLite store,\n"
               "                    initialised and unsealed automatically (NOT for production)\n"
               "  -data DIR         dev data directory (default: a new temporary directory)\n"
               "  -config FILE      configuration file (HCL or .json); see docs/configuration.md\n"
               "  -address A        listen address (NHID_LISTEN_ADDRESS), default 127.0.0.1:8200\n"
               "  -tls-cert-file F  server certificate chain (NHID_TLS_CERT_FILE)\n"
               "  -tls-key-file F   server private key (NHID_TLS_KEY_FILE)\n"
               "  -tls-client-ca-file F  require client certificates from this CA "
               "(NHID_TLS_CLIENT_CA_FILE)\n"
               "  -storage-path F   SQLite database file (NHID_STORAGE_PATH)\n"
               "  -trust-domain D   SPIFFE trust domain (NHID_TRUST_DOMAIN)\n"
               "  -api-addr URL     externally reachable address (NHID_API_ADDR)\n"
               "  -log-level L      debug, info, warn or error (NHID_LOG_LEVEL)\n"
               "  -threads N        event loops (default: number of cores)\n\n"
               "Example:\n  nhid server -dev\n  nhid server -config /etc/nhid/nhid.hcl\n");
}

/* Copy src into dst (truncating at len-1) unless src is NULL or empty. */
static void set_str(char *dst, size_t len, const char *src)
{
    if (src == NULL || *src == '\0' || len == 0)
        return;
    size_t n = strlen(src);
    if (n >= len)
        n = len - 1;
    memmove(dst, src, n);
    dst[n] = '\0';
}

/* Parse "-flag value", "-flag=value", "--flag value". */
static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    if (a[0] != '-')
        return NULL;
    a += (a[1] == '-') ? 2 : 1;
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int config_size(json_t *limits, const char *key, size_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(limits, key);
    if (v == NULL)
        return NHID_OK;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = (size_t)json_integer_value(v);
        return NHID_OK;
    }
    uint64_t n;
    char e[200];
    if (!json_is_string(v) || nhid_config_parse_size(json_string_value(v), &n, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "limits.%s: %s", key,
                 json_is_string(v) ? e : "expected a size such as \"1MiB\"");
        return NHID_ERR_INVALID;
    }
    *out = (size_t)n;
    return NHID_OK;
}

static int config_duration(json_t *limits, const char *key, unsigned *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(limits, key);
    if (v == NULL)
        return NHID_OK;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = (unsigned)json_integer_value(v);
        return NHID_OK;
    }
    int64_t secs;
    char e[200];
    if (!json_is_string(v) || nhid_duration_parse(json_string_value(v), &secs, e, sizeof(e)) < 0 ||
        secs <= 0) {
        snprintf(err, errlen, "limits.%s: %s", key,
                 json_is_string(v) ? e : "expected a duration such as \"60s\"");
        return NHID_ERR_INVALID;
    }
    *out = (unsigned)secs;
    return NHID_OK;
}

static json_t *first_block(json_t *cfg, const char *type)
{
    json_t *arr = json_object_get(cfg, type);
    if (json_is_array(arr))
        return json_array_get(arr, 0);
    return json_is_object(arr) ? arr : NULL;
}

static int apply_config_file(struct server_opts *o, char *err, size_t errlen)
{
    int rc = NHID_OK;
    json_t *cfg = NULL;
    char perr[512];
    if (nhid_config_load_file(o->config_file, &cfg, perr, sizeof(perr)) < 0) {
        snprintf(err, errlen, "%s", perr);
        return NHID_ERR_INVALID;
    }
    static const char *const known[] = {"trust_domain",  "api_addr", "log_level", "listener",
                                        "storage",       "audit",    "limits",    "seal",
                                        "disable_mlock", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(cfg, k, v)
    {
        bool ok = false;
        for (const char *const *q = known; *q; q++)
            ok |= strcmp(*q, k) == 0;
        if (!ok) {
            snprintf(err, errlen, "%.200s: unknown setting \"%.64s\" (see docs/configuration.md)",
                     o->config_file, k);
            NHID_FAIL(NHID_ERR_INVALID);
        }
    }
    set_str(o->trust_domain, sizeof(o->trust_domain),
            json_string_value(json_object_get(cfg, "trust_domain")));
    set_str(o->api_addr, sizeof(o->api_addr), json_string_value(json_object_get(cfg, "api_addr")));
    set_str(o->log_level, sizeof(o->log_level),
            json_string_value(json_object_get(cfg, "log_level")));
    json_t *l = first_block(cfg, "listener");
    if (l) {
        set_str(o->address, sizeof(o->address), json_string_value(json_object_get(l, "address")));
        set_str(o->cert_file, sizeof(o->cert_file),
                json_string_value(json_object_get(l, "tls_cert_file")));
        set_str(o->key_file, sizeof(o->key_file),
                json_string_value(json_object_get(l, "tls_key_file")));
        set_str(o->client_ca_file, sizeof(o->client_ca_file),
                json_string_value(json_object_get(l, "tls_client_ca_file")));
        const char *minv = json_string_value(json_object_get(l, "tls_min_version"));
        if (minv && strcmp(minv, "tls13") == 0)
            o->tls13_only = true;
        else if (minv && strcmp(minv, "tls12") != 0) {
            snprintf(err, errlen, "listener.tls_min_version \"%s\": use \"tls12\" or \"tls13\"",
                     minv);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        json_t *th = json_object_get(l, "threads");
        if (th) {
            if (!json_is_integer(th) || json_integer_value(th) < 1 || json_integer_value(th) > 64) {
                snprintf(err, errlen, "listener.threads: expected a number from 1 to 64");
                NHID_FAIL(NHID_ERR_INVALID);
            }
            o->threads = (unsigned)json_integer_value(th);
        }
    }
    json_t *s = first_block(cfg, "storage");
    if (s) {
        json_t *labels = json_object_get(s, NHID_CONFIG_LABELS_KEY);
        const char *type = json_string_value(json_array_get(labels, 0));
        if (type && strcmp(type, "sqlite") != 0) {
            snprintf(err, errlen,
                     "storage \"%s\": not supported yet (use storage \"sqlite\" { path = ... })",
                     type);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        set_str(o->storage_path, sizeof(o->storage_path),
                json_string_value(json_object_get(s, "path")));
    }
    json_t *audits = json_object_get(cfg, "audit");
    size_t i;
    json_t *a;
    json_array_foreach(audits, i, a)
    {
        json_t *labels = json_object_get(a, NHID_CONFIG_LABELS_KEY);
        const char *type = json_string_value(json_array_get(labels, 0));
        const char *name = json_string_value(json_array_get(labels, 1));
        const char *path = json_string_value(json_object_get(a, "path"));
        if (type == NULL || strcmp(type, "file") != 0 || path == NULL) {
            snprintf(err, errlen,
                     "audit block %zu: expected audit \"file\" \"NAME\" { path = "
                     "\"/var/log/nhid/audit.log\" }",
                     i + 1);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        const char *desc = json_string_value(json_object_get(a, "description"));
        json_array_append_new(o->audit_devices,
                              json_pack("{s:s, s:s, s:s}", "name", name ? name : "file", "path",
                                        path, "description", desc ? desc : ""));
    }
    json_t *lim = first_block(cfg, "limits");
    if (lim) {
        NHID_TRY(config_size(lim, "max_request_body", &o->limits.max_request_body, err, errlen));
        NHID_TRY(config_size(lim, "max_header_bytes", &o->limits.max_header_bytes, err, errlen));
        NHID_TRY(config_size(lim, "max_url_length", &o->limits.max_url_len, err, errlen));
        NHID_TRY(config_size(lim, "max_value_size", &o->limits.max_value_size, err, errlen));
        NHID_TRY(config_size(lim, "max_header_count", &o->limits.max_header_count, err, errlen));
        json_t *mc = json_object_get(lim, "max_connections");
        if (mc) {
            if (!json_is_integer(mc) || json_integer_value(mc) < 1 ||
                json_integer_value(mc) > 1000000) {
                snprintf(err, errlen,
                         "limits.max_connections: expected a number from 1 to "
                         "1000000");
                NHID_FAIL(NHID_ERR_INVALID);
            }
            o->limits.max_connections = (unsigned)json_integer_value(mc);
        }
        NHID_TRY(config_duration(lim, "idle_timeout", &o->limits.idle_timeout_s, err, errlen));
        NHID_TRY(config_duration(lim, "read_timeout", &o->limits.read_timeout_s, err, errlen));
    }
out:
    json_decref(cfg);
    return rc;
}

static void apply_env(struct server_opts *o)
{
    set_str(o->address, sizeof(o->address), getenv("NHID_LISTEN_ADDRESS"));
    set_str(o->cert_file, sizeof(o->cert_file), getenv("NHID_TLS_CERT_FILE"));
    set_str(o->key_file, sizeof(o->key_file), getenv("NHID_TLS_KEY_FILE"));
    set_str(o->client_ca_file, sizeof(o->client_ca_file), getenv("NHID_TLS_CLIENT_CA_FILE"));
    set_str(o->storage_path, sizeof(o->storage_path), getenv("NHID_STORAGE_PATH"));
    set_str(o->trust_domain, sizeof(o->trust_domain), getenv("NHID_TRUST_DOMAIN"));
    set_str(o->api_addr, sizeof(o->api_addr), getenv("NHID_API_ADDR"));
    set_str(o->log_level, sizeof(o->log_level), getenv("NHID_LOG_LEVEL"));
}

/* ---- engines' lifecycle hooks ------------------------------------------- */

static int after_unseal(struct nhid_core *core)
{
    for (size_t i = 0; i < core->n_engines; i++) {
        if (core->engines[i]->on_unseal == NULL)
            continue;
        int rc = core->engines[i]->on_unseal(core);
        if (rc < 0) {
            nhid_error(MOD, "engine %s failed to start after unseal: %s", core->engines[i]->name,
                       nhid_strerror(rc));
            return rc;
        }
    }
    return NHID_OK;
}

static void before_seal(struct nhid_core *core)
{
    for (size_t i = core->n_engines; i-- > 0;)
        if (core->engines[i]->on_seal)
            core->engines[i]->on_seal(core);
}

/* ---- scheduler ---------------------------------------------------------- */

struct scheduler {
    struct nhid_core *core;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    unsigned ticks;
    int64_t next_run[32][8];
};

static void *scheduler_main(void *arg)
{
    struct scheduler *s = arg;
    pthread_setname_np(pthread_self(), "nhid-scheduler");
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->lock);
        /* Give memory freed by bursts of requests back to the OS when idle. */
        if (++s->ticks % 10 == 0)
            malloc_trim(0);
        if (!nhid_barrier_sealed(s->core->barrier)) {
            int64_t now = nhid_now();
            for (size_t e = 0; e < s->core->n_engines && e < 32; e++) {
                const struct nhid_engine *eng = s->core->engines[e];
                for (size_t j = 0; j < eng->n_jobs && j < 8; j++) {
                    if (now < s->next_run[e][j])
                        continue;
                    s->next_run[e][j] = now + eng->jobs[j].interval_seconds;
                    int rc = eng->jobs[j].run(s->core);
                    if (rc < 0 && rc != NHID_ERR_SEALED)
                        nhid_warn(MOD, "job %s failed: %s", eng->jobs[j].name, nhid_strerror(rc));
                }
            }
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- dev mode ----------------------------------------------------------- */

static int write_secret_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return NHID_ERR_IO;
    fchmod(fileno(f), 0600);
    fprintf(f, "%s\n", content);
    return fclose(f) == 0 ? NHID_OK : NHID_ERR_IO;
}

static int read_secret_file(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NHID_ERR_NOT_FOUND;
    if (fgets(out, (int)len, f) == NULL) {
        fclose(f);
        return NHID_ERR_IO;
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return NHID_OK;
}

/* Initialise (first run) or reopen the dev store and unseal it. */
static int dev_bootstrap(struct nhid_core *core, const char *dir, char root[NHID_TOKEN_MAX],
                         char share_b64[128])
{
    int rc = NHID_OK;
    char keyfile[PATH_LEN + 32], tokfile[PATH_LEN + 32];
    snprintf(keyfile, sizeof(keyfile), "%s/dev-unseal-key", dir);
    snprintf(tokfile, sizeof(tokfile), "%s/dev-root-token", dir);
    struct nhid_seal_status st;
    uint8_t **shares = NULL;
    uint8_t share[NHID_SHARE_LEN];
    NHID_TRY(nhid_barrier_status(core->barrier, &st));
    if (!st.initialized) {
        char err[256] = "";
        rc = nhid_sys_initialize(core, 1, 1, &shares, root, err, sizeof(err));
        if (rc < 0) {
            nhid_error(MOD, "dev init failed: %s", err[0] ? err : nhid_strerror(rc));
            goto out;
        }
        char *b64 = NULL;
        NHID_TRY(nhid_base64_encode(shares[0], NHID_SHARE_LEN, &b64));
        snprintf(share_b64, 128, "%s", b64);
        nhid_free_secret_str(b64);
        NHID_TRY(write_secret_file(keyfile, share_b64));
        NHID_TRY(write_secret_file(tokfile, root));
        memcpy(share, shares[0], NHID_SHARE_LEN);
    } else {
        if (read_secret_file(keyfile, share_b64, 128) < 0 ||
            read_secret_file(tokfile, root, NHID_TOKEN_MAX) < 0) {
            nhid_error(MOD, "%s holds an initialised store but no dev-unseal-key/dev-root-token",
                       dir);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        uint8_t *raw = NULL;
        size_t len = 0;
        NHID_TRY(nhid_base64_decode(share_b64, strlen(share_b64), &raw, &len));
        if (len != NHID_SHARE_LEN) {
            nhid_free_secret(raw, len);
            NHID_FAIL(NHID_ERR_INVALID);
        }
        memcpy(share, raw, NHID_SHARE_LEN);
        nhid_free_secret(raw, len);
    }
    NHID_TRY(nhid_barrier_unseal(core->barrier, share, NHID_SHARE_LEN, &st));
    if (st.sealed)
        NHID_FAIL(NHID_ERR_INTERNAL);
    NHID_TRY(after_unseal(core));
out:
    nhid_wipe(share, sizeof(share));
    if (shares)
        nhid_shamir_free_shares(shares, 1, NHID_SHARE_LEN);
    return rc;
}

/* ---- main --------------------------------------------------------------- */

int nhid_server_main(int argc, char **argv)
{
    struct server_opts o = {0};
    int exit_code = 1;
    struct nhid_store *store = NULL;
    struct nhid_barrier *barrier = NULL;
    struct nhid_audit *audit = NULL;
    struct nhid_router *router = NULL;
    struct nhid_http *http = NULL;
    struct scheduler sched = {0};
    bool sched_started = false;
    char err[1024] = "";
    int64_t t0 = nhid_mono_ns();
    /*
     * OpenSSL's error-string tables cost ~280 KiB resident for text the
     * server prints only in debug logs (TLS handshake failures show the
     * packed error code instead, e.g. error:0A000086, which
     * `openssl errstr` decodes). Must run before any other OpenSSL call.
     */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS, NULL);

    o.audit_devices = json_array();
    o.limits = (struct nhid_limits){.max_request_body = 1 << 20,
                                    .max_header_count = 64,
                                    .max_header_bytes = 16 << 10,
                                    .max_url_len = 4 << 10,
                                    .max_connections = 4096,
                                    .idle_timeout_s = 60,
                                    .read_timeout_s = 10,
                                    .max_value_size = 1 << 20};
    snprintf(o.address, sizeof(o.address), "127.0.0.1:8200");
    snprintf(o.trust_domain, sizeof(o.trust_domain), "nhid.local");
    snprintf(o.log_level, sizeof(o.log_level), "info");

    /* First pass: -dev and -config decide the base; flags override later. */
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-dev") || !strcmp(argv[i], "--dev"))
            o.dev = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "-help") ||
                 !strcmp(argv[i], "--help")) {
            usage(stdout);
            json_decref(o.audit_devices);
            return 0;
        } else if ((v = flag_value(argc, argv, &i, "config")))
            set_str(o.config_file, sizeof(o.config_file), v);
    }
    if (o.config_file[0] && apply_config_file(&o, err, sizeof(err)) < 0) {
        fprintf(stderr, "Error: %s\n", err);
        goto out;
    }
    apply_env(&o);
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-dev") || !strcmp(argv[i], "--dev"))
            continue;
        if ((v = flag_value(argc, argv, &i, "config")))
            continue;
        if ((v = flag_value(argc, argv, &i, "data")))
            set_str(o.data_dir, sizeof(o.data_dir), v);
        else if ((v = flag_value(argc, argv, &i, "address")))
            set_str(o.address, sizeof(o.address), v);
        else if ((v = flag_value(argc, argv, &i, "tls-cert-file")))
            set_str(o.cert_file, sizeof(o.cert_file), v);
        else if ((v = flag_value(argc, argv, &i, "tls-key-file")))
            set_str(o.key_file, sizeof(o.key_file), v);
        else if ((v = flag_value(argc, argv, &i, "tls-client-ca-file")))
            set_str(o.client_ca_file, sizeof(o.client_ca_file), v);
        else if ((v = flag_value(argc, argv, &i, "storage-path")))
            set_str(o.storage_path, sizeof(o.storage_path), v);
        else if ((v = flag_value(argc, argv, &i, "trust-domain")))
            set_str(o.trust_domain, sizeof(o.trust_domain), v);
        else if ((v = flag_value(argc, argv, &i, "api-addr")))
            set_str(o.api_addr, sizeof(o.api_addr), v);
        else if ((v = flag_value(argc, argv, &i, "log-level")))
            set_str(o.log_level, sizeof(o.log_level), v);
        else if ((v = flag_value(argc, argv, &i, "threads")))
            o.threads = (unsigned)atoi(v);
        else {
            fprintf(stderr, "Error: unknown flag \"%s\" (see nhid server -h)\n", argv[i]);
            goto out;
        }
    }
    enum nhid_log_level lvl;
    if (nhid_log_level_parse(o.log_level, &lvl) < 0) {
        fprintf(stderr, "Error: log level \"%s\": use debug, info, warn or error\n", o.log_level);
        goto out;
    }
    nhid_log_set_level(lvl);
    nhid_harden_process();
    /*
     * Memory: two malloc arenas are plenty (event loops allocate little and
     * free quickly); more would keep per-thread heaps resident.
     */
    mallopt(M_ARENA_MAX, 2);

    if (o.dev) {
        if (o.data_dir[0] == '\0') {
            char tmpl[] = "/tmp/nhid-dev-XXXXXX";
            if (mkdtemp(tmpl) == NULL) {
                fprintf(stderr, "Error: cannot create a dev data directory: %s\n", strerror(errno));
                goto out;
            }
            set_str(o.data_dir, sizeof(o.data_dir), tmpl);
        } else if (mkdir(o.data_dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "Error: -data %s: %s\n", o.data_dir, strerror(errno));
            goto out;
        }
        char ca[PATH_LEN + 32];
        if (!o.cert_file[0]) {
            char cert[PATH_LEN + 32], key[PATH_LEN + 32];
            if (nhid_dev_tls_generate(o.data_dir, ca, cert, key, sizeof(ca)) < 0) {
                fprintf(stderr, "Error: cannot generate dev TLS certificates in %s\n", o.data_dir);
                goto out;
            }
            set_str(o.cert_file, sizeof(o.cert_file), cert);
            set_str(o.key_file, sizeof(o.key_file), key);
        }
        if (!o.storage_path[0])
            snprintf(o.storage_path, sizeof(o.storage_path), "%.900s/nhid.db", o.data_dir);
    }
    if (!o.cert_file[0] || !o.key_file[0]) {
        fprintf(stderr, "Error: TLS is required: set listener.tls_cert_file and tls_key_file "
                        "(or -tls-cert-file/-tls-key-file), or use -dev\n");
        goto out;
    }
    if (!o.storage_path[0]) {
        fprintf(stderr, "Error: no storage configured: add storage \"sqlite\" { path = "
                        "\"/var/lib/nhid/nhid.db\" } to the config file, or use -dev\n");
        goto out;
    }

    struct nhid_store_config scfg = {.backend = "sqlite", .path = o.storage_path, .durable = true};
    if (nhid_store_open(&scfg, &store) < 0) {
        fprintf(stderr, "Error: cannot open storage %s\n", o.storage_path);
        goto out;
    }
    if (nhid_barrier_new(store, &barrier) < 0 || nhid_audit_new(&audit) < 0) {
        fprintf(stderr, "Error: cannot start the barrier or the audit broker\n");
        goto out;
    }
    static struct nhid_core core;
    memset(&core, 0, sizeof(core));
    core.store = store;
    core.barrier = barrier;
    core.audit = audit;
    core.dev = o.dev;
    core.limits = o.limits;
    core.engines = all_engines;
    core.n_engines = NHID_ARRAY_LEN(all_engines);
    core.after_unseal = after_unseal;
    core.before_seal = before_seal;
    core.config_audit = o.audit_devices;
    core.storage_type = "sqlite";
    core.start_time = nhid_now();
    set_str(core.trust_domain, sizeof(core.trust_domain), o.trust_domain);
    if (o.api_addr[0])
        set_str(core.api_addr, sizeof(core.api_addr), o.api_addr);
    else
        snprintf(core.api_addr, sizeof(core.api_addr), "https://%.240s", o.address);

    if (nhid_router_new(all_engines, NHID_ARRAY_LEN(all_engines), &router) < 0) {
        fprintf(stderr, "Error: invalid routing table\n");
        goto out;
    }

    char root[NHID_TOKEN_MAX] = "", share[128] = "";
    if (o.dev && dev_bootstrap(&core, o.data_dir, root, share) < 0) {
        fprintf(stderr, "Error: dev bootstrap failed\n");
        goto out;
    }

    /* Signals are taken by sigwait() in this thread only. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct nhid_http_config hcfg = {.address = o.address,
                                    .cert_file = o.cert_file,
                                    .key_file = o.key_file,
                                    .client_ca_file = o.client_ca_file[0] ? o.client_ca_file : NULL,
                                    .tls13_only = o.tls13_only,
                                    .threads = o.threads};
    if (nhid_http_start(&hcfg, &core, router, &http, err, sizeof(err)) < 0) {
        fprintf(stderr, "Error: %s\n", err);
        goto out;
    }
    sched.core = &core;
    pthread_mutex_init(&sched.lock, NULL);
    pthread_cond_init(&sched.cond, NULL);
    if (pthread_create(&sched.thread, NULL, scheduler_main, &sched) == 0)
        sched_started = true;

    double ms = (double)(nhid_mono_ns() - t0) / 1e6;
    char addr[300];
    snprintf(addr, sizeof(addr), "https://%s", o.address);
    if (o.dev) {
        char ca[PATH_LEN + 32];
        snprintf(ca, sizeof(ca), "%s/ca.pem", o.data_dir);
        printf("nhid dev server is running (started in %.1f ms).\n\n"
               "WARNING: dev mode keeps its unseal key in the data directory and\n"
               "unseals itself. Never store real secrets in it.\n\n"
               "  Address:     %s\n"
               "  Data dir:    %s\n"
               "  Unseal key:  %s\n"
               "  Root token:  %s\n\n"
               "Paste this into your shell to use the CLI:\n\n"
               "export NHID_ADDR=%s NHID_CACERT=%s NHID_TOKEN=%s\n\n",
               ms, addr, o.data_dir, share, root, addr, ca, root);
        fflush(stdout);
        nhid_wipe(share, sizeof(share));
        nhid_wipe(root, sizeof(root));
    }
    nhid_info(MOD, "listening on %s (%s), storage sqlite %s, started in %.1f ms", addr,
              o.client_ca_file[0] ? "mTLS required" : "TLS", o.storage_path, ms);
    /*
     * This thread now only waits for signals: drop its store connection and
     * give back what start-up (key generation, schema load) freed.
     */
    nhid_store_thread_done(store);
    malloc_trim(0);
    long released_kb = nhid_release_startup_pages();
    nhid_debug(MOD, "released %ld kB of start-up code pages", released_kb);
    if (!o.dev) {
        struct nhid_seal_status st;
        if (nhid_barrier_status(barrier, &st) == NHID_OK)
            nhid_info(MOD, "%s",
                      !st.initialized ? "not initialized: run `nhid operator init`"
                                      : "sealed: run `nhid operator unseal`");
    }

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            nhid_info(MOD, "SIGHUP: configuration reload is not supported yet; ignoring");
            continue;
        }
        nhid_info(MOD, "signal %d: shutting down", sig);
        break;
    }
    exit_code = 0;
out:
    if (sched_started) {
        pthread_mutex_lock(&sched.lock);
        sched.stop = true;
        pthread_cond_signal(&sched.cond);
        pthread_mutex_unlock(&sched.lock);
        pthread_join(sched.thread, NULL);
    }
    nhid_http_stop(http);
    nhid_audit_free(audit);
    nhid_barrier_free(barrier);
    nhid_store_close(store);
    nhid_router_free(router);
    json_decref(o.audit_devices);
    return exit_code;
}
