/*
 * cli_http — the CLI's HTTP client: one libcurl easy handle per command
 * (keep-alive across its requests), TLS 1.2 minimum, Vault's wire format.
 */
#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"

struct cli_client {
    CURL *curl;
    FILE *err;
    char addr[512]; /* no trailing '/' */
    char *token;    /* secret: wiped on free */
    bool no_token;  /* cli_client_send_token(c, false) */
    char url[4096]; /* last request's URL */
    char errbuf[CURL_ERROR_SIZE];
    char *body; /* last response body (wiped before reuse) */
    size_t len, cap;
    bool overflow;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct cli_client *c = arg;
    size_t n = size * nmemb;
    if (n > CLI_RESPONSE_MAX - c->len) {
        c->overflow = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (c->len + n + 1 > c->cap) {
        size_t ncap = c->cap ? c->cap : 8192;
        while (ncap < c->len + n + 1)
            ncap *= 2;
        /* Copy by hand so the old buffer (maybe holding a token) can be wiped. */
        char *nb = malloc(ncap);
        if (nb == NULL)
            return 0;
        if (c->body) {
            memcpy(nb, c->body, c->len);
            nhid_free_secret(c->body, c->cap);
        }
        c->body = nb;
        c->cap = ncap;
    }
    memcpy(c->body + c->len, ptr, n);
    c->len += n;
    c->body[c->len] = '\0';
    return n;
}

/* Read the token file ~/.nhid-token (first line, whitespace trimmed). */
static char *read_token_file(void)
{
    const char *home = getenv("HOME");
    char path[1024];
    if (home == NULL || nhid_fmt(path, sizeof(path), "%s/%s", home, CLI_TOKEN_FILE) < 0)
        return NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc = cli_read_stream(f, CLI_TOKEN_MAX, &buf, &len);
    fclose(f);
    if (rc < 0)
        return NULL;
    size_t start = 0;
    while (start < len && isspace((unsigned char)buf[start]))
        start++;
    size_t end = start;
    while (end < len && !isspace((unsigned char)buf[end]))
        end++;
    char *tok = strndup(buf + start, end - start);
    nhid_free_secret(buf, len + 1);
    return tok;
}

int cli_client_set_token(struct cli_client *c, const char *token)
{
    char *dup = NULL;
    if (token && *token) {
        if (strlen(token) > CLI_TOKEN_MAX)
            return NHID_ERR_TOO_LARGE;
        for (const char *p = token; *p; p++)
            if (!isprint((unsigned char)*p)) /* no header injection */
                return NHID_ERR_INVALID;
        dup = nhid_strdup(token);
        if (dup == NULL)
            return NHID_ERR_NOMEM;
    }
    nhid_free_secret_str(c->token);
    c->token = dup;
    return NHID_OK;
}

/* true for http:// addresses that leave this machine. */
static bool plaintext_remote(const char *addr)
{
    if (!nhid_has_prefix(addr, "http://"))
        return false;
    const char *h = addr + 7;
    return !(nhid_has_prefix(h, "127.") || nhid_has_prefix(h, "localhost") ||
             nhid_has_prefix(h, "[::1]"));
}

int cli_client_new(const struct cli_opts *opts, FILE *err, struct cli_client **out)
{
    int rc = NHID_OK;
    struct cli_client *c = NULL;
    const char *addr = opts->addr && *opts->addr ? opts->addr : CLI_DEFAULT_ADDR;

    if (!nhid_has_prefix(addr, "https://") && !nhid_has_prefix(addr, "http://")) {
        fprintf(err,
                "Error: address \"%.200s\" must start with https:// (set NHID_ADDR or -address)\n",
                addr);
        return NHID_ERR_INVALID;
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        fprintf(err, "Error: cannot initialise libcurl: %s\n", curl_easy_strerror(curl_init_rc));
        return NHID_ERR_INTERNAL;
    }
    c = calloc(1, sizeof(*c));
    NHID_CHECK_ALLOC(c);
    c->err = err;
    if (nhid_fmt(c->addr, sizeof(c->addr), "%s", addr) < 0) {
        fprintf(err, "Error: address is too long (at most %zu bytes)\n", sizeof(c->addr) - 1);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    for (size_t n = strlen(c->addr); n > 0 && c->addr[n - 1] == '/'; n--)
        c->addr[n - 1] = '\0';

    /* Token: NHID_TOKEN, else the file a login wrote. */
    const char *env_tok = getenv("NHID_TOKEN");
    if (env_tok && *env_tok) {
        if (cli_client_set_token(c, env_tok) < 0) {
            fprintf(err, "Error: NHID_TOKEN is malformed (printable characters, at most %d)\n",
                    CLI_TOKEN_MAX);
            NHID_FAIL(NHID_ERR_INVALID);
        }
    } else {
        c->token = read_token_file();
    }

    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        fprintf(err, "Error: cannot initialise libcurl\n");
        NHID_FAIL(NHID_ERR_NOMEM);
    }
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLI_CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TIMEOUT,
                     opts->timeout_s > 0 ? opts->timeout_s : CLI_REQUEST_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "nhid-cli/" NHID_VERSION);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    if (opts->ca_cert && *opts->ca_cert)
        curl_easy_setopt(h, CURLOPT_CAINFO, opts->ca_cert);
    if (opts->client_cert && *opts->client_cert)
        curl_easy_setopt(h, CURLOPT_SSLCERT, opts->client_cert);
    if (opts->client_key && *opts->client_key)
        curl_easy_setopt(h, CURLOPT_SSLKEY, opts->client_key);
    if ((opts->client_cert && *opts->client_cert) != (opts->client_key && *opts->client_key)) {
        fprintf(err, "Error: mTLS needs both NHID_CLIENT_CERT (-client-cert) and "
                     "NHID_CLIENT_KEY (-client-key)\n");
        NHID_FAIL(NHID_ERR_INVALID);
    }
    if (opts->skip_verify) {
        fprintf(err, "WARNING: TLS verification is OFF (NHID_SKIP_VERIFY / -tls-skip-verify): "
                     "anyone on the network can impersonate the server and read your token. "
                     "Use this only with a dev server.\n");
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (plaintext_remote(c->addr))
        fprintf(err, "WARNING: %s is plain http: the token is sent unencrypted.\n", c->addr);
    *out = c;
    c = NULL;
out:
    cli_client_free(c);
    return rc;
}

void cli_client_free(struct cli_client *c)
{
    if (c == NULL)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    nhid_free_secret_str(c->token);
    nhid_free_secret(c->body, c->cap);
    free(c);
}

void cli_client_send_token(struct cli_client *c, bool send)
{
    c->no_token = !send;
}

const char *cli_client_last_url(const struct cli_client *c)
{
    return c->url;
}

/* Build addr + "/v1/" + path, percent-encoding bytes that may not appear in a URL. */
static int build_url(struct cli_client *c, const char *path)
{
    while (*path == '/')
        path++;
    if (nhid_has_prefix(path, "v1/"))
        path += 3;
    int n = snprintf(c->url, sizeof(c->url), "%s/v1/", c->addr);
    if (n < 0 || (size_t)n >= sizeof(c->url))
        return NHID_ERR_TOO_LARGE;
    size_t o = (size_t)n;
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        bool plain = *p > 0x20 && *p < 0x7f && !strchr("\"#<>\\^`{|}", *p);
        if (o + 4 >= sizeof(c->url))
            return NHID_ERR_TOO_LARGE;
        if (plain) {
            c->url[o++] = (char)*p;
        } else {
            c->url[o++] = '%';
            c->url[o++] = hex[*p >> 4];
            c->url[o++] = hex[*p & 15];
        }
    }
    c->url[o] = '\0';
    return NHID_OK;
}

