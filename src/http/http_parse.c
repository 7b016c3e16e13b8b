/* http_parse — bounded HTTP/1.1 request head parser (RFC 9112). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

/* RFC 9110 §5.6.2: token characters. */
static bool is_tchar(unsigned char c)
{
    return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int fail(int *status, int code, char *errbuf, size_t errlen, const char *msg)
{
    *status = code;
    snprintf(errbuf, errlen, "%s", msg);
    return code == 431 || code == 414 ? NHID_ERR_TOO_LARGE : NHID_ERR_INVALID;
}

const char *nhid_http_header(const struct nhid_http_head *h, const char *name)
{
    for (unsigned i = 0; i < h->n_headers; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    return NULL;
}

int nhid_http_parse_head(char *buf, size_t len, size_t max_headers, size_t max_url,
                         struct nhid_http_head *out, int *status, char *errbuf, size_t errlen)
{
    struct nhid_http_head h;
    memset(&h, 0, sizeof(h));
    h.content_length = -1;
    if (max_headers > NHID_HTTP_HEADERS_MAX)
        max_headers = NHID_HTTP_HEADERS_MAX;
    if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0)
        return fail(status, 400, errbuf, errlen, "request head does not end with CRLF CRLF");
    if (memchr(buf, '\0', len) != NULL)
        return fail(status, 400, errbuf, errlen, "NUL byte in request head");
    buf[len - 2] = '\0'; /* the last CRLF terminates the header section */

    /* Request line: method SP request-target SP HTTP-version CRLF */
    char *line = buf;
    char *eol = strstr(line, "\r\n");
    if (eol == NULL)
        return fail(status, 400, errbuf, errlen, "malformed request line");
    *eol = '\0';
    char *sp1 = strchr(line, ' ');
    if (sp1 == NULL || sp1 == line)
        return fail(status, 400, errbuf, errlen, "malformed request line: missing method");
    *sp1 = '\0';
    for (char *c = line; *c; c++)
        if (!is_tchar((unsigned char)*c))
            return fail(status, 400, errbuf, errlen, "malformed request line: bad method");
    if (sp1 - line > 16)
        return fail(status, 501, errbuf, errlen, "method not implemented");
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (sp2 == NULL || sp2 == target)
        return fail(status, 400, errbuf, errlen, "malformed request line: missing target");
    *sp2 = '\0';
    if ((size_t)(sp2 - target) > max_url)
        return fail(status, 414, errbuf, errlen, "request URL too long");
    for (char *c = target; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return fail(status, 400, errbuf, errlen, "invalid character in request target");
    const char *version = sp2 + 1;
    if (strcmp(version, "HTTP/1.1") == 0)
        h.minor = 1;
    else if (strcmp(version, "HTTP/1.0") == 0)
        h.minor = 0;
    else
        return fail(status, 505, errbuf, errlen, "HTTP version not supported (use HTTP/1.1)");
    h.method = line;
    h.target = target;
    h.keep_alive = h.minor == 1;

    /* Header fields: field-name ":" OWS field-value OWS CRLF */
    char *p = eol + 2;
    while (*p) {
        char *end = strstr(p, "\r\n");
        bool last = end == NULL;
        if (last)
            end = p + strlen(p);
        else
            *end = '\0';
        if (*p == ' ' || *p == '\t')
            return fail(status, 400, errbuf, errlen, "obsolete header line folding");
        char *colon = strchr(p, ':');
        if (colon == NULL || colon == p)
            return fail(status, 400, errbuf, errlen, "malformed header field");
        *colon = '\0';
        for (char *c = p; *c; c++)
            if (!is_tchar((unsigned char)*c))
                return fail(status, 400, errbuf, errlen, "invalid header field name");
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *ve = v + strlen(v);
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            *--ve = '\0';
        for (char *c = v; *c; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return fail(status, 400, errbuf, errlen, "control character in header value");
        if (h.n_headers >= max_headers)
            return fail(status, 431, errbuf, errlen, "too many header fields");
        h.headers[h.n_headers].name = p;
        h.headers[h.n_headers].value = v;
        h.n_headers++;

        if (strcasecmp(p, "Content-Length") == 0) {
            if (*v == '\0' || strlen(v) > 18)
                return fail(status, 400, errbuf, errlen, "invalid Content-Length");
            for (char *c = v; *c; c++)
                if (!isdigit((unsigned char)*c))
                    return fail(status, 400, errbuf, errlen, "invalid Content-Length");
            int64_t cl = strtoll(v, NULL, 10);
            /* RFC 9112 §6.3: differing duplicate lengths are an error. */
            if (h.content_length >= 0 && h.content_length != cl)
                return fail(status, 400, errbuf, errlen, "conflicting Content-Length fields");
            h.content_length = cl;
        } else if (strcasecmp(p, "Transfer-Encoding") == 0) {
            if (strcasecmp(v, "chunked") != 0)
                return fail(status, 501, errbuf, errlen,
                            "unsupported Transfer-Encoding (only chunked)");
            h.chunked = true;
        } else if (strcasecmp(p, "Connection") == 0) {
            if (strcasestr(v, "close"))
                h.keep_alive = false;
            else if (strcasestr(v, "keep-alive"))
                h.keep_alive = true;
        } else if (strcasecmp(p, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") == 0)
                h.expect_continue = true;
        }
        if (last)
            break;
        p = end + 2;
    }
    /* RFC 9112 §6.3: Transfer-Encoding with Content-Length is a smuggling risk. */
    if (h.chunked && h.content_length >= 0)
        return fail(status, 400, errbuf, errlen,
                    "both Transfer-Encoding and Content-Length are present");
    *out = h;
    return NHID_OK;
}
