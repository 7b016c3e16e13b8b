/*
 * cli_pki — `nhid pki issue|sign|renew|revoke|list`: certificates from
 * nhid's CA on the command line. Keys are written 0600 and never printed;
 * renewal generates the new key locally and authenticates with the
 * current certificate (mTLS), so it needs no token.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli/cli_internal.h"

int cli_cmd_pki_issue(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pki_sign(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pki_renew(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pki_revoke(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pki_list(struct cli_ctx *ctx, int argc, char **argv);

#define PATH_LEN 1024

/* Write data to path atomically (temp file + rename) with mode. */
static int write_file(struct cli_ctx *ctx, const char *path, const char *data, mode_t mode)
{
    char tmp[PATH_LEN + 16];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return cli_fail(ctx, CLI_EXIT_USAGE, "path %s is too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "cannot create %s: %s", tmp, strerror(errno));
    size_t len = strlen(data), off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            unlink(tmp);
            return cli_fail(ctx, CLI_EXIT_USAGE, "cannot write %s: %s", tmp, strerror(errno));
        }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return cli_fail(ctx, CLI_EXIT_USAGE, "cannot write %s: %s", path, strerror(errno));
    }
    return CLI_EXIT_OK;
}

/* Join the ca_chain array into one PEM text (caller frees). */
static char *chain_text(json_t *data)
{
    json_t *chain = json_object_get(data, "ca_chain");
    size_t i, len = 1;
    json_t *v;
    json_array_foreach(chain, i, v) len += strlen(json_string_value(v) ? json_string_value(v) : "") + 1;
    char *out = calloc(1, len);
    if (out == NULL)
        return NULL;
    json_array_foreach(chain, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL)
            continue;
        strcat(out, s);
        if (*s && s[strlen(s) - 1] != '\n')
            strcat(out, "\n");
    }
    return out;
}

/* Write cert.pem, chain.pem (and key.pem, 0600) into dir; print a summary. */
static int write_bundle(struct cli_ctx *ctx, const char *dir, json_t *data, const char *key_pem,
                        const char *cert_path, const char *key_path)
{
    char cpath[PATH_LEN], kpath[PATH_LEN], chpath[PATH_LEN];
    const char *cert = json_string_value(json_object_get(data, "certificate"));
    if (cert == NULL)
        return cli_fail(ctx, CLI_EXIT_ERROR, "the response has no certificate");
    if (dir && mkdir(dir, 0700) != 0 && errno != EEXIST)
        return cli_fail(ctx, CLI_EXIT_USAGE, "cannot create directory %s: %s", dir,
                        strerror(errno));
    snprintf(cpath, sizeof(cpath), "%s", cert_path ? cert_path : "");
    snprintf(kpath, sizeof(kpath), "%s", key_path ? key_path : "");
    if (dir) {
        snprintf(cpath, sizeof(cpath), "%.1000s/cert.pem", dir);
        snprintf(kpath, sizeof(kpath), "%.1000s/key.pem", dir);
        snprintf(chpath, sizeof(chpath), "%.1000s/chain.pem", dir);
    } else {
        snprintf(chpath, sizeof(chpath), "%.1000s.chain", cpath);
    }
    int rc;
    /* Key first: a certificate without its key on disk is useless. */
    if (key_pem && (rc = write_file(ctx, kpath, key_pem, 0600)) != CLI_EXIT_OK)
        return rc;
    if ((rc = write_file(ctx, cpath, cert, 0644)) != CLI_EXIT_OK)
        return rc;
    char *chain = chain_text(data);
    if (chain == NULL)
        return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
    rc = write_file(ctx, chpath, chain, 0644);
    free(chain);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        json_t *o = json_pack("{s:O*, s:O*, s:O*, s:s, s:s*, s:s}", "serial_number",
                              json_object_get(data, "serial_number"), "expiration",
                              json_object_get(data, "expiration"), "spiffe_id",
                              json_object_get(data, "spiffe_id"), "certificate_file", cpath,
                              "private_key_file", key_pem ? kpath : NULL, "chain_file", chpath);
        cli_print_json(ctx->out, o);
        json_decref(o);
        return CLI_EXIT_OK;
    }
    struct cli_table *t = cli_table_kv();
    if (t == NULL)
        return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
    int64_t exp = json_integer_value(json_object_get(data, "expiration"));
    char when[NHID_RFC3339_LEN];
    nhid_time_format(exp, when);
    if (cli_table_add_json(t, "serial_number", json_object_get(data, "serial_number")) < 0 ||
        cli_table_add_json(t, "spiffe_id", json_object_get(data, "spiffe_id")) < 0 ||
        cli_table_add(t, "expiration", "%s", when) < 0 ||
        cli_table_add(t, "certificate", "%s", cpath) < 0 ||
        (key_pem && cli_table_add(t, "private_key", "%s (mode 0600)", kpath) < 0) ||
        cli_table_add(t, "chain", "%s", chpath) < 0) {
        cli_table_free(t);
        return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
    }
    rc = cli_table_output(ctx, t);
    cli_table_free(t);
    return rc;
}

