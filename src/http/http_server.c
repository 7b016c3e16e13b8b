/*
 * http_server — listeners, TLS, event loops and the HTTP/1.1 connection
 * state machine. One event loop per core; each loop owns its own
 * SO_REUSEPORT listening socket so the kernel spreads connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "http/http_internal.h"
#include "store/store.h"

#define MOD "http"

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);

static const char *status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

/* ---- connections -------------------------------------------------------- */

static void conn_reset_request(struct conn *c)
{
    free(c->head_buf);
    c->head_buf = NULL;
    memset(&c->head, 0, sizeof(c->head));
    if (c->body)
        evbuffer_free(c->body);
    c->body = NULL;
    c->body_expected = 0;
    c->chunk_left = 0;
    c->chunk_state = 0;
    c->chunked = false;
    c->req_started_ns = 0;
}

void http_conn_free(struct conn *c)
{
    if (c == NULL)
        return;
    conn_reset_request(c);
    if (c->bev) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        if (ssl)
            SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    atomic_fetch_sub(&c->loop->srv->open_conns, 1);
    free(c);
}

/* Close now, or mark dead if a request is still being processed elsewhere. */
static void conn_close(struct conn *c)
{
    if (c->state == CONN_BUSY) {
        c->dead = true;
        if (c->bev) {
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        }
        return;
    }
    http_conn_free(c);
}

static void set_read_timeout(struct conn *c, unsigned seconds)
{
    struct timeval rt = {seconds, 0};
    struct timeval wt = {c->loop->srv->core->limits.idle_timeout_s, 0};
    bufferevent_set_timeouts(c->bev, seconds ? &rt : NULL, &wt);
}

/* Send a plain error produced by the transport itself and close. */
static void conn_fail(struct conn *c, int status, const char *msg)
{
    json_t *j = json_pack("{s:[s]}", "errors", msg);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    c->keep_alive = false;
    c->state = CONN_BUSY; /* http_conn_respond finishes the request */
    http_conn_respond(c, status, "application/json", NULL, body ? body : "{}",
                      body ? strlen(body) : 2);
    free(body);
}

/* Append s to buf at *used if it fits; false (and *used unchanged) if not. */
static bool head_put(char *buf, size_t cap, size_t *used, const char *s, size_t n)
{
    if (n > cap - *used)
        return false;
    memcpy(buf + *used, s, n);
    *used += n;
    return true;
}

/*
 * The status line and header fields of a reply (RFC 9112 §4, §6), without
 * printf: this runs for every response. 0 if they do not fit in cap.
 */
static size_t response_head(char *buf, size_t cap, int status, const char *content_type,
                            size_t body_len, bool keep_alive, const char *extra_headers)
{
    char num[24];
    size_t used = 0;
    const char *text = status_text(status);
    int n = snprintf(num, sizeof(num), "HTTP/1.1 %d ", status);
    if (n < 0 || !head_put(buf, cap, &used, num, (size_t)n) ||
        !head_put(buf, cap, &used, text, strlen(text)) ||
        !head_put(buf, cap, &used, "\r\nContent-Type: ", 16) ||
        !head_put(buf, cap, &used, content_type, strlen(content_type)) ||
        !head_put(buf, cap, &used, "\r\nContent-Length: ", 18))
        return 0;
    size_t d = sizeof(num);
    do {
        num[--d] = (char)('0' + body_len % 10);
        body_len /= 10;
    } while (body_len != 0);
    static const char tail[] = "\r\nCache-Control: no-store\r\n";
    static const char close_field[] = "Connection: close\r\n";
    if (!head_put(buf, cap, &used, num + d, sizeof(num) - d) ||
        !head_put(buf, cap, &used, tail, sizeof(tail) - 1) ||
        (!keep_alive && !head_put(buf, cap, &used, close_field, sizeof(close_field) - 1)) ||
        !head_put(buf, cap, &used, extra_headers, strlen(extra_headers)) ||
        !head_put(buf, cap, &used, "\r\n", 2))
        return 0;
    return used;
}

