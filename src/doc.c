/* doc: the configuration document tree (see include/syncgate/doc.h). */
#include "syncgate/doc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "utf8.h"

#define CHUNK_SIZE (16 * 1024)
#define PATH_MAX_STEPS 32

struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct doc {
    struct chunk *chunks;
};

struct doc *doc_new(void)
{
    return calloc(1, sizeof(struct doc));
}

void doc_free(struct doc *doc)
{
    if (!doc)
        return;
    struct chunk *c = doc->chunks;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(doc);
}

static void *doc_alloc(struct doc *doc, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    struct chunk *c = doc->chunks;
    if (!c || c->cap - c->used < size) {
        /* Large requests get a chunk of their own behind the current one, so
         * the space left in the current chunk is not wasted. */
        bool own = size > CHUNK_SIZE / 4;
        size_t cap = own ? size : CHUNK_SIZE;
        struct chunk *nc = malloc(sizeof(*nc) + cap);
        if (!nc)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (own && c) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            doc->chunks = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *doc_strndup(struct doc *doc, const char *s, size_t len)
{
    char *p = doc_alloc(doc, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

struct doc_origin doc_origin(struct doc *doc, enum doc_src src, const char *name)
{
    struct doc_origin at = {.src = src};
    at.name = doc_strndup(doc, name, strlen(name));
    return at;
}

const char *doc_where(const struct doc_origin *at, char *buf, size_t n)
{
    if (at->line)
        snprintf(buf, n, "%s:%u:%u", at->name ? at->name : "?", at->line, at->col);
    else
        snprintf(buf, n, "%s", at->name ? at->name : "?");
    return buf;
}

static struct doc_node *node_new(struct doc *doc, enum doc_kind kind, const struct doc_origin *at)
{
    struct doc_node *n = doc_alloc(doc, sizeof(*n));
    if (!n)
        return NULL;
    n->kind = kind;
    n->at = *at;
    return n;
}

struct doc_node *doc_new_map(struct doc *doc, const struct doc_origin *at)
{
    return node_new(doc, DOC_MAP, at);
}

struct doc_node *doc_new_seq(struct doc *doc, const struct doc_origin *at)
{
    return node_new(doc, DOC_SEQ, at);
}

struct doc_node *doc_new_scalar(struct doc *doc, const struct doc_origin *at, const char *s,
                                size_t len, bool plain)
{
    struct doc_node *n = node_new(doc, DOC_SCALAR, at);
    if (!n)
        return NULL;
    n->str = doc_strndup(doc, s, len);
    if (!n->str)
        return NULL;
    n->len = len;
    n->plain = plain;
    return n;
}

bool doc_is_null(const struct doc_node *n)
{
    if (!n || n->kind != DOC_SCALAR || !n->plain)
        return false;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (!strcmp(n->str, nulls[i]))
            return true;
    return false;
}

static void list_append(struct doc_node *list, struct doc_node *item)
{
    item->next = NULL;
    if (list->tail)
        list->tail->next = item;
    else
        list->head = item;
    list->tail = item;
    list->n++;
}

struct doc_node *doc_map_get(const struct doc_node *map, const char *key)
{
    if (!map || map->kind != DOC_MAP)
        return NULL;
    for (struct doc_node *e = map->head; e; e = e->next)
        if (!strcmp(e->key, key))
            return e;
    return NULL;
}

/* Put item in place of old (a child of list). */
static void list_replace(struct doc_node *list, struct doc_node *old, struct doc_node *item)
{
    struct doc_node **pp = &list->head;
    while (*pp != old)
        pp = &(*pp)->next;
    item->next = old->next;
    *pp = item;
    if (list->tail == old)
        list->tail = item;
    old->next = NULL;
}

int doc_map_put(struct doc *doc, struct doc_node *map, const char *key,
                const struct doc_origin *key_at, struct doc_node *value)
{
    value->key = doc_strndup(doc, key, strlen(key));
    if (!value->key)
        return -ENOMEM;
    value->key_at = *key_at;
    struct doc_node *old = doc_map_get(map, key);
    if (old)
        list_replace(map, old, value);
    else
        list_append(map, value);
    return 0;
}

void doc_map_del(struct doc_node *map, const char *key)
{
    struct doc_node *prev = NULL;
    for (struct doc_node *e = map->head; e; prev = e, e = e->next) {
        if (strcmp(e->key, key))
            continue;
        if (prev)
            prev->next = e->next;
        else
            map->head = e->next;
        if (map->tail == e)
            map->tail = prev;
        map->n--;
        e->next = NULL;
        return;
    }
}

void doc_seq_append(struct doc_node *seq, struct doc_node *item)
{
    list_append(seq, item);
}

struct doc_node *doc_seq_at(const struct doc_node *seq, size_t i)
{
    if (!seq || seq->kind != DOC_SEQ)
        return NULL;
    struct doc_node *e = seq->head;
    while (e && i--)
        e = e->next;
    return e;
}

__attribute__((format(printf, 3, 4))) static int fail(struct diag *d, const struct doc_origin *at,
                                                      const char *fmt, ...)
{
    memset(d, 0, sizeof(*d));
    if (at)
        doc_where(at, d->where, sizeof(d->where));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Append a path step to buf (n bytes): ".key" ("key" first), or "[index]" when key is NULL. */
static void path_append(char *buf, size_t n, const char *key, size_t index)
{
    size_t len = strlen(buf);
    if (len + 1 >= n)
        return;
    if (key)
        snprintf(buf + len, n - len, "%s%s", len ? "." : "", key);
    else
        snprintf(buf + len, n - len, "[%zu]", index);
}

/*
 * Keys become parts of paths, threshold selectors and label names, and are
 * printed in messages and summaries: they must be UTF-8 text without control
 * characters. On a bad key, d gets the message with key set to path (the
 * key's path from the root of this document, the key included).
 */
static int check_key(struct diag *d, const struct doc_origin *at, const char *k, size_t klen,
                     const char *path)
{
    const unsigned char *p = (const unsigned char *)k;
    bool utf8 = true, control = false;
    for (size_t left = klen, l; left; p += l, left -= l) {
        if (!(l = utf8_seq_len(p, left))) {
            utf8 = false;
            break;
        }
        if (*p < 0x20 || *p == 0x7f)
            control = true;
    }
    if (utf8 && !control)
        return 0;
    char q[400];
    if (!utf8)
        fail(d, at, "key %s is not valid UTF-8 text", utf8_escape(k, klen, true, q, sizeof(q)));
    else
        fail(d, at, "%s contains control characters, which are not allowed",
             utf8_escape(k, klen, true, q, sizeof(q)));
    snprintf(d->key, sizeof(d->key), "%s", path);
    return -EINVAL;
}

/* ---- YAML ---------------------------------------------------------------- */

struct frame {
    struct doc_node *node;
    const char *key; /* map frames: key read, value pending */
    struct doc_origin key_at;
};

struct yaml_reader {
    struct doc *doc;
    struct diag *d;
    enum doc_src src;
    const char *name; /* arena copy */
    struct frame stack[DOC_MAX_DEPTH];
    int depth;
    struct doc_node *root;
    int ndocs;
};

static struct doc_origin mark_origin(const struct yaml_reader *r, yaml_mark_t m)
{
    struct doc_origin at = {.name = r->name, .src = r->src};
    if (r->src == DOC_SRC_FILE) {
        at.line = (unsigned)m.line + 1;
        at.col = (unsigned)m.column + 1;
    }
    return at;
}

static int yaml_fail_parser(struct yaml_reader *r, yaml_parser_t *p, const char *buf, size_t len)
{
    struct doc_origin at = {.name = r->name, .src = r->src};
    if (p->error == YAML_MEMORY_ERROR) {
        fail(r->d, &at, "out of memory");
        return -ENOMEM;
    }
    if (p->error == YAML_READER_ERROR) {
        /* libyaml gives a byte offset for encoding errors, not a mark. */
        if (r->src == DOC_SRC_FILE) {
            /* Count as libyaml does: CR LF, CR, LF, NEL, LS and PS each end a
             * line; columns count characters (all valid UTF-8 before off). */
            size_t off = p->problem_offset < len ? p->problem_offset : len;
            const unsigned char *u = (const unsigned char *)buf;
            unsigned line = 1, col = 1;
            for (size_t i = 0; i < off; i++) {
                bool lbreak = u[i] == '\n' || (u[i] == '\r' && (i + 1 >= off || u[i + 1] != '\n'));
                if (i + 1 < off && u[i] == 0xc2 && u[i + 1] == 0x85)
                    lbreak = true, i++;
                else if (i + 2 < off && u[i] == 0xe2 && u[i + 1] == 0x80 &&
                         (u[i + 2] == 0xa8 || u[i + 2] == 0xa9))
                    lbreak = true, i += 2;
                if (lbreak) {
                    line++;
                    col = 1;
                } else if ((u[i] & 0xc0) != 0x80 && !(u[i] == '\r' && i + 1 < off)) {
                    col++;
                }
            }
            at.line = line;
            at.col = col;
        }
        return fail(r->d, &at, "not valid UTF-8 text (%s); profiles must be UTF-8",
                    p->problem ? p->problem : "unreadable input");
    }
    at = mark_origin(r, p->problem_mark);
    if (p->context)
        return fail(r->d, &at, "invalid YAML: %s (%s at line %zu, column %zu)",
                    p->problem ? p->problem : "syntax error", p->context, p->context_mark.line + 1,
                    p->context_mark.column + 1);
    return fail(r->d, &at, "invalid YAML: %s", p->problem ? p->problem : "syntax error");
}

static int check_anchor_tag(struct yaml_reader *r, const yaml_event_t *ev,
                            const yaml_char_t *anchor, const yaml_char_t *tag, bool scalar)
{
    struct doc_origin at = mark_origin(r, ev->start_mark);
    if (anchor)
        return fail(r->d, &at, "YAML anchors (&%s) are not supported; write the value out",
                    (const char *)anchor);
    if (tag && !(scalar && !strcmp((const char *)tag, "tag:yaml.org,2002:str")))
        return fail(r->d, &at, "YAML tags (%s) are not supported; only !!str is",
                    (const char *)tag);
    return 0;
}

/* Attach a finished value node to the open collection (or make it the root). */
static int yaml_attach(struct yaml_reader *r, struct doc_node *n)
{
    if (r->depth == 0) {
        r->root = n;
        return 0;
    }
    struct frame *f = &r->stack[r->depth - 1];
    if (f->node->kind == DOC_MAP) {
        n->key = f->key;
        n->key_at = f->key_at;
        f->key = NULL;
        list_append(f->node, n);
        return 0;
    }
    if (f->node->n >= DOC_MAX_SEQ)
        return fail(r->d, &n->at, "too many items in a list (at most %d)", DOC_MAX_SEQ);
    list_append(f->node, n);
    return 0;
}

/* A scalar where a key is expected: record it, refusing duplicates. */
static int yaml_key(struct yaml_reader *r, struct frame *f, const yaml_event_t *ev)
{
    struct doc_origin at = mark_origin(r, ev->start_mark);
    if (ev->type != YAML_SCALAR_EVENT)
        return fail(r->d, &at, "keys must be plain strings, not lists or mappings");
    const char *k = (const char *)ev->data.scalar.value;
    size_t klen = ev->data.scalar.length;
    if (memchr(k, '\0', klen))
        return fail(r->d, &at, "NUL characters are not allowed");
    char path[sizeof(r->d->key)] = "";
    for (int i = 1; i < r->depth; i++) {
        const struct doc_node *parent = r->stack[i - 1].node;
        path_append(path, sizeof(path), parent->kind == DOC_MAP ? r->stack[i].node->key : NULL,
                    parent->n - 1);
    }
    path_append(path, sizeof(path), k, 0);
    int rc = check_key(r->d, &at, k, klen, path);
    if (rc)
        return rc;
    if (f->node->n >= DOC_MAX_MAP)
        return fail(r->d, &at, "too many keys in a mapping (at most %d)", DOC_MAX_MAP);
    struct doc_node *dup = doc_map_get(f->node, k);
    if (dup) {
        char prev[300];
        return fail(r->d, &at, "duplicate key \"%.200s\" (first at %s)", k,
                    doc_where(&dup->key_at, prev, sizeof(prev)));
    }
    f->key = doc_strndup(r->doc, k, klen);
    if (!f->key)
        return -ENOMEM;
    f->key_at = at;
    return 0;
}

static int yaml_event(struct yaml_reader *r, const yaml_event_t *ev)
{
    struct doc_origin at = mark_origin(r, ev->start_mark);
    struct frame *top = r->depth ? &r->stack[r->depth - 1] : NULL;
    int rc;

    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++r->ndocs > 1)
            return fail(r->d, &at, "only one YAML document is allowed (found \"---\")");
        return 0;
    case YAML_ALIAS_EVENT:
        return fail(r->d, &at, "YAML aliases (*%s) are not supported; write the value out",
                    (const char *)ev->data.alias.anchor);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        if (!top)
            return fail(r->d, &at, "invalid YAML: unbalanced collection end");
        r->depth--;
        return 0;
    default:
        break;
    }

    if (top && top->node->kind == DOC_MAP && !top->key)
        return yaml_key(r, top, ev);

    struct doc_node *n;
    if (ev->type == YAML_SCALAR_EVENT) {
        rc = check_anchor_tag(r, ev, ev->data.scalar.anchor, ev->data.scalar.tag, true);
        if (rc)
            return rc;
        const char *v = (const char *)ev->data.scalar.value;
        size_t vlen = ev->data.scalar.length;
        if (memchr(v, '\0', vlen))
            return fail(r->d, &at, "NUL characters are not allowed");
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
        n = doc_new_scalar(r->doc, &at, v, vlen, plain);
        if (!n)
            return -ENOMEM;
        return yaml_attach(r, n);
    }

    bool is_map = ev->type == YAML_MAPPING_START_EVENT;
    rc = is_map ? check_anchor_tag(r, ev, ev->data.mapping_start.anchor, ev->data.mapping_start.tag,
                                   false)
                : check_anchor_tag(r, ev, ev->data.sequence_start.anchor,
                                   ev->data.sequence_start.tag, false);
    if (rc)
        return rc;
    if (r->depth >= DOC_MAX_DEPTH)
        return fail(r->d, &at, "nested too deeply (at most %d levels)", DOC_MAX_DEPTH);
    n = is_map ? doc_new_map(r->doc, &at) : doc_new_seq(r->doc, &at);
    if (!n)
        return -ENOMEM;
    rc = yaml_attach(r, n);
    if (rc)
        return rc;
    r->stack[r->depth++] = (struct frame){.node = n};
    return 0;
}

int doc_parse_yaml(struct doc *doc, const char *buf, size_t len, enum doc_src src, const char *name,
                   struct doc_node **out, struct diag *d)
{
    struct yaml_reader r = {.doc = doc, .d = d, .src = src};
    r.name = doc_strndup(doc, name, strlen(name));
    if (!r.name)
        return -ENOMEM;

    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return -ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);

    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = yaml_fail_parser(&r, &p, buf, len);
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        rc = yaml_event(&r, &ev);
        yaml_event_delete(&ev);
        if (rc == -ENOMEM) {
            struct doc_origin at = {.name = r.name, .src = src};
            fail(d, &at, "out of memory");
        }
        if (rc || end)
            break;
    }
    yaml_parser_delete(&p);
    if (rc)
        return rc;
    if (!r.root) {
        struct doc_origin at = {
            .name = r.name, .src = src, .line = src == DOC_SRC_FILE, .col = src == DOC_SRC_FILE};
        r.root = doc_new_scalar(doc, &at, "", 0, true);
        if (!r.root)
            return -ENOMEM;
    }
    *out = r.root;
    return 0;
}

/* ---- JSON ---------------------------------------------------------------- */

/* path: the node's path from the root (sizeof(d->key) bytes), for messages. */
static int json_node(struct doc *doc, const cJSON *j, const struct doc_origin *at, int depth,
                     char *path, struct doc_node **out, struct diag *d)
{
    if (depth > DOC_MAX_DEPTH)
        return fail(d, at, "nested too deeply (at most %d levels)", DOC_MAX_DEPTH);
    struct doc_node *n = NULL;
    char num[64];

    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        bool is_map = cJSON_IsObject(j);
        n = is_map ? doc_new_map(doc, at) : doc_new_seq(doc, at);
        if (!n)
            return -ENOMEM;
        for (const cJSON *c = j->child; c; c = c->next) {
            if (n->n >= (is_map ? DOC_MAX_MAP : DOC_MAX_SEQ))
                return fail(d, at, "too many %s (at most %d)", is_map ? "keys" : "items",
                            is_map ? DOC_MAX_MAP : DOC_MAX_SEQ);
            struct doc_node *cn;
            size_t plen = strlen(path);
            int rc = 0;
            path_append(path, sizeof(d->key), is_map ? c->string : NULL, n->n);
            if (is_map)
                rc = check_key(d, at, c->string, strlen(c->string), path);
            if (!rc)
                rc = json_node(doc, c, at, depth + 1, path, &cn, d);
            if (rc)
                return rc;
            path[plen] = '\0';
            if (is_map) {
                if (doc_map_get(n, c->string))
                    return fail(d, at, "duplicate key \"%.200s\" in JSON", c->string);
                cn->key = doc_strndup(doc, c->string, strlen(c->string));
                if (!cn->key)
                    return -ENOMEM;
                cn->key_at = *at;
            }
            list_append(n, cn);
        }
    } else if (cJSON_IsString(j)) {
        n = doc_new_scalar(doc, at, j->valuestring, strlen(j->valuestring), false);
    } else if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        /* Keep integers looking like integers so they read back as such. */
        if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) /* range first: no UB cast */
            snprintf(num, sizeof(num), "%lld", (long long)v);
        else
            snprintf(num, sizeof(num), "%.17g", v);
        n = doc_new_scalar(doc, at, num, strlen(num), true);
    } else if (cJSON_IsBool(j)) {
        const char *s = cJSON_IsTrue(j) ? "true" : "false";
        n = doc_new_scalar(doc, at, s, strlen(s), true);
    } else {
        n = doc_new_scalar(doc, at, "null", 4, true);
    }
    if (!n)
        return -ENOMEM;
    *out = n;
    return 0;
}

