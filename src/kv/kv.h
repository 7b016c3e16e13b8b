/*
 * kv — the KV version 2 secrets engine (Vault's wire format) with
 * automated rotation of stored secrets.
 *
 * Mounted at "secret/" (KV_MOUNTS in kv.c lists the mounts; every handler
 * takes the mount from the request path, so a mount is only a prefix).
 * Endpoints under <mount>/: data/, metadata/, delete/, undelete/,
 * destroy/, subkeys/, config, rotation/, rotate/, rotation-public/.
 * docs/kv.md describes the API, storage layout and rotation semantics.
 *
 * Storage (every value through the barrier, AAD = key):
 *   kv/<mount>/config                          mount settings
 *   kv/<mount>/meta/<path>                     metadata + version index
 *   kv/<mount>/ver/<path>/<20-digit version>   one version's data
 *   kv/<mount>/rot/<path>                      rotation policy and state
 *   kv/<mount>/rotation-due/<20-digit unix>/<path>          (index, empty)
 *   kv/<mount>/grace-due/<20-digit unix>/<20-digit ver>/<path> (index, empty)
 */
#ifndef NHID_KV_H
#define NHID_KV_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "engine/engine.h"

extern const struct nhid_engine nhid_kv_engine;

/* Character classes of the password generator (bit set). */
enum nhid_kv_class {
    NHID_KV_LOWER = 1 << 0,
    NHID_KV_UPPER = 1 << 1,
    NHID_KV_DIGITS = 1 << 2,
    NHID_KV_SYMBOLS = 1 << 3,
};
#define NHID_KV_PASSWORD_MIN 8
#define NHID_KV_PASSWORD_MAX 1024
#define NHID_KV_API_PREFIX_MAX 32

/*
 * Random password of `len` characters drawn uniformly from the union of
 * `classes`, with at least one character of every class. out must hold
 * len + 1 bytes. NHID_ERR_INVALID for a bad length or empty class set.
 */
NHID_MUST_CHECK int nhid_kv_password(size_t len, unsigned classes, char *out);

/* "<prefix><base64url of 32 random bytes>"; *out malloc'd (free with nhid_free_secret_str). */
NHID_MUST_CHECK int nhid_kv_api_key(const char *prefix, char **out);

/*
 * RFC 7386 JSON merge patch: apply `patch` to `target` in place (null
 * members remove keys, objects merge recursively, anything else replaces).
 * Returns the new value (a new reference; target may be replaced when the
 * patch is not an object).
 */
json_t *nhid_kv_merge_patch(json_t *target, const json_t *patch);

/*
 * Is `path` acceptable as a KV secret path: 1..KV_PATH_MAX bytes, no empty,
 * "." or ".." segment, no control character, no leading or trailing "/".
 */
bool nhid_kv_path_valid(const char *path);

#endif /* NHID_KV_H */