static int add_list(json_t *body, const char *field, const char *value)
{
    return value ? json_object_set_new(body, field, json_string(value)) : 0;
}

int cli_cmd_pki_issue(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *spiffe = NULL, *out = NULL, *alt = NULL, *ips = NULL, *kt = NULL;
    struct cli_duration ttl = {0};
    long long bits = 0;
    struct cli_flag flags[] = {
        CLI_FLAG("spiffe-id", CLI_FLAG_STR, &spiffe, "URI", "SPIFFE ID (default: the caller's)"),
        CLI_FLAG("out", CLI_FLAG_STR, &out, "DIR", "write cert.pem, key.pem (0600), chain.pem"),
        CLI_FLAG("alt-names", CLI_FLAG_STR, &alt, "A,B", "DNS SANs"),
        CLI_FLAG("ip-sans", CLI_FLAG_STR, &ips, "A,B", "IP SANs"),
        CLI_FLAG("ttl", CLI_FLAG_DURATION, &ttl, "D", "lifetime (default: the role's, 1h)"),
        CLI_FLAG("key-type", CLI_FLAG_STR, &kt, "T", "ec (default), rsa, ed25519"),
        CLI_FLAG("key-bits", CLI_FLAG_INT, &bits, "N", "256/384 for ec, 2048/3072/4096 for rsa"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    if (out == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -out DIR is required (the private key is "
                                             "written there, never printed)");
    char path[512];
    if (nhid_fmt(path, sizeof(path), "pki/issue/%s", ctx->args[0]) < 0)
        return cli_fail(ctx, CLI_EXIT_USAGE, "ROLE is too long");
    json_t *body = json_object(), *resp = NULL;
    if (body == NULL || add_list(body, "spiffe_id", spiffe) || add_list(body, "alt_names", alt) ||
        add_list(body, "ip_sans", ips) || add_list(body, "ttl", ttl.text) ||
        add_list(body, "key_type", kt) ||
        (bits && json_object_set_new(body, "key_bits", json_integer(bits)))) {
        json_decref(body);
        return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
    }
    rc = cli_call(ctx, "POST", path, body, &resp);
    json_decref(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    json_t *data = cli_data(resp);
    const char *key = json_string_value(json_object_get(data, "private_key"));
    rc = key ? write_bundle(ctx, out, data, key, NULL, NULL)
             : cli_fail(ctx, CLI_EXIT_ERROR, "the response has no private key");
    cli_json_free(resp);
    return rc;
}

int cli_cmd_pki_sign(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *csr_file = NULL, *spiffe = NULL, *out = NULL, *alt = NULL, *ips = NULL;
    struct cli_duration ttl = {0};
    struct cli_flag flags[] = {
        CLI_FLAG("csr", CLI_FLAG_STR, &csr_file, "FILE", "PEM certificate request (- for stdin)"),
        CLI_FLAG("spiffe-id", CLI_FLAG_STR, &spiffe, "URI", "SPIFFE ID (default: from the CSR or the caller)"),
        CLI_FLAG("out", CLI_FLAG_STR, &out, "DIR", "write cert.pem and chain.pem (else print)"),
        CLI_FLAG("alt-names", CLI_FLAG_STR, &alt, "A,B", "DNS SANs"),
        CLI_FLAG("ip-sans", CLI_FLAG_STR, &ips, "A,B", "IP SANs"),
        CLI_FLAG("ttl", CLI_FLAG_DURATION, &ttl, "D", "lifetime (default: the role's, 1h)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    if (csr_file == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -csr FILE is required");
    char *csr = NULL, err[256], path[512];
    size_t len = 0;
    if (strcmp(csr_file, "-") == 0) {
        if (cli_read_stream(ctx->in, 64 * 1024, &csr, &len) < 0)
            return cli_fail(ctx, CLI_EXIT_USAGE, "cannot read the CSR from stdin");
    } else if (cli_read_file(csr_file, 64 * 1024, &csr, &len, err, sizeof(err)) < 0) {
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -csr: %s", err);
    }
    if (nhid_fmt(path, sizeof(path), "pki/sign/%s", ctx->args[0]) < 0) {
        nhid_free_secret(csr, len + 1);
        return cli_fail(ctx, CLI_EXIT_USAGE, "ROLE is too long");
    }
    json_t *body = json_pack("{s:s}", "csr", csr), *resp = NULL;
    nhid_free_secret(csr, len + 1);
    if (body == NULL || add_list(body, "spiffe_id", spiffe) || add_list(body, "alt_names", alt) ||
        add_list(body, "ip_sans", ips) || add_list(body, "ttl", ttl.text)) {
        json_decref(body);
        return cli_fail(ctx, CLI_EXIT_ERROR, "out of memory");
    }
    rc = cli_call(ctx, "POST", path, body, &resp);
    json_decref(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    json_t *data = cli_data(resp);
    if (out)
        rc = write_bundle(ctx, out, data, NULL, NULL, NULL);
    else if (ctx->opts.format == CLI_FORMAT_JSON || ctx->opts.field)
        rc = cli_print_secret(ctx, resp);
    else {
        const char *c = json_string_value(json_object_get(data, "certificate"));
        fputs(c ? c : "", ctx->out);
        rc = CLI_EXIT_OK;
    }
    cli_json_free(resp);
    return rc;
}

/* A new key of the same type as the current certificate's, and a CSR for it. */
static int new_key_and_csr(EVP_PKEY *old, char **key_pem, char **csr_pem)
{
    EVP_PKEY *k = NULL;
    X509_REQ *req = NULL;
    BIO *kb = NULL, *cb = NULL;
    int rc = NHID_ERR_CRYPTO;
    if (EVP_PKEY_is_a(old, "RSA"))
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)EVP_PKEY_get_bits(old));
    else if (EVP_PKEY_is_a(old, "ED25519"))
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", EVP_PKEY_get_bits(old) > 256 ? "P-384" : "P-256");
    req = X509_REQ_new();
    kb = BIO_new(BIO_s_secmem());
    cb = BIO_new(BIO_s_mem());
    if (k == NULL || req == NULL || kb == NULL || cb == NULL)
        goto out;
    const EVP_MD *md = EVP_PKEY_is_a(k, "ED25519") ? NULL : EVP_sha256();
    if (X509_REQ_set_pubkey(req, k) != 1 || X509_REQ_sign(req, k, md) <= 0 ||
        PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) != 1 ||
        PEM_write_bio_X509_REQ(cb, req) != 1)
        goto out;
    char *p;
    long n = BIO_get_mem_data(kb, &p);
    *key_pem = strndup(p, (size_t)n);
    n = BIO_get_mem_data(cb, &p);
    *csr_pem = strndup(p, (size_t)n);
    rc = (*key_pem && *csr_pem) ? NHID_OK : NHID_ERR_NOMEM;
out:
    BIO_free(kb);
    BIO_free(cb);
    X509_REQ_free(req);
    EVP_PKEY_free(k);
    return rc;
}

int cli_cmd_pki_renew(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *cert_file = NULL, *key_file = NULL, *out = NULL;
    struct cli_duration ttl = {0};
    struct cli_flag flags[] = {
        CLI_FLAG("cert", CLI_FLAG_STR, &cert_file, "FILE", "current certificate (PEM)"),
        CLI_FLAG("key", CLI_FLAG_STR, &key_file, "FILE", "its private key (PEM)"),
        CLI_FLAG("out", CLI_FLAG_STR, &out, "DIR",
                 "write the new cert.pem/key.pem/chain.pem there (default: replace -cert and -key)"),
        CLI_FLAG("ttl", CLI_FLAG_DURATION, &ttl, "D", "lifetime (default: the role's)"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    if (cert_file == NULL || key_file == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flags -cert FILE and -key FILE are required");
    FILE *f = fopen(cert_file, "r");
    if (f == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -cert: cannot open %s: %s", cert_file,
                        strerror(errno));
    X509 *cur = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (cur == NULL)
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -cert: %s is not a PEM certificate", cert_file);
    char *key_pem = NULL, *csr_pem = NULL;
    rc = new_key_and_csr(X509_get0_pubkey(cur), &key_pem, &csr_pem);
    X509_free(cur);
    if (rc < 0)
        return cli_fail(ctx, CLI_EXIT_ERROR, "cannot generate the new key");
    /* The current certificate is the credential: mTLS, no token. */
    ctx->opts.client_cert = cert_file;
    ctx->opts.client_key = key_file;
    struct cli_client *c = cli_client_get(ctx);
    if (c == NULL) {
        nhid_free_secret_str(key_pem);
        free(csr_pem);
        return CLI_EXIT_ERROR;
    }
    cli_client_send_token(c, false);
    json_t *body = json_pack("{s:s}", "csr", csr_pem), *resp = NULL;
    free(csr_pem);
    if (body && ttl.text)
        json_object_set_new(body, "ttl", json_string(ttl.text));
    rc = body ? cli_call(ctx, "POST", "pki/renew", body, &resp) : NHID_ERR_NOMEM;
    json_decref(body);
    if (rc < 0) {
        nhid_free_secret_str(key_pem);
        return CLI_EXIT_ERROR;
    }
    rc = write_bundle(ctx, out, cli_data(resp), key_pem, cert_file, key_file);
    nhid_free_secret_str(key_pem);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_pki_revoke(struct cli_ctx *ctx, int argc, char **argv)
{
    const char *reason = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("reason", CLI_FLAG_STR, &reason, "R",
                 "unspecified, key_compromise, superseded, cessation_of_operation, ..."),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 1, 1);
    if (rc != CLI_CONTINUE)
        return rc;
    json_t *body = json_pack("{s:s}", "serial_number", ctx->args[0]), *resp = NULL;
    if (body && reason)
        json_object_set_new(body, "reason", json_string(reason));
    rc = body ? cli_call(ctx, "POST", "pki/revoke", body, &resp) : NHID_ERR_NOMEM;
    json_decref(body);
    if (rc < 0)
        return CLI_EXIT_ERROR;
    rc = cli_print_secret(ctx, resp);
    cli_json_free(resp);
    return rc;
}

int cli_cmd_pki_list(struct cli_ctx *ctx, int argc, char **argv)
{
    struct cli_duration expiring = {0};
    const char *identity = NULL;
    struct cli_flag flags[] = {
        CLI_FLAG("expiring", CLI_FLAG_DURATION, &expiring, "D",
                 "only certificates expiring within D, e.g. 24h"),
        CLI_FLAG("identity", CLI_FLAG_STR, &identity, "NAME", "only this identity's certificates"),
        CLI_FLAG_END,
    };
    int rc = cli_begin(ctx, argc, argv, flags, 0, 0);
    if (rc != CLI_CONTINUE)
        return rc;
    char path[512];
    int n = snprintf(path, sizeof(path), "pki/certs?list=true%s%s%s%s",
                     expiring.text ? "&expiring=" : "", expiring.text ? expiring.text : "",
                     identity ? "&identity=" : "", identity ? identity : "");
    if (n < 0 || (size_t)n >= sizeof(path))
        return cli_fail(ctx, CLI_EXIT_USAGE, "flag -identity: too long");
    for (const char *p = identity; p && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return cli_fail(ctx, CLI_EXIT_USAGE, "flag -identity: \"%s\" is not an identity name",
                            identity);
    json_t *resp = NULL;
    if (cli_call(ctx, "GET", path, NULL, &resp) < 0)
        return CLI_EXIT_ERROR;
    if (ctx->opts.format == CLI_FORMAT_JSON) {
        cli_print_json(ctx->out, resp);
        cli_json_free(resp);
        return CLI_EXIT_OK;
    }
    json_t *data = cli_data(resp);
    json_t *keys = json_object_get(data, "keys"), *info = json_object_get(data, "key_info");
    struct cli_table *t = cli_table_new(4, "Serial", "Identity", "SPIFFE ID", "Expires");
    size_t i;
    json_t *v;
    rc = t ? CLI_EXIT_OK : CLI_EXIT_ERROR;
    json_array_foreach(keys, i, v)
    {
        json_t *in = json_object_get(info, json_string_value(v));
        if (t && cli_table_row(t, json_string_value(v),
                               json_string_value(json_object_get(in, "identity")),
                               json_string_value(json_object_get(in, "spiffe_id")),
                               json_string_value(json_object_get(in, "not_after"))) < 0)
            rc = CLI_EXIT_ERROR;
    }
    if (t && json_array_size(keys))
        cli_table_print(t, ctx->out);
    else if (t)
        fprintf(ctx->out, "No certificates.\n");
    cli_table_free(t);
    cli_json_free(resp);
    return rc;
}
