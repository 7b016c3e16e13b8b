/* http internals shared by http_server.c (transport) and http_pipeline.c. */
#ifndef NHID_HTTP_INTERNAL_H
#define NHID_HTTP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "http/http.h"

#define HTTP_LATENCY_BUCKETS 14

struct route_metrics {
    _Atomic uint64_t by_class[6];                   /* 1xx..5xx by first digit */
    _Atomic uint64_t latency[HTTP_LATENCY_BUCKETS]; /* cumulative at render time */
    _Atomic uint64_t latency_sum_us;
};

struct http_loop;
struct conn;

/* One request in flight, from dispatch to reply. */
struct pending {
    struct pending *next; /* completion queue link */
    struct http_loop *loop;
    struct conn *conn;
    const struct nhid_route *route;
    const struct nhid_engine *engine;
    struct nhid_request req;
    struct nhid_response resp;
    char path[NHID_PATH_MAX];
    char *query;
    char *body;
    int stage;        /* 1 = handler done (store commit reported), 2 = audit done,
                         3 = commit and early audit both done */
    atomic_int parts; /* outstanding of {commit, early audit} */
    bool early_audit; /* the audit record was submitted before the commit finished */
    bool serialised;
    /* NHID_ROUTE_OPTIMISTIC: the handler's staged writes and audit record, for the writer. */
    struct nhid_txn *staged;
    struct nhid_audit_builder *staged_audit;
    struct nhid_audit_builder
        *audit_rec;           /* the record submitted (read by the audit thread until done) */
    char saved_entity_id[64]; /* req->auth before the staged run, restored for a re-run */
    char saved_identity[128];
    int store_rc;
    int audit_rc;
    char *out; /* serialised response body */
    size_t out_len;
    const char *out_type;
    char extra_headers[320];
};

struct http_loop {
    struct nhid_http *srv;
    unsigned index;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *wake; /* activated by other threads to deliver completions */
    pthread_mutex_t qlock;
    struct pending *q_head, *q_tail;
    struct route_metrics *metrics; /* [n_routes + 1]; last = unrouted */
    /* request ids: random prefix + counter (loop thread only) */
    bool id_ready;
    uint8_t id_prefix[16];
    uint64_t id_counter;
};

#define HTTP_POOL_THREADS 8

/* Worker threads for blocking (NHID_ROUTE_ADMIN) handlers. */
struct http_pool {
    pthread_t threads[HTTP_POOL_THREADS];
    unsigned n;    /* started (grows on demand up to HTTP_POOL_THREADS) */
    unsigned idle; /* waiting for work */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct pending *head, *tail;
    bool stop;
};

struct nhid_http {
    struct http_pool pool;
    struct nhid_http_config cfg;
    struct nhid_core *core;
    const struct nhid_router *router;
    SSL_CTX *ssl_ctx;
    uint16_t port;
    unsigned n_loops;
    struct http_loop *loops;
    atomic_uint open_conns;
    atomic_ullong write_conflicts; /* optimistic writes re-run in the writer */
    _Atomic uint64_t conns_refused;
    _Atomic uint64_t tls_failures;
    atomic_bool stopping;
};

enum conn_state { CONN_HEAD, CONN_BODY, CONN_BUSY, CONN_CLOSING };

struct conn {
    struct http_loop *loop;
    struct bufferevent *bev;
    char remote[64];
    uint16_t remote_port;
    enum conn_state state;
    bool handshake_done;
    bool mtls;
    X509 *peer;                  /* borrowed from the SSL session */
    STACK_OF(X509) * peer_chain; /* borrowed: what the client sent (leaf first) */
    bool dead;                   /* transport closed while a request was in flight */
    int64_t req_started_ns;
    /* the request being read */
    char *head_buf;
    struct nhid_http_head head;
    bool keep_alive;
    bool chunked;
    size_t body_expected;
    struct evbuffer *body;
    size_t chunk_left; /* bytes left in the current chunk */
    int chunk_state;   /* 0 size line, 1 data, 2 CRLF after data, 3 trailers */
};

/* transport → pipeline: a complete request is ready. Takes ownership of body bytes. */
void http_pipeline_dispatch(struct conn *c, char *body, size_t body_len);
/* pipeline → transport: deliver a completion from any thread to the loop. */
void http_loop_post(struct http_loop *l, struct pending *p);
/* loop thread: run a posted completion. */
void http_pipeline_complete(struct pending *p);
/* loop thread: write a full response and finish the request on this connection. */
void http_conn_respond(struct conn *c, int status, const char *content_type,
                       const char *extra_headers, const void *body, size_t len);
/* loop thread: free a connection whose transport died while busy. */
void http_conn_free(struct conn *c);
/* record per-route metrics for one finished request (loop thread). */
void http_metrics_record(struct http_loop *l, int route_index, int status, int64_t dur_ns);
/* Queue a request for a pool worker (any thread). */
void http_pool_submit(struct nhid_http *srv, struct pending *p);
/* Worker: run the handler of a queued request and post its completion. */
void http_pool_run(struct pending *p);
/* Prometheus text of the HTTP metrics; malloc'd. */
char *http_metrics_render(struct nhid_core *core);

#endif /* NHID_HTTP_INTERNAL_H */