void http_conn_respond(struct conn *c, int status, const char *content_type,
                       const char *extra_headers, const void *body, size_t len)
{
    if (c->dead) {
        c->state = CONN_CLOSING;
        http_conn_free(c);
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char head[1024];
    size_t hlen = response_head(head, sizeof(head), status, content_type, len, c->keep_alive,
                                extra_headers ? extra_headers : "");
    /* Head and body in one buffer chain: one TLS record for small replies. */
    struct evbuffer_iovec v;
    size_t total = hlen + (body ? len : 0);
    if (hlen > 0 && evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) == 1 &&
        v.iov_len >= total) {
        memcpy(v.iov_base, head, hlen);
        if (body && len)
            memcpy((char *)v.iov_base + hlen, body, len);
        v.iov_len = total;
        evbuffer_commit_space(out, &v, 1);
    } else {
        if (hlen > 0)
            evbuffer_add(out, head, hlen);
        else
            evbuffer_add_printf(out,
                                "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                                "Cache-Control: no-store\r\n%s%s\r\n",
                                status, status_text(status), content_type, len,
                                c->keep_alive ? "" : "Connection: close\r\n",
                                extra_headers ? extra_headers : "");
        if (len && body)
            evbuffer_add(out, body, len);
    }
    /*
     * A TLS bufferevent on a socket writes only from its write event, one
     * epoll round later (and with two epoll_ctl() calls to arm and disarm
     * EPOLLOUT). Run that event now, in this loop turn: the reply goes out
     * at once and, with the change list, the arm/disarm pair cancels out.
     */
    event_active(&c->bev->ev_write, EV_WRITE, 1);
    conn_reset_request(c);
    if (!c->keep_alive) {
        c->state = CONN_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setcb(c->bev, NULL, conn_write_cb, conn_event_cb, c);
        return;
    }
    c->state = CONN_HEAD;
    set_read_timeout(c, c->loop->srv->core->limits.idle_timeout_s);
    bufferevent_enable(c->bev, EV_READ);
    /* Pipelined bytes already buffered: handle them on the next loop turn. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        http_conn_free(c);
}

/* Decode chunked transfer coding (RFC 9112 §7.1). 1 = done, 0 = need more, <0 error. */
static int read_chunked(struct conn *c, struct evbuffer *in, size_t max_body)
{
    for (;;) {
        if (c->chunk_state == 0 || c->chunk_state == 3) {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
            if (line == NULL) {
                if (evbuffer_get_length(in) > 1024)
                    return -1;
                return 0;
            }
            if (c->chunk_state == 3) { /* trailer section: ignore fields until blank line */
                bool blank = n == 0;
                free(line);
                if (blank)
                    return 1;
                continue;
            }
            char *end;
            errno = 0;
            unsigned long long sz = strtoull(line, &end, 16);
            bool bad = end == line || errno != 0 || (*end != '\0' && *end != ';') || n > 64;
            free(line);
            if (bad)
                return -1;
            if (sz == 0) {
                c->chunk_state = 3;
                continue;
            }
            if (sz > max_body || evbuffer_get_length(c->body) + sz > max_body)
                return -2;
            c->chunk_left = (size_t)sz;
            c->chunk_state = 1;
        }
        if (c->chunk_state == 1) {
            size_t avail = evbuffer_get_length(in);
            if (avail == 0)
                return 0;
            size_t take = avail < c->chunk_left ? avail : c->chunk_left;
            evbuffer_remove_buffer(in, c->body, take);
            c->chunk_left -= take;
            if (c->chunk_left > 0)
                return 0;
            c->chunk_state = 2;
        }
        if (c->chunk_state == 2) {
            if (evbuffer_get_length(in) < 2)
                return 0;
            char crlf[2];
            evbuffer_remove(in, crlf, 2);
            if (crlf[0] != '\r' || crlf[1] != '\n')
                return -1;
            c->chunk_state = 0;
        }
    }
}

static void conn_dispatch(struct conn *c)
{
    size_t len = evbuffer_get_length(c->body);
    char *body = malloc(len + 1);
    if (body == NULL) {
        conn_fail(c, 500, "out of memory");
        return;
    }
    evbuffer_remove(c->body, body, len);
    body[len] = '\0';
    c->state = CONN_BUSY;
    /* No read timeout while the request is processed. */
    set_read_timeout(c, 0);
    http_pipeline_dispatch(c, body, len);
}

static void conn_process_input(struct conn *c)
{
    struct nhid_http *srv = c->loop->srv;
    const struct nhid_limits *lim = &srv->core->limits;
    struct evbuffer *in = bufferevent_get_input(c->bev);

    if (c->state == CONN_HEAD) {
        /* RFC 9112 §2.2: ignore empty lines before a request line. */
        while (evbuffer_get_length(in) >= 2) {
            char two[2];
            evbuffer_copyout(in, two, 2);
            if (two[0] != '\r' || two[1] != '\n')
                break;
            evbuffer_drain(in, 2);
        }
        if (evbuffer_get_length(in) == 0)
            return;
        if (c->req_started_ns == 0) {
            c->req_started_ns = nhid_mono_ns();
            set_read_timeout(c, lim->read_timeout_s);
        }
        struct evbuffer_ptr pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (pos.pos < 0) {
            if (evbuffer_get_length(in) > lim->max_header_bytes)
                conn_fail(c, 431, "request header section too large");
            return;
        }
        size_t head_len = (size_t)pos.pos + 4;
        if (head_len > lim->max_header_bytes) {
            conn_fail(c, 431, "request header section too large");
            return;
        }
        c->head_buf = malloc(head_len + 1);
        if (c->head_buf == NULL) {
            conn_fail(c, 500, "out of memory");
            return;
        }
        evbuffer_remove(in, c->head_buf, head_len);
        c->head_buf[head_len] = '\0';
        int status = 400;
        char err[160];
        if (nhid_http_parse_head(c->head_buf, head_len, lim->max_header_count, lim->max_url_len,
                                 &c->head, &status, err, sizeof(err)) < 0) {
            conn_fail(c, status, err);
            return;
        }
        c->keep_alive = c->head.keep_alive;
        c->chunked = c->head.chunked;
        c->body = evbuffer_new();
        if (c->body == NULL) {
            conn_fail(c, 500, "out of memory");
            return;
        }
        if (c->head.content_length > 0) {
            if ((uint64_t)c->head.content_length > lim->max_request_body) {
                char msg[128];
                snprintf(msg, sizeof(msg), "request body larger than the %zu-byte limit",
                         lim->max_request_body);
                conn_fail(c, 413, msg);
                return;
            }
            c->body_expected = (size_t)c->head.content_length;
        }
        /* RFC 9110 §10.1.1: tell the client to send the body now. */
        if (c->head.expect_continue && (c->body_expected > 0 || c->chunked) &&
            evbuffer_get_length(in) == 0)
            evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        c->state = CONN_BODY;
    }
    if (c->state == CONN_BODY) {
        if (c->chunked) {
            int r = read_chunked(c, in, lim->max_request_body);
            if (r == -2) {
                conn_fail(c, 413, "request body larger than the configured limit");
                return;
            }
            if (r < 0) {
                conn_fail(c, 400, "malformed chunked request body");
                return;
            }
            if (r == 0)
                return;
        } else {
            size_t have = evbuffer_get_length(c->body);
            size_t need = c->body_expected - have;
            size_t avail = evbuffer_get_length(in);
            if (need > 0) {
                evbuffer_remove_buffer(in, c->body, avail < need ? avail : need);
                if (evbuffer_get_length(c->body) < c->body_expected)
                    return;
            }
        }
        /* A slow client trickling bytes: bound the total time of one request. */
        if ((nhid_mono_ns() - c->req_started_ns) / 1000000000LL >
            (int64_t)lim->read_timeout_s * 2) {
            conn_fail(c, 408, "request took too long to arrive");
            return;
        }
        conn_dispatch(c);
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->state == CONN_HEAD || c->state == CONN_BODY)
        conn_process_input(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->handshake_done = true;
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
        if (peer) {
            c->peer = peer;
            c->peer_chain = SSL_get_peer_cert_chain(ssl);
            /* Verified by TLS only when the listener requires a client CA. */
            c->mtls = c->loop->srv->cfg.client_ca_file && SSL_get_verify_result(ssl) == X509_V_OK;
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->state == CONN_HEAD && c->req_started_ns != 0) {
            c->keep_alive = false;
            conn_fail(c, 408, "request timed out");
            return;
        }
        conn_close(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!c->handshake_done) {
            atomic_fetch_add(&c->loop->srv->tls_failures, 1);
            unsigned long e;
            while ((e = bufferevent_get_openssl_error(bev)) != 0) {
                char buf[160];
                ERR_error_string_n(e, buf, sizeof(buf));
                nhid_debug(MOD, "TLS handshake from %s failed: %s", c->remote, buf);
            }
        }
        conn_close(c);
    }
}

/*
 * An event base whose epoll changes are applied in one go before each
 * wait: TLS bufferevents add the write event when a reply is queued and
 * delete it once it is written, usually within one loop turn, and the
 * change list folds each such pair into no epoll_ctl() call at all. (Its
 * caveat, fds that share a file description through dup(), does not
 * apply: every connection is its own accept()ed socket.)
 */
static struct event_base *loop_base_new(void)
{
    struct event_config *cfg = event_config_new();
    if (cfg == NULL)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

static void accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lst;
    (void)salen;
    struct http_loop *l = arg;
    struct nhid_http *srv = l->srv;
    if (atomic_load(&srv->stopping) ||
        atomic_fetch_add(&srv->open_conns, 1) >= srv->core->limits.max_connections) {
        if (!atomic_load(&srv->stopping))
            atomic_fetch_sub(&srv->open_conns, 1);
        atomic_fetch_add(&srv->conns_refused, 1);
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct conn *c = calloc(1, sizeof(*c));
    SSL *ssl = c ? SSL_new(srv->ssl_ctx) : NULL;
    if (ssl == NULL) {
        free(c);
        atomic_fetch_sub(&srv->open_conns, 1);
        evutil_closesocket(fd);
        return;
    }
    c->loop = l;
    c->state = CONN_HEAD;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, c->remote, sizeof(c->remote));
        c->remote_port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, c->remote, sizeof(c->remote));
        c->remote_port = ntohs(in6->sin6_port);
    }
    c->bev = bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        atomic_fetch_sub(&srv->open_conns, 1);
        free(c);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    /* Bound what one connection may buffer while a request is processed. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             srv->core->limits.max_request_body +
                                 srv->core->limits.max_header_bytes + 65536);
    bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
    /* The handshake and the first request must arrive within read_timeout. */
    set_read_timeout(c, srv->core->limits.read_timeout_s);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- cross-thread completions ------------------------------------------- */

