/*
 * http_request_fuzz — arbitrary bytes as what a client sends on a
 * connection: a request head parsed by nhid_http_parse_head(), then the
 * rest decoded as the pipeline does (target → nhid_path_normalize() and
 * nhid_req_query(); body → jansson's json_loadb()).
 *
 * The head is everything up to and including the first CRLF CRLF (as the
 * connection reader cuts it), copied into a buffer of exactly that size
 * so ASan sees any read past it. Inputs without CRLF CRLF are parsed
 * whole and must be refused. Invariants checked (abort() on violation):
 *
 *   - errors: *status is one of 400, 414, 431, 501, 505; errbuf is a
 *     NUL-terminated, non-empty message; 414/431 come with TOO_LARGE;
 *   - success: method/target/header names/values point into the buffer
 *     and are NUL-terminated within it; the method is 1-16 token chars;
 *     the target has no bytes <= 0x20 or >= 0x7f and is at most max_url;
 *     at most max_headers headers; content_length >= -1; never both
 *     chunked and a Content-Length; nhid_http_header() finds the first
 *     header of a name case-insensitively;
 *   - the JSON body decodes or fails with a message; a decoded value
 *     round-trips (dump, load, json_equal).
 *
 * Limits vary with the input (bit 0 and 1 of the last byte) so the
 * 414/431 paths are reached with small inputs.
 *
 * Build:  CC=clang cmake -S . -B build-fuzz -DNHID_FUZZ=ON -DNHID_SANITIZE=ON \
 *           -DCMAKE_BUILD_TYPE=Debug && cmake --build build-fuzz --target http_request_fuzz
 * Run:    mkdir -p /tmp/corpus && build-fuzz/http_request_fuzz -max_total_time=300 \
 *           -max_len=8192 /tmp/corpus
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "engine/engine.h"
#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            fprintf(stderr, "http_request_fuzz: invariant failed: %s (%s:%d)\n", #c, \
                    __FILE__, __LINE__);                                               \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static bool within(const char *p, const char *buf, size_t len)
{
    return p >= buf && p < buf + len && memchr(p, '\0', (size_t)(buf + len - p)) != NULL;
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void check_json(const char *body, size_t len)
{
    json_error_t err;
    json_t *j = json_loadb(body, len, 0, &err);
    if (j == NULL) {
        CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
        return;
    }
    char *dump = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (dump) {
        json_t *again = json_loads(dump, JSON_DECODE_ANY, &err);
        CHECK(again != NULL);
        CHECK(json_equal(j, again));
        json_decref(again);
        free(dump);
    }
    json_decref(j);
}

static void check_target(const char *target)
{
    const char *q = strchr(target, '?');
    size_t tlen = q ? (size_t)(q - target) : strlen(target);
    if (tlen >= 4 && strncmp(target, "/v1/", 4) == 0) {
        char path[NHID_PATH_MAX];
        char err[256];
        if (nhid_path_normalize(target + 4, tlen - 4, path, sizeof(path), err, sizeof(err)) ==
            NHID_OK) {
            CHECK(memchr(path, '\0', sizeof(path)) != NULL);
            /* A normalised path has no dot segments and no control characters. */
            for (const char *c = path; *c; c++)
                CHECK((unsigned char)*c >= 0x20);
        } else {
            CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        }
    }
    if (q) {
        struct nhid_request req;
        memset(&req, 0, sizeof(req));
        req.query = q + 1;
        static const char *const names[] = {"list", "format", "after", "limit", ""};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            free(nhid_req_query(&req, names[i]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > (1u << 16))
        return 0;
    uint8_t knobs = data[size - 1];
    size_t max_headers = (knobs & 1) ? 4 : 64;
    size_t max_url = (knobs & 2) ? 16 : 4096;

    const uint8_t *end = NULL;
    for (size_t i = 0; i + 4 <= size; i++)
        if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
            end = data + i + 4;
            break;
        }
    size_t head_len = end ? (size_t)(end - data) : size;
    char *buf = malloc(head_len);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, head_len);

    struct nhid_http_head *h = malloc(sizeof(*h));
    if (h == NULL) {
        free(buf);
        return 0;
    }
    memset(h, 0xA5, sizeof(*h)); /* garbage: the parser must not rely on a zeroed struct */
    int status = 0;
    char err[160];
    memset(err, 'X', sizeof(err));
    int rc = nhid_http_parse_head(buf, head_len, max_headers, max_url, h, &status, err,
                                  sizeof(err));
    if (rc != NHID_OK) {
        CHECK(rc == NHID_ERR_INVALID || rc == NHID_ERR_TOO_LARGE);
        CHECK(status == 400 || status == 414 || status == 431 || status == 501 ||
              status == 505);
        CHECK((status == 414 || status == 431) == (rc == NHID_ERR_TOO_LARGE));
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    } else {
        /* Success needs the CRLF CRLF terminator. */
        CHECK(end != NULL);
        CHECK(within(h->method, buf, head_len));
        size_t mlen = strlen(h->method);
        CHECK(mlen >= 1 && mlen <= 16);
        for (const char *c = h->method; *c; c++)
            CHECK(is_tchar((unsigned char)*c));
        CHECK(within(h->target, buf, head_len));
        CHECK(strlen(h->target) >= 1 && strlen(h->target) <= max_url);
        for (const char *c = h->target; *c; c++)
            CHECK((unsigned char)*c > 0x20 && (unsigned char)*c < 0x7f);
        CHECK(h->minor == 0 || h->minor == 1);
        CHECK(h->n_headers <= max_headers);
        CHECK(h->content_length >= -1);
        CHECK(!(h->chunked && h->content_length >= 0));
        for (unsigned i = 0; i < h->n_headers; i++) {
            CHECK(within(h->headers[i].name, buf, head_len));
            CHECK(within(h->headers[i].value, buf, head_len));
            CHECK(h->headers[i].name[0] != '\0');
            const char *first = nhid_http_header(h, h->headers[i].name);
            CHECK(first != NULL);
            for (unsigned k = 0; k < i; k++)
                if (strcasecmp(h->headers[k].name, h->headers[i].name) == 0) {
                    CHECK(first == h->headers[k].value);
                    break;
                }
        }
        check_target(h->target);

        /* The body: what follows the head, bounded by Content-Length when given. */
        size_t rest = size - head_len;
        size_t blen = rest;
        if (h->content_length >= 0 && (uint64_t)h->content_length < rest)
            blen = (size_t)h->content_length;
        char *body = malloc(blen ? blen : 1);
        if (body) {
            memcpy(body, data + head_len, blen);
            check_json(body, blen);
            free(body);
        }
    }
    free(h);
    free(buf);
    return 0;
}
