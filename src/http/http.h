/*
 * http — the HTTPS API server: TLS/mTLS listeners (OpenSSL through
 * libevent's bufferevent_openssl), an HTTP/1.1 request reader with limits
 * on every size and count, one event loop per core, and the request
 * pipeline (route → authenticate → authorize → handler → audit → reply).
 *
 * Why not evhttp: libevent 2.1's evhttp rejects methods it does not know,
 * and Vault clients (python3-hvac among them) send the LIST verb; it also
 * lacks per-server connection limits and deferred, ordered replies across
 * threads. The request head parser here is small, bounded and fuzzed
 * (tests/fuzz/http_request_fuzz.c); I/O, TLS and timers stay libevent's.
 */
#ifndef NHID_HTTP_H
#define NHID_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "engine/engine.h"

struct nhid_http_config {
    const char *address;        /* "127.0.0.1:8200", "[::1]:8200", "0.0.0.0:8200" */
    const char *cert_file;      /* server certificate chain (PEM) */
    const char *key_file;       /* its private key (PEM) */
    const char *client_ca_file; /* if set, every client must present a cert chaining to it */
    bool tls13_only;            /* tls_min_version = "tls13" */
    unsigned threads;           /* event loops; 0 = number of cores */
};

struct nhid_http;

/*
 * Bind, load TLS material and start the event-loop threads. Requests are
 * routed through `router` and served with `core`'s services. On error
 * errbuf names the problem (e.g. "listen 127.0.0.1:8200: Address in use").
 */
NHID_MUST_CHECK int nhid_http_start(const struct nhid_http_config *cfg, struct nhid_core *core,
                                    const struct nhid_router *router, struct nhid_http **out,
                                    char *errbuf, size_t errlen);
/* The port actually bound (useful with port 0). */
uint16_t nhid_http_port(const struct nhid_http *h);
/* Stop accepting, finish in-flight requests, stop the loops and free. Safe with NULL. */
void nhid_http_stop(struct nhid_http *h);

/* ---- request head parsing (pure; exposed for unit tests and fuzzing) ---- */

#define NHID_HTTP_HEADERS_MAX 128

struct nhid_http_header {
    const char *name;  /* points into the parsed buffer */
    const char *value; /* trimmed */
};

struct nhid_http_head {
    const char *method;          /* "GET", "LIST", ... */
    const char *target;          /* "/v1/sys/health?x=y" */
    int minor;                   /* HTTP/1.<minor> */
    struct nhid_http_header headers[NHID_HTTP_HEADERS_MAX];
    unsigned n_headers;
    int64_t content_length;      /* -1 if absent */
    bool chunked;                /* Transfer-Encoding: chunked */
    bool keep_alive;
    bool expect_continue;
};

/*
 * Parse a request head (request line and header fields, RFC 9112 §3, §5)
 * in place. buf holds exactly the head including the final CRLFCRLF and is
 * modified (NULs inserted). On error returns NHID_ERR_INVALID or
 * NHID_ERR_TOO_LARGE with *status set (400, 414, 431, 501, 505) and
 * errbuf naming the problem.
 */
NHID_MUST_CHECK int nhid_http_parse_head(char *buf, size_t len, size_t max_headers,
                                         size_t max_url, struct nhid_http_head *out, int *status,
                                         char *errbuf, size_t errlen);
/* Case-insensitive header lookup; NULL if absent. */
const char *nhid_http_header(const struct nhid_http_head *h, const char *name);

#endif /* NHID_HTTP_H */