void http_loop_post(struct http_loop *l, struct pending *p)
{
    pthread_mutex_lock(&l->qlock);
    p->next = NULL;
    /*
     * Wake the loop only when the queue goes from empty to non-empty:
     * wake_cb takes the whole queue under the lock, so a non-empty queue
     * means a wake-up is already on its way. Under load this turns one
     * wake-up per completion into one per batch.
     */
    bool was_empty = l->q_head == NULL;
    if (l->q_tail)
        l->q_tail->next = p;
    else
        l->q_head = p;
    l->q_tail = p;
    pthread_mutex_unlock(&l->qlock);
    if (was_empty)
        event_active(l->wake, EV_READ, 0);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_loop *l = arg;
    pthread_mutex_lock(&l->qlock);
    struct pending *p = l->q_head;
    l->q_head = l->q_tail = NULL;
    pthread_mutex_unlock(&l->qlock);
    while (p) {
        struct pending *next = p->next;
        http_pipeline_complete(p);
        p = next;
    }
}

/* ---- worker pool for blocking handlers ----------------------------------- */

static void *pool_main(void *arg);

void http_pool_submit(struct nhid_http *srv, struct pending *p)
{
    struct http_pool *pool = &srv->pool;
    pthread_mutex_lock(&pool->lock);
    p->next = NULL;
    if (pool->tail)
        pool->tail->next = p;
    else
        pool->head = p;
    pool->tail = p;
    /*
     * Workers start on demand: administrative requests are rare, and an
     * idle thread still costs resident memory (stack, connection).
     */
    if (pool->idle == 0 && pool->n < HTTP_POOL_THREADS && !pool->stop &&
        pthread_create(&pool->threads[pool->n], NULL, pool_main, pool) == 0)
        pool->n++;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
}