/* Print why no response arrived, with the likely fix. */
static int print_transport_error(struct cli_client *c, const char *method, CURLcode cc)
{
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        fprintf(c->err, "Error: cannot connect to %s: %s (is the server running? set NHID_ADDR)\n",
                c->addr, detail);
        return NHID_ERR_UNAVAILABLE;
    case CURLE_OPERATION_TIMEDOUT:
        fprintf(c->err, "Error: %s %s: timed out: %s (is the server running? set NHID_ADDR)\n",
                method, c->url, detail);
        return NHID_ERR_UNAVAILABLE;
    case CURLE_SSL_CACERT_BADFILE:
        fprintf(c->err, "Error: cannot load the CA bundle: %s (check NHID_CACERT or -ca-cert)\n",
                detail);
        return NHID_ERR_INVALID;
    case CURLE_PEER_FAILED_VERIFICATION:
        fprintf(c->err,
                "Error: cannot verify the TLS certificate of %s: %s (set NHID_CACERT or "
                "-ca-cert to the CA bundle that signed the server's certificate)\n",
                c->addr, detail);
        return NHID_ERR_DENIED;
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
        fprintf(c->err,
                "Error: cannot use the client certificate or key: %s (check NHID_CLIENT_CERT "
                "and NHID_CLIENT_KEY)\n",
                detail);
        return NHID_ERR_INVALID;
    case CURLE_SSL_CONNECT_ERROR:
        fprintf(c->err,
                "Error: TLS handshake with %s failed: %s (is it an https server? does it "
                "require a client certificate?)\n",
                c->addr, detail);
        return NHID_ERR_UPSTREAM;
    case CURLE_WRITE_ERROR:
        if (c->overflow) {
            fprintf(c->err, "Error: %s %s: response larger than %u bytes\n", method, c->url,
                    CLI_RESPONSE_MAX);
            return NHID_ERR_TOO_LARGE;
        }
        fprintf(c->err, "Error: %s %s: out of memory reading the response\n", method, c->url);
        return NHID_ERR_NOMEM;
    default:
        fprintf(c->err, "Error: %s %s: %s\n", method, c->url, detail);
        return NHID_ERR_UPSTREAM;
    }
}

