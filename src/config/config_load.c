/*
 * config_load — read a configuration file (bounded) and hand it to the
 * HCL parser, or to jansson for ".json" files, holding JSON to the same
 * limits as HCL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

static void set_err(char *errbuf, size_t errlen, const char *path, const char *msg,
                    const char *detail)
{
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s: %s%s%s", path, msg, detail ? ": " : "", detail ? detail : "");
}

/*
 * Read at most NHID_CONFIG_MAX_FILE_SIZE bytes of a regular file. The
 * limit is enforced on the bytes read, not on st_size, so a file that
 * grows while we read it cannot get past it.
 */
static int read_bounded(const char *path, char **out, size_t *out_len, char *errbuf, size_t errlen)
{
    int rc = NHID_OK;
    char *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        set_err(errbuf, errlen, path, "cannot open configuration file", strerror(errno));
        NHID_FAIL(NHID_ERR_IO);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_err(errbuf, errlen, path, "cannot stat configuration file", strerror(errno));
        NHID_FAIL(NHID_ERR_IO);
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(errbuf, errlen, path, "configuration path is not a regular file", NULL);
        NHID_FAIL(NHID_ERR_IO);
    }
    /* One byte over the limit tells "too large" from "exactly at the limit". */
    buf = malloc(NHID_CONFIG_MAX_FILE_SIZE + 1);
    if (buf == NULL) {
        set_err(errbuf, errlen, path, "out of memory", NULL);
        NHID_FAIL(NHID_ERR_NOMEM);
    }
    while (len < NHID_CONFIG_MAX_FILE_SIZE + 1) {
        ssize_t n = read(fd, buf + len, NHID_CONFIG_MAX_FILE_SIZE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(errbuf, errlen, path, "cannot read configuration file", strerror(errno));
            NHID_FAIL(NHID_ERR_IO);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > NHID_CONFIG_MAX_FILE_SIZE) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "%s: configuration file is larger than %u bytes", path,
                     NHID_CONFIG_MAX_FILE_SIZE);
        NHID_FAIL(NHID_ERR_TOO_LARGE);
    }
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Hold a JSON document to the limits the HCL parser enforces. */
static int check_json_limits(const json_t *v, int depth, size_t *values, const char **why)
{
    if (++*values > NHID_CONFIG_MAX_VALUES) {
        *why = "too many values in one file";
        return NHID_ERR_INVALID;
    }
    if (json_is_string(v) && json_string_length(v) > NHID_CONFIG_MAX_STRING) {
        *why = "string too long (maximum 65536 bytes)";
        return NHID_ERR_INVALID;
    }
    if (!json_is_array(v) && !json_is_object(v))
        return NHID_OK;
    /*
     * Each HCL block is two JSON levels (the array of blocks and the block
     * object), so every tree the HCL parser can produce fits in twice its
     * depth limit. The root object is level 0.
     */
    if (depth + 1 > 2 * NHID_CONFIG_MAX_DEPTH) {
        *why = "nesting too deep (maximum 128 levels)";
        return NHID_ERR_INVALID;
    }
    if (json_is_array(v)) {
        if (json_array_size(v) > NHID_CONFIG_MAX_ITEMS) {
            *why = "too many list elements";
            return NHID_ERR_INVALID;
        }
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            int rc = check_json_limits(e, depth + 1, values, why);
            if (rc != NHID_OK)
                return rc;
        }
        return NHID_OK;
    }
    if (json_object_size(v) > NHID_CONFIG_MAX_ITEMS) {
        *why = "too many object members";
        return NHID_ERR_INVALID;
    }
    const char *k;
    const json_t *e;
    json_object_foreach((json_t *)v, k, e)
    {
        if (strlen(k) > NHID_CONFIG_MAX_STRING) {
            *why = "name too long";
            return NHID_ERR_INVALID;
        }
        int rc = check_json_limits(e, depth + 1, values, why);
        if (rc != NHID_OK)
            return rc;
    }
    return NHID_OK;
}

static int parse_json(const char *text, size_t len, const char *path, json_t **out, char *errbuf,
                      size_t errlen)
{
    int rc = NHID_OK;
    json_error_t jerr;
    const char *why = NULL;
    size_t values = 0;
    /* JSON_REJECT_DUPLICATES: a repeated key is an error, as in HCL. */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    if (!json_is_object(root)) {
        set_err(errbuf, errlen, path, "a JSON configuration must be an object", NULL);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    if (check_json_limits(root, -1, &values, &why) != NHID_OK) {
        set_err(errbuf, errlen, path, why, NULL);
        NHID_FAIL(NHID_ERR_INVALID);
    }
    *out = root;
    root = NULL;
out:
    json_decref(root);
    return rc;
}

static bool ends_with_json(const char *path)
{
    size_t n = strlen(path);
    return n >= 5 && strcasecmp(path + n - 5, ".json") == 0;
}

int nhid_config_load_file(const char *path, json_t **out, char *errbuf, size_t errlen)
{
    int rc = NHID_OK;
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    if (path == NULL || out == NULL) {
        if (errbuf != NULL && errlen > 0)
            snprintf(errbuf, errlen, "no configuration file given");
        NHID_FAIL(NHID_ERR_INVALID);
    }
    NHID_TRY(read_bounded(path, &text, &len, errbuf, errlen));
    if (ends_with_json(path))
        NHID_TRY(parse_json(text, len, path, &root, errbuf, errlen));
    else
        NHID_TRY(nhid_config_parse(text, len, path, &root, errbuf, errlen));
    *out = root;
    root = NULL;
out:
    json_decref(root);
    free(text);
    return rc;
}
