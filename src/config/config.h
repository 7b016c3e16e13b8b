/*
 * config — nhid's configuration file format: a subset of HCL (the syntax
 * Vault operators already know), parsed into a jansson tree. The server
 * reads its settings out of that tree; this module knows nothing about
 * what the keys mean (see docs/configuration.md for the keys).
 *
 * Syntax (docs/configuration.md has the full description):
 *
 *   body      = { attribute | block }
 *   attribute = IDENT "=" value NEWLINE
 *   block     = IDENT { STRING } "{" body "}" NEWLINE
 *   value     = STRING | HEREDOC | NUMBER | "true" | "false"
 *             | "[" [ value { "," value } [ "," ] ] "]"
 *             | "{" [ key "=" value { ("," | NEWLINE) key "=" value } ] "}"
 *   key       = IDENT | STRING
 *
 *   IDENT starts with an ASCII letter or "_" and continues with letters,
 *   digits, "_" and "-". STRING is "..." with the escapes \" \\ \n \r \t
 *   \uXXXX (UTF-16 surrogate pairs allowed, \u0000 is not). HEREDOC is
 *   <<MARK ... MARK or <<-MARK ... MARK (the latter strips the common
 *   indentation); its text is taken literally. NUMBER is a decimal
 *   integer (fits int64) or a float, optionally negative; leading zeros
 *   are rejected so "0755" cannot silently mean 755. Comments: "#" and
 *   "//" to end of line, and block comments. The whole file must be
 *   valid UTF-8 (a leading byte-order mark is skipped); line endings may
 *   be LF or CRLF.
 *
 * Mapping to JSON (the tree nhid_config_parse() returns):
 *
 *   - the file is one JSON object; each attribute is a member of the
 *     object of its enclosing body: `ui = true` -> "ui": true;
 *   - lists become arrays, objects become objects, integers become
 *     json_integer, floats json_real, true/false json_true/json_false;
 *   - every block TYPE maps to an ARRAY of objects, one per block, in file
 *     order. Each object holds the block's attributes and nested blocks
 *     plus "__labels": an array of the block's string labels (empty when
 *     the block has none). So
 *
 *         listener "tcp" { address = "0.0.0.0:8200" }
 *         audit "file" "main" { path = "/var/log/a.log" }
 *         limits { max_connections = 10 }
 *
 *     becomes
 *
 *         { "listener": [ { "__labels": ["tcp"], "address": "0.0.0.0:8200" } ],
 *           "audit":    [ { "__labels": ["file", "main"], "path": "/var/log/a.log" } ],
 *           "limits":   [ { "__labels": [], "max_connections": 10 } ] }
 *
 *   - repeated blocks of one type append to the same array; an attribute
 *     set twice in one body, an attribute and a block type with the same
 *     name in one body, a key repeated in an object value, and an
 *     attribute named "__labels" are errors.
 *
 * Every resource the input controls is bounded (the NHID_CONFIG_MAX_*
 * limits below); no input crashes the parser or makes it use more than a
 * small multiple of the input size in memory.
 */
#ifndef NHID_CONFIG_H
#define NHID_CONFIG_H

#include <jansson.h>

#include "core/core.h"

#define NHID_CONFIG_MAX_FILE_SIZE (1u << 20) /* bytes of configuration text */
#define NHID_CONFIG_MAX_DEPTH 64             /* nested blocks, lists and objects */
#define NHID_CONFIG_MAX_STRING (64u << 10)   /* bytes in one string, heredoc or name */
#define NHID_CONFIG_MAX_ITEMS 10000          /* members of one body, list or object */
#define NHID_CONFIG_MAX_LABELS 16            /* labels on one block */
#define NHID_CONFIG_MAX_VALUES 100000        /* values (incl. blocks) in one file */

/* The member of every block object that holds the block's labels. */
#define NHID_CONFIG_LABELS_KEY "__labels"

/*
 * Parse HCL-subset text of len bytes (need not be NUL-terminated; a NUL
 * byte in it is an error). filename is used only in error messages (NULL
 * means "<config>").
 *
 * On success *out is a new JSON object (see the mapping above); the
 * caller frees it with json_decref().
 *
 * On malformed input -- including input over one of the NHID_CONFIG_MAX_*
 * limits -- returns NHID_ERR_INVALID and writes one message into errbuf
 * (if non-NULL) as "FILE:LINE:COL: message", e.g.
 *   nhid.hcl:7:12: expected "=" after attribute name "address", found string "x"
 * LINE and COL are 1-based; COL counts characters (UTF-8 code points).
 * Returns NHID_ERR_NOMEM (message "out of memory") if allocation fails.
 * *out is untouched on failure.
 */
NHID_MUST_CHECK int nhid_config_parse(const char *text, size_t len, const char *filename,
                                      json_t **out, char *errbuf, size_t errlen);

/*
 * Read the file at path (at most NHID_CONFIG_MAX_FILE_SIZE bytes) and
 * parse it with nhid_config_parse(). A path ending in ".json" (any case)
 * is parsed as JSON instead; that document must be an object, must not
 * repeat a key, and is held to the same string and count limits and to
 * 2 * NHID_CONFIG_MAX_DEPTH levels of nesting (an HCL block is two JSON
 * levels). Write it in the tree shape above (blocks as arrays of objects
 * with "__labels").
 *
 * Returns NHID_OK and a new tree in *out (caller frees with json_decref());
 * NHID_ERR_IO if the file cannot be opened or read, or is not a regular
 * file; NHID_ERR_TOO_LARGE if it is over the size limit; NHID_ERR_INVALID
 * on a syntax or limit error; NHID_ERR_NOMEM. errbuf (if non-NULL) gets a
 * message starting with the path ("PATH:LINE:COL: ..." for syntax errors).
 */
NHID_MUST_CHECK int nhid_config_load_file(const char *path, json_t **out, char *errbuf,
                                          size_t errlen);

/*
 * Parse a byte size: a decimal integer with an optional unit, optionally
 * separated by one space. Units (case-insensitive): B; KB, MB, GB, TB
 * (powers of 1000); KiB, MiB, GiB, TiB (powers of 1024). "1MiB" ->
 * 1048576, "512KiB" -> 524288, "1048576" -> 1048576, "10MB" -> 10000000.
 *
 * On error returns NHID_ERR_INVALID and writes a message naming the value
 * and the accepted units into errbuf (if non-NULL), e.g.
 *   size "10XB": unknown unit "XB" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)
 * *out is untouched on failure.
 */
NHID_MUST_CHECK int nhid_config_parse_size(const char *s, uint64_t *out, char *errbuf,
                                           size_t errlen);

#endif /* NHID_CONFIG_H */