int cli_request_raw(struct cli_client *c, const char *method, const char *path,
                    const char *content_type, const char *body, size_t bodylen, long *status,
                    const char **text, size_t *textlen)
{
    int rc = NHID_OK;
    struct curl_slist *hdrs = NULL;
    CURL *h = c->curl;

    if (build_url(c, path) < 0) {
        fprintf(c->err, "Error: path is too long: %.80s...\n", path);
        return NHID_ERR_TOO_LARGE;
    }
    /* Forget the previous response; it may hold secrets. */
    if (c->body) {
        nhid_wipe(c->body, c->len);
        c->body[0] = '\0';
    }
    c->len = 0;
    c->overflow = false;
    c->errbuf[0] = '\0';

    curl_easy_setopt(h, CURLOPT_URL, c->url);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        /* POST machinery carries the body (or an empty one); the verb is set explicitly. */
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? bodylen : 0));
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (content_type && body) {
        char ct[128];
        if (nhid_fmt(ct, sizeof(ct), "Content-Type: %s", content_type) < 0)
            return NHID_ERR_INVALID;
        hdrs = curl_slist_append(hdrs, ct);
    } else {
        hdrs = curl_slist_append(hdrs, "Content-Type:"); /* no form type for an empty body */
    }
    NHID_CHECK_ALLOC(hdrs);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    NHID_CHECK_ALLOC(hdrs);
    if (c->token && !c->no_token) {
        size_t n = strlen(c->token) + 32;
        char *th = malloc(n);
        NHID_CHECK_ALLOC(th);
        snprintf(th, n, "X-Vault-Token: %s", c->token);
        struct curl_slist *nh = curl_slist_append(hdrs, th);
        nhid_free_secret(th, n);
        NHID_CHECK_ALLOC(nh);
        hdrs = nh;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    CURLcode cc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    if (cc != CURLE_OK)
        NHID_FAIL(print_transport_error(c, method, cc));
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    *status = code;
    *text = c->body ? c->body : "";
    *textlen = c->len;
out:
    /* The token header copy is wiped before it is freed. */
    for (struct curl_slist *s = hdrs; s; s = s->next)
        nhid_wipe(s->data, strlen(s->data));
    curl_slist_free_all(hdrs);
    return rc;
}

int cli_request(struct cli_client *c, const char *method, const char *path, json_t *body,
                long *status, json_t **resp)
{
    char *dumped = NULL;
    if (body) {
        dumped = json_dumps(body, JSON_COMPACT);
        if (dumped == NULL) {
            fprintf(c->err, "Error: cannot encode the request body\n");
            return NHID_ERR_NOMEM;
        }
    }
    const char *text;
    size_t len;
    long code;
    int rc = cli_request_raw(c, method, path, dumped ? "application/json" : NULL, dumped,
                             dumped ? strlen(dumped) : 0, &code, &text, &len);
    nhid_free_secret_str(dumped);
    if (rc < 0)
        return rc;
    json_t *j = len ? json_loadb(text, len, 0, NULL) : NULL;
    *status = code;
    *resp = j;
    return NHID_OK;
}

