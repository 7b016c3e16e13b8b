/*
 * dynlib — libraries loaded on first use instead of at process start.
 *
 * libcurl (used only by the CLI) and libpq (used only by the database
 * engine) each pull in a large dependency tree (GnuTLS, Kerberos, LDAP,
 * libssh2, ...). Linking them normally would map and relocate all of it in
 * every `nhid server` process, most of which never uses them, adding about
 * 4 MB of resident memory. Instead the binary carries small forwarding
 * definitions of the functions it calls (dynlib_curl.c, dynlib_pq.c) with
 * the libraries' own names and prototypes (from their Debian -dev headers),
 * and dlopen()s the shared library the first time one is called.
 *
 * Callers include <curl/curl.h> or <libpq-fe.h> and call the functions as
 * usual. If the library cannot be loaded, the call fails the way the
 * library reports an allocation failure (NULL handle / error code) and
 * nhid_dynlib_error() explains why.
 */
#ifndef NHID_DYNLIB_H
#define NHID_DYNLIB_H

/* The reason the last library load failed ("" if none). */
const char *nhid_dynlib_error(void);

/* Resolve `symbol` in the library `soname` (loaded once); NULL on failure. */
void *nhid_dynlib_symbol(const char *soname, const char *symbol);

#endif /* NHID_DYNLIB_H */