static void *pool_main(void *arg)
{
    struct http_pool *pool = arg;
    pthread_setname_np(pthread_self(), "nhid-worker");
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        pool->idle++;
        while (pool->head == NULL && !pool->stop)
            pthread_cond_wait(&pool->cond, &pool->lock);
        pool->idle--;
        if (pool->head == NULL && pool->stop)
            break;
        struct pending *p = pool->head;
        pool->head = p->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pthread_mutex_unlock(&pool->lock);
        http_pool_run(p);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* How often a loop gives back its lingering read snapshot (store.h), busy or idle. */
#define SNAPSHOT_RELEASE_MS 50

static void snapshot_release_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_loop *l = arg;
    nhid_store_read_release(l->srv->core->store);
}

static void *loop_main(void *arg)
{
    struct http_loop *l = arg;
    struct nhid_store *store = l->srv->core->store;
    char name[16];
    snprintf(name, sizeof(name), "nhid-http-%u", l->index);
    pthread_setname_np(pthread_self(), name);
    /*
     * Requests on this loop reuse one read snapshot while nothing is
     * written; the timer bounds how long an idle loop holds it (it would
     * hold back WAL checkpoints).
     */
    struct event *release = NULL;
    if (store) {
        release = event_new(l->base, -1, EV_PERSIST, snapshot_release_cb, l);
        struct timeval tv = {0, SNAPSHOT_RELEASE_MS * 1000};
        if (release && event_add(release, &tv) == 0)
            nhid_store_read_linger(store, true);
    }
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    if (store)
        nhid_store_read_linger(store, false);
    if (release)
        event_free(release);
    return NULL;
}