int doc_parse_json(struct doc *doc, const char *text, enum doc_src src, const char *name,
                   struct doc_node **out, struct diag *d)
{
    struct doc_origin at = doc_origin(doc, src, name);
    if (!at.name)
        return -ENOMEM;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(text, &end, 1);
    if (!j) {
        /* cJSON reports where it stopped; name the byte and a little context. */
        const char *e = cJSON_GetErrorPtr();
        size_t off = (e && e >= text) ? (size_t)(e - text) : 0;
        size_t tlen = strlen(text);
        if (off > tlen)
            off = tlen;
        char near[24];
        size_t k = 0;
        for (size_t i = off; i < tlen && k + 1 < sizeof(near); i++)
            near[k++] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
        near[k] = '\0';
        if (k)
            return fail(d, &at, "invalid JSON at byte %zu (near \"%s\")", off + 1, near);
        return fail(d, &at, "invalid JSON: unexpected end at byte %zu", off + 1);
    }
    /* cJSON ends a string at an escaped NUL, so "1s\u0000x" would read as "1s". */
    bool in_str = false;
    for (const char *p = text; p < end; p++) {
        if (*p == '"') {
            in_str = !in_str;
        } else if (in_str && *p == '\\') {
            if (p[1] == 'u' && !strncmp(p + 2, "0000", 4)) {
                cJSON_Delete(j);
                return fail(d, &at, "NUL characters (\\u0000) are not allowed");
            }
            p++; /* the escaped character; \uXXXX's digits are harmless */
        }
    }
    char path[sizeof(d->key)] = "";
    int rc = json_node(doc, j, &at, 0, path, out, d);
    cJSON_Delete(j);
    return rc;
}

