/*
 * Forwarding definitions of the libcurl functions nhid calls; libcurl.so.4
 * is loaded on the first call (see dynlib.h).
 */
#include <stdarg.h>
#include <stddef.h>

#include <curl/curl.h>

#include "dynlib/dynlib.h"

#define CURL_SONAME "libcurl.so.4"

/* Resolve once per function; a failed load yields NULL and the caller's error path. */
#define RESOLVE(var, name)                                                                         \
    static __typeof__(&name) var;                                                                  \
    if (var == NULL)                                                                               \
        var = (__typeof__(&name))nhid_dynlib_symbol(CURL_SONAME, #name);

CURLcode curl_global_init(long flags)
{
    RESOLVE(fn, curl_global_init);
    return fn ? fn(flags) : CURLE_FAILED_INIT;
}

CURL *curl_easy_init(void)
{
    RESOLVE(fn, curl_easy_init);
    return fn ? fn() : NULL;
}

void curl_easy_cleanup(CURL *h)
{
    RESOLVE(fn, curl_easy_cleanup);
    if (fn)
        fn(h);
}

CURLcode curl_easy_perform(CURL *h)
{
    RESOLVE(fn, curl_easy_perform);
    return fn ? fn(h) : CURLE_FAILED_INIT;
}

const char *curl_easy_strerror(CURLcode code)
{
    RESOLVE(fn, curl_easy_strerror);
    return fn ? fn(code) : nhid_dynlib_error();
}

struct curl_slist *curl_slist_append(struct curl_slist *list, const char *s)
{
    RESOLVE(fn, curl_slist_append);
    return fn ? fn(list, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *list)
{
    RESOLVE(fn, curl_slist_free_all);
    if (fn)
        fn(list);
}

/*
 * Variadic: the option number says the argument's type (curl.h: options
 * below CURLOPTTYPE_OBJECTPOINT take a long, then object pointers, then
 * function pointers, then curl_off_t; blobs are pointers too).
 */
#undef curl_easy_setopt
CURLcode curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    RESOLVE(fn, curl_easy_setopt);
    if (fn == NULL)
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        rc = fn(h, opt, v);
    } else if (opt < CURLOPTTYPE_OFF_T) {
        void *v = va_arg(ap, void *);
        rc = fn(h, opt, v);
    } else if (opt < CURLOPTTYPE_BLOB) {
        curl_off_t v = va_arg(ap, curl_off_t);
        rc = fn(h, opt, v);
    } else {
        void *v = va_arg(ap, void *);
        rc = fn(h, opt, v);
    }
    va_end(ap);
    return rc;
}

#undef curl_easy_getinfo
CURLcode curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    RESOLVE(fn, curl_easy_getinfo);
    if (fn == NULL)
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    void *out = va_arg(ap, void *);
    va_end(ap);
    return fn(h, info, out);
}