/* ---- set-up --------------------------------------------------------------- */

static int parse_address(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen)
{
    int len = sizeof(*ss);
    memset(ss, 0, sizeof(*ss));
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)ss, &len) != 0)
        return NHID_ERR_INVALID;
    *sslen = (socklen_t)len;
    return NHID_OK;
}

static int accept_any_client_cert(int preverify_ok, X509_STORE_CTX *ctx)
{
    (void)preverify_ok;
    (void)ctx;
    return 1;
}

static int tls_setup(struct nhid_http *h, char *errbuf, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NHID_ERR_CRYPTO;
    h->ssl_ctx = ctx;
    /* TLS below 1.2 is refused (RFC 8996 deprecates 1.0 and 1.1). */
    SSL_CTX_set_min_proto_version(ctx, h->cfg.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* TLS 1.2: forward-secret AEAD suites only. */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"nhid", 4);
    if (SSL_CTX_use_certificate_chain_file(ctx, h->cfg.cert_file) != 1) {
        snprintf(errbuf, errlen, "tls_cert_file \"%s\": cannot load a PEM certificate chain",
                 h->cfg.cert_file);
        return NHID_ERR_INVALID;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, h->cfg.key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(errbuf, errlen, "tls_key_file \"%s\": cannot load a PEM private key",
                 h->cfg.key_file);
        return NHID_ERR_INVALID;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(errbuf, errlen, "tls_key_file does not match tls_cert_file");
        return NHID_ERR_INVALID;
    }
    if (h->cfg.client_ca_file && *h->cfg.client_ca_file) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(h->cfg.client_ca_file);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, h->cfg.client_ca_file, NULL) != 1) {
            snprintf(errbuf, errlen, "tls_client_ca_file \"%s\": cannot load PEM CA certificates",
                     h->cfg.client_ca_file);
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return NHID_ERR_INVALID;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        /* mTLS required: a missing or untrusted client certificate fails the handshake. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_verify_depth(ctx, 8);
    } else {
        /*
         * No listener-wide client CA: a client certificate is optional and
         * is checked by the cert auth method against its own trusted CAs.
         * The handshake still proves possession of the certificate's key.
         */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_client_cert);
        SSL_CTX_set_verify_depth(ctx, 8);
    }
    ERR_clear_error();
    return NHID_OK;
}