int cli_status_to_err(long status)
{
    switch (status) {
    case 400:
        return NHID_ERR_INVALID;
    case 401:
    case 403:
        return NHID_ERR_DENIED;
    case 404:
        return NHID_ERR_NOT_FOUND;
    case 409:
        return NHID_ERR_CONFLICT;
    case 413:
        return NHID_ERR_TOO_LARGE;
    case 429:
        return NHID_ERR_RATE_LIMIT;
    case 502:
        return NHID_ERR_UPSTREAM;
    case 503:
        return NHID_ERR_SEALED;
    default:
        return status >= 500 ? NHID_ERR_INTERNAL : NHID_ERR_INVALID;
    }
}

/* Print s with control characters replaced, so a server cannot drive the terminal. */
static void put_sanitized(FILE *f, const char *s, size_t max)
{
    for (size_t i = 0; s[i] && i < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
    }
}

int cli_print_api_error(FILE *err, const char *method, const char *url, long status, json_t *resp,
                        const char *raw)
{
    fprintf(err, "Error: %s %s: %ld", method, url, status);
    json_t *errs = resp ? json_object_get(resp, "errors") : NULL;
    size_t printed = 0;
    if (json_is_array(errs)) {
        size_t i;
        json_t *e;
        json_array_foreach(errs, i, e)
        {
            if (!json_is_string(e))
                continue;
            fputs(printed++ ? "; " : ": ", err);
            put_sanitized(err, json_string_value(e), 1024);
        }
    }
    if (printed == 0) {
        if (resp == NULL && raw && *raw) {
            fputs(": ", err);
            put_sanitized(err, raw, 200);
        } else if (status == 404) {
            fputs(": not found", err);
        } else if (status == 503) {
            fputs(": unavailable (is it sealed? see nhid status)", err);
        } else if (status == 403) {
            fputs(": permission denied (set NHID_TOKEN or run nhid login)", err);
        }
    }
    fputc('\n', err);
    return cli_status_to_err(status);
}

struct cli_client *cli_client_get(struct cli_ctx *ctx)
{
    if (ctx->client == NULL && cli_client_new(&ctx->opts, ctx->err, &ctx->client) < 0)
        return NULL;
    return ctx->client;
}

int cli_call(struct cli_ctx *ctx, const char *method, const char *path, json_t *body, json_t **resp)
{
    struct cli_client *c = cli_client_get(ctx);
    if (c == NULL)
        return NHID_ERR_INVALID;
    long status;
    json_t *j = NULL;
    int rc = cli_request(c, method, path, body, &status, &j);
    if (rc < 0)
        return rc;
    if (status < 200 || status > 299) {
        rc = cli_print_api_error(ctx->err, method, c->url, status, j, c->body);
        cli_json_free(j);
        return rc;
    }
    if (resp)
        *resp = j;
    else
        cli_json_free(j);
    return NHID_OK;
}

int cli_call_patch(struct cli_ctx *ctx, const char *path, json_t *body, json_t **resp)
{
    struct cli_client *c = cli_client_get(ctx);
    if (c == NULL)
        return NHID_ERR_INVALID;
    char *dumped = json_dumps(body, JSON_COMPACT);
    if (dumped == NULL)
        return NHID_ERR_NOMEM;
    const char *text;
    size_t len;
    long status;
    int rc = cli_request_raw(c, "PATCH", path, "application/merge-patch+json", dumped,
                             strlen(dumped), &status, &text, &len);
    nhid_free_secret_str(dumped);
    if (rc < 0)
        return rc;
    json_t *j = len ? json_loadb(text, len, 0, NULL) : NULL;
    if (status < 200 || status > 299) {
        rc = cli_print_api_error(ctx->err, "PATCH", c->url, status, j, text);
        cli_json_free(j);
        return rc;
    }
    if (resp)
        *resp = j;
    else
        cli_json_free(j);
    return NHID_OK;
}