/* ---- path edits ---------------------------------------------------------- */

struct path_seg {
    const char *name; /* NULL: an index */
    size_t index;
    size_t end; /* offset in path just after this step, for messages */
};

static int path_split(struct doc *doc, const char *path, struct path_seg *steps, size_t *nsteps,
                      struct diag *d)
{
    size_t n = 0, i = 0, len = strlen(path);
    d->msg[0] = '\0';
    if (!len)
        goto empty;
    while (i < len) {
        size_t start = i;
        int braces = 0;
        while (i < len && (braces || (path[i] != '.' && path[i] != '['))) {
            if (path[i] == '{')
                braces++;
            else if (path[i] == '}' && braces)
                braces--;
            i++;
        }
        if (i == start)
            goto empty;
        if (n >= PATH_MAX_STEPS)
            goto deep;
        steps[n].name = doc_strndup(doc, path + start, i - start);
        if (!steps[n].name)
            return -ENOMEM;
        steps[n++].end = i;
        while (i < len && path[i] == '[') {
            char *e;
            if (path[i + 1] < '0' || path[i + 1] > '9')
                goto bad_index;
            errno = 0;
            unsigned long long v = strtoull(path + i + 1, &e, 10);
            if (errno || *e != ']' || v >= DOC_MAX_SEQ)
                goto bad_index;
            if (n >= PATH_MAX_STEPS)
                goto deep;
            steps[n].name = NULL;
            steps[n].index = (size_t)v;
            i = (size_t)(e - path) + 1;
            steps[n++].end = i;
        }
        if (i < len) {
            if (path[i] != '.')
                goto bad_index;
            i++;
            if (i == len)
                goto empty;
        }
    }
    *nsteps = n;
    return 0;
empty:
    snprintf(d->msg, sizeof(d->msg), "empty name in path \"%.200s\"", path);
    return -EINVAL;
deep:
    snprintf(d->msg, sizeof(d->msg), "path has too many parts (at most %d)", PATH_MAX_STEPS);
    return -EINVAL;
bad_index:
    snprintf(d->msg, sizeof(d->msg),
             "bad path \"%.200s\": expected name.name or name[N] with N below %d", path,
             DOC_MAX_SEQ);
    return -EINVAL;
}