static evutil_socket_t bind_socket(const struct sockaddr_storage *ss, socklen_t sslen, char *errbuf,
                                   size_t errlen, const char *addr)
{
    evutil_socket_t fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(errbuf, errlen, "listen %s: %s", addr, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)ss, sslen) != 0 || listen(fd, 1024) != 0) {
        snprintf(errbuf, errlen, "listen %s: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Refuse to share a port with another live listener (SO_REUSEPORT would let us). */
static bool port_in_use(const struct sockaddr_storage *ss, socklen_t sslen)
{
    evutil_socket_t fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    bool busy = bind(fd, (const struct sockaddr *)ss, sslen) != 0 && errno == EADDRINUSE;
    close(fd);
    return busy;
}

int nhid_http_start(const struct nhid_http_config *cfg, struct nhid_core *core,
                    const struct nhid_router *router, struct nhid_http **out, char *errbuf,
                    size_t errlen)
{
    int rc = NHID_OK;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);

    struct nhid_http *h = calloc(1, sizeof(*h));
    NHID_CHECK_ALLOC(h);
    h->cfg = *cfg;
    h->core = core;
    h->router = router;
    NHID_TRY(tls_setup(h, errbuf, errlen));

    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_address(cfg->address, &ss, &sslen) < 0) {
        snprintf(errbuf, errlen,
                 "listener address \"%s\": expected HOST:PORT such as 127.0.0.1:8200",
                 cfg->address);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    uint16_t port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    if (port != 0 && port_in_use(&ss, sslen)) {
        snprintf(errbuf, errlen, "listen %s: address already in use", cfg->address);
        NHID_FAIL(NHID_ERR_IO);
    }
    h->n_loops = cfg->threads ? cfg->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (h->n_loops == 0 || h->n_loops > 64)
        h->n_loops = 2;
    h->loops = calloc(h->n_loops, sizeof(*h->loops));
    NHID_CHECK_ALLOC(h->loops);
    size_t nroutes = nhid_router_count(router) + 1;
    for (unsigned i = 0; i < h->n_loops; i++) {
        struct http_loop *l = &h->loops[i];
        l->srv = h;
        l->index = i;
        pthread_mutex_init(&l->qlock, NULL);
        l->metrics = calloc(nroutes, sizeof(*l->metrics));
        NHID_CHECK_ALLOC(l->metrics);
        l->base = loop_base_new();
        NHID_CHECK_ALLOC(l->base);
        l->wake = event_new(l->base, -1, 0, wake_cb, l);
        NHID_CHECK_ALLOC(l->wake);
        evutil_socket_t fd = bind_socket(&ss, sslen, errbuf, errlen, cfg->address);
        if (fd < 0)
            NHID_FAIL(NHID_ERR_IO);
        if (i == 0) {
            /* With port 0 the kernel picks one; the other loops bind the same. */
            struct sockaddr_storage bound;
            socklen_t blen = sizeof(bound);
            getsockname(fd, (struct sockaddr *)&bound, &blen);
            ss = bound;
            sslen = blen;
            h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                        : ((struct sockaddr_in *)&bound)->sin_port);
        }
        l->listener = evconnlistener_new(l->base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (l->listener == NULL) {
            close(fd);
            NHID_FAIL(NHID_ERR_IO);
        }
    }
    pthread_mutex_init(&h->pool.lock, NULL);
    pthread_cond_init(&h->pool.cond, NULL);
    /* One worker now; more start on demand (http_pool_submit). */
    if (pthread_create(&h->pool.threads[0], NULL, pool_main, &h->pool) == 0)
        h->pool.n = 1;
    if (h->pool.n == 0) {
        snprintf(errbuf, errlen, "cannot start worker threads");
        NHID_FAIL(NHID_ERR_INTERNAL);
    }
    core->http = h;
    core->http_metrics = http_metrics_render;
    for (unsigned i = 0; i < h->n_loops; i++) {
        if (pthread_create(&h->loops[i].thread, NULL, loop_main, &h->loops[i]) != 0) {
            snprintf(errbuf, errlen, "cannot start event-loop thread");
            h->n_loops = i; /* only join what started */
            NHID_FAIL(NHID_ERR_INTERNAL);
        }
    }
    *out = h;
    h = NULL;
out:
    if (h) {
        core->http = NULL;
        core->http_metrics = NULL;
        nhid_http_stop(h);
    }
    return rc;
}

uint16_t nhid_http_port(const struct nhid_http *h)
{
    return h->port;
}

void nhid_http_stop(struct nhid_http *h)
{
    if (h == NULL)
        return;
    atomic_store(&h->stopping, true);
    /* Workers finish what they hold (posting to loops still running), then stop. */
    if (h->pool.n) {
        pthread_mutex_lock(&h->pool.lock);
        h->pool.stop = true;
        pthread_cond_broadcast(&h->pool.cond);
        unsigned n = h->pool.n;
        pthread_mutex_unlock(&h->pool.lock);
        for (unsigned i = 0; i < n; i++)
            pthread_join(h->pool.threads[i], NULL);
    }
    for (unsigned i = 0; i < h->n_loops; i++)
        if (h->loops[i].base)
            event_base_loopexit(h->loops[i].base, NULL);
    for (unsigned i = 0; i < h->n_loops; i++)
        if (h->loops[i].thread)
            pthread_join(h->loops[i].thread, NULL);
    for (unsigned i = 0; h->loops && i < h->n_loops; i++) {
        struct http_loop *l = &h->loops[i];
        if (l->listener)
            evconnlistener_free(l->listener);
        if (l->wake)
            event_free(l->wake);
        if (l->base)
            event_base_free(l->base);
        free(l->metrics);
        pthread_mutex_destroy(&l->qlock);
    }
    free(h->loops);
    if (h->ssl_ctx)
        SSL_CTX_free(h->ssl_ctx);
    free(h);
}
