/*
 * doc: a small document tree for configuration, every node tagged with where
 * it came from.
 *
 * The tree has three kinds of node: scalars (text), maps (keyed entries in
 * document order, keys unique) and sequences. It is read from YAML (libyaml)
 * or JSON (cJSON) and can be edited afterwards (a value replaced at a dotted
 * path), which is how the environment and --set override a profile before
 * anything is interpreted. Interpreting the tree is config.c's job: this
 * module knows nothing about keys or types beyond YAML's own.
 *
 * All nodes and strings of a tree live in one arena (struct doc) and are
 * freed together; nodes moved or replaced by edits simply stay in the arena.
 * Inputs are bounded: nesting depth (DOC_MAX_DEPTH), entries per map
 * (DOC_MAX_MAP), items per sequence (DOC_MAX_SEQ). YAML anchors, aliases and
 * tags other than !!str are refused, so no input can expand beyond its size.
 */
#ifndef SYNCGATE_DOC_H
#define SYNCGATE_DOC_H

#include <stdbool.h>
#include <stddef.h>

#include "syncgate/config.h"

#define DOC_MAX_DEPTH 32
#define DOC_MAX_MAP 256
#define DOC_MAX_SEQ 1024

enum doc_kind { DOC_SCALAR, DOC_MAP, DOC_SEQ };

/* What kind of input a node came from. */
enum doc_src {
    DOC_SRC_DEFAULT, /* built-in defaults */
    DOC_SRC_FILE,    /* a YAML profile: line and col are meaningful */
    DOC_SRC_ENV,     /* an environment variable */
    DOC_SRC_SET,     /* a --set argument */
    DOC_SRC_CLI,     /* another command-line option */
};

struct doc_origin {
    const char *name; /* file name, "env STAGES", "--set a.b=c" (arena string) */
    enum doc_src src;
    unsigned line, col; /* 1-based; 0 when the source has no positions */
};

struct doc_node {
    enum doc_kind kind;
    struct doc_origin at;

    /* DOC_SCALAR */
    const char *str; /* NUL-terminated, never contains NUL */
    size_t len;
    bool plain; /* unquoted: may read as null, a bool or a number */

    /* DOC_MAP, DOC_SEQ: children in order */
    struct doc_node *head, *tail;
    size_t n;

    /* as a child: the next sibling, and for map entries the key */
    struct doc_node *next;
    const char *key;
    struct doc_origin key_at;
};

struct doc;

/* A new empty arena; NULL on ENOMEM. */
struct doc *doc_new(void);
/* Free the arena and every node and string in it; NULL is a no-op. */
void doc_free(struct doc *doc);

/* Copy of s (len bytes) into the arena, NUL-terminated; NULL on ENOMEM. */
char *doc_strndup(struct doc *doc, const char *s, size_t len);

/* An origin whose name is copied into the arena (line/col 0). NULL name on ENOMEM. */
struct doc_origin doc_origin(struct doc *doc, enum doc_src src, const char *name);

/* "name:line:col", or just "name" when the origin has no position. Returns buf. */
const char *doc_where(const struct doc_origin *at, char *buf, size_t n);

/* New nodes (children empty); NULL on ENOMEM. The scalar's text is copied. */
struct doc_node *doc_new_map(struct doc *doc, const struct doc_origin *at);
struct doc_node *doc_new_seq(struct doc *doc, const struct doc_origin *at);
struct doc_node *doc_new_scalar(struct doc *doc, const struct doc_origin *at, const char *s,
                                size_t len, bool plain);

/* True for a plain "", "~", "null", "Null" or "NULL" (YAML's null). */
bool doc_is_null(const struct doc_node *n);

/* Entry of map called key (exact match), or NULL. */
struct doc_node *doc_map_get(const struct doc_node *map, const char *key);
/*
 * Put value under key (key is copied into the arena): it replaces an entry
 * with the same key in place, or is appended. value must not be in a list.
 * Returns 0 or -ENOMEM.
 */
int doc_map_put(struct doc *doc, struct doc_node *map, const char *key,
                const struct doc_origin *key_at, struct doc_node *value);
/* Remove the entry called key if there is one. */
void doc_map_del(struct doc_node *map, const char *key);
/* Append item (not in a list) to seq. */
void doc_seq_append(struct doc_node *seq, struct doc_node *item);
/* Item i of seq, or NULL. */
struct doc_node *doc_seq_at(const struct doc_node *seq, size_t i);

/*
 * Parse one YAML document (buf need not be NUL-terminated). Nodes get origin
 * src/name; line and col only when src is DOC_SRC_FILE. An empty document
 * gives a plain null scalar. Duplicate keys, non-string keys, keys holding
 * control characters, anchors, aliases, tags, NUL characters, invalid UTF-8
 * and more than one document are errors. Returns 0 with *out set, or -EINVAL
 * (-ENOMEM) with d filled: key is the path of a bad key from the document's
 * root ("a[0].b"), else empty.
 */
int doc_parse_yaml(struct doc *doc, const char *buf, size_t len, enum doc_src src, const char *name,
                   struct doc_node **out, struct diag *d);

/*
 * Parse JSON text (NUL-terminated) into nodes with origin src/name: strings
 * become quoted scalars, numbers, booleans and null plain ones. Duplicate
 * keys, keys that are not UTF-8 text without control characters, and \u0000
 * in any string are errors. Returns 0 with *out, or -EINVAL (-ENOMEM) with d
 * filled, key as for doc_parse_yaml.
 */
int doc_parse_json(struct doc *doc, const char *text, enum doc_src src, const char *name,
                   struct doc_node **out, struct diag *d);

/*
 * Replace the value at path in the tree under root (a map) by value, making
 * missing maps on the way (with origin at). path is dotted: "load.think_time",
 * "services[0].url", "metrics.labels.team"; a name applied to a sequence
 * selects the map item whose "name" entry equals it ("services.product.url");
 * "[N]" with N equal to the length appends. Text inside {...} belongs to the
 * segment ("load.thresholds.http_req_duration{name:product}"). Returns 0, or
 * -EINVAL with d->msg saying what is wrong (where/key are the caller's).
 */
int doc_set_path(struct doc *doc, struct doc_node *root, const char *path, struct doc_node *value,
                 const struct doc_origin *at, struct diag *d);

#endif