/* Item of seq that is a map whose "name" entry is the scalar name. */
static struct doc_node *seq_find_named(const struct doc_node *seq, const char *name)
{
    for (struct doc_node *e = seq->head; e; e = e->next) {
        struct doc_node *nm = doc_map_get(e, "name");
        if (nm && nm->kind == DOC_SCALAR && !strcmp(nm->str, name))
            return e;
    }
    return NULL;
}

int doc_set_path(struct doc *doc, struct doc_node *root, const char *path, struct doc_node *value,
                 const struct doc_origin *at, struct diag *d)
{
    struct path_seg steps[PATH_MAX_STEPS];
    size_t nsteps = 0;
    int rc = path_split(doc, path, steps, &nsteps, d);
    if (rc)
        return rc;

    struct doc_node *cur = root;
    for (size_t s = 0; s < nsteps; s++) {
        const struct path_seg *st = &steps[s];
        bool last = s + 1 == nsteps;
        int prefix = s ? (int)steps[s - 1].end : 0;
        struct doc_node *child = NULL;

        if (cur->kind == DOC_MAP && st->name) {
            child = doc_map_get(cur, st->name);
            if (last)
                return doc_map_put(doc, cur, st->name, at, value);
            if (!child || doc_is_null(child)) {
                child = steps[s + 1].name ? doc_new_map(doc, at) : doc_new_seq(doc, at);
                if (!child || doc_map_put(doc, cur, st->name, at, child))
                    return -ENOMEM;
            }
        } else if (cur->kind == DOC_SEQ) {
            if (st->name) {
                child = seq_find_named(cur, st->name);
                if (!child) {
                    snprintf(d->msg, sizeof(d->msg), "%.*s has no item named \"%.100s\"", prefix,
                             path, st->name);
                    return -EINVAL;
                }
            } else if (st->index < cur->n) {
                child = doc_seq_at(cur, st->index);
            } else if (st->index == cur->n) {
                if (!last) {
                    child = steps[s + 1].name ? doc_new_map(doc, at) : doc_new_seq(doc, at);
                    if (!child)
                        return -ENOMEM;
                }
                doc_seq_append(cur, last ? value : child);
                if (last)
                    return 0;
            } else {
                snprintf(d->msg, sizeof(d->msg), "index %zu is out of range: %.*s has %zu items",
                         st->index, prefix, path, cur->n);
                return -EINVAL;
            }
            if (last) {
                value->key = NULL;
                list_replace(cur, child, value);
                return 0;
            }
        } else {
            if (!prefix)
                snprintf(d->msg, sizeof(d->msg), "bad path \"%.200s\"", path);
            else
                snprintf(d->msg, sizeof(d->msg), "%.*s is not a %s", prefix, path,
                         st->name ? "mapping" : "list");
            return -EINVAL;
        }
        cur = child;
    }
    snprintf(d->msg, sizeof(d->msg), "empty path");
    return -EINVAL;
}
