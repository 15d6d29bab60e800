/* jvu: a VU's journey state: step requests expanded, responses judged, captures kept. */
#include "syncgate/jvu.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "syncgate/units.h"

int jvu_init(struct jvu *v, uint64_t vu, const struct plan *plan, uint64_t seed)
{
    int64_t total = 0;
    memset(v, 0, sizeof(*v));
    v->vu = vu;
    /* splitmix64 of seed and vu: distinct, never-zero streams per VU */
    uint64_t z = seed + vu * UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    v->rng = (z ^ (z >> 31)) | 1;
    v->credit = calloc(plan->n ? plan->n : 1, sizeof(*v->credit));
    if (!v->credit)
        return -ENOMEM;
    for (size_t i = 0; i < plan->n; i++)
        total += plan->weights[i];
    for (int64_t k = total ? (int64_t)((vu - 1) % (uint64_t)total) : 0; k > 0; k--)
        journey_pick(plan->weights, v->credit, plan->n);
    return 0;
}

void jvu_clear(struct jvu *v)
{
    free(v->credit);
    free(v->vars.p);
    free(v->url.p);
    if (v->hdr.p) /* may hold the gateway's key */
        explicit_bzero(v->hdr.p, v->hdr.cap);
    free(v->hdr.p);
    free(v->body.p);
    free(v->resp);
    free(v->rhdr.p);
    memset(v, 0, sizeof(*v));
}

const struct plan_step *jvu_step(const struct jvu *v, const struct jvu_ctx *c)
{
    return &c->plan->j[v->journey].steps[v->step];
}

void jvu_start_journey(struct jvu *v, const struct jvu_ctx *c, uint32_t journey)
{
    v->journey = journey;
    v->step = 0;
    v->iteration = v->started++;
    v->have = 0;
    v->vars_used = 0;
    if (c->plan->j[journey].j->uses_data && c->rows)
        v->row = atomic_fetch_add_explicit(c->rows, 1, memory_order_relaxed) *
                     (c->row_stride > 1 ? c->row_stride : 1) + c->row_offset;
}

uint32_t jvu_start(struct jvu *v, const struct jvu_ctx *c)
{
    uint32_t j = (uint32_t)journey_pick(c->plan->weights, v->credit, c->plan->n);
    jvu_start_journey(v, c, j);
    return j;
}

/* ---- expansion ------------------------------------------------------------ */

struct vctx {
    struct jvu *v;
    const struct jvu_ctx *c;
    char token[JVU_VALUE_MAX * 8];
};

static int value_cb(void *ud, const struct tpl *t, const struct tpl_seg *s, const char **p,
                    size_t *len)
{
    struct vctx *x = ud;
    const struct journey_set *js = x->c->plan->js;
    (void)t;
    switch (s->kind) {
    case TPL_CAPTURE:
        if (!(x->v->have & (UINT64_C(1) << s->a)))
            return -ENOENT;
        *p = x->v->vars.p + x->v->var_off[s->a];
        *len = x->v->var_len[s->a];
        return 0;
    case TPL_DATA:
        *p = data_cell(&js->data[s->a].ds, x->v->row, (size_t)s->b);
        *len = strlen(*p);
        return 0;
    case TPL_ENV:
        *p = js->env_value[s->a];
        *len = strlen(*p);
        return 0;
    case TPL_AUTH: {
        int n = x->c->token ? x->c->token(x->c->token_ud, x->token, sizeof(x->token)) : -ENOENT;
        if (n < 0)
            return -ENOENT;
        *p = x->token;
        *len = (size_t)n;
        return 0;
    }
    default:
        return -ENOENT;
    }
}

/* Make b hold at least need bytes (doubling from 256), never more than max. */
static bool grow(struct jvu_buf *b, size_t need, size_t max)
{
    if (b->cap >= need)
        return true;
    if (need > max)
        return false;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > max)
        cap = max;
    char *p = realloc(b->p, cap);
    if (!p)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

/* Expand t into b, growing it on -ENOSPC up to max; off bytes at its start are kept. */
static ssize_t expand_into(struct jvu_buf *b, size_t off, size_t max, const struct tpl *t,
                           enum tpl_enc enc, const struct tpl_values *vals,
                           const struct tpl_seg **miss)
{
    size_t need = off + t->src_len + 1;
    for (;;) {
        if (!grow(b, need, max))
            return need > max ? -ENOSPC : -ENOMEM;
        ssize_t rc = tpl_expand(t, enc, vals, b->p + off, b->cap - off, miss);
        if (rc != -ENOSPC || b->cap >= max)
            return rc;
        need = b->cap * 2;
    }
}

/* The reason a placeholder could not be filled, for JVU_SKIP and JVU_FAIL. */
static void missing_why(const struct tpl *t, const struct tpl_seg *s, char *why, size_t n)
{
    if (s && s->kind == TPL_CAPTURE)
        snprintf(why, n, "${%.*s} was not captured", (int)s->name_len, t->src + s->name);
    else
        snprintf(why, n, "%s", s && s->kind == TPL_AUTH ? "no access token" : "a value is missing");
}

static enum jvu_outcome expand_fail(ssize_t rc, const struct tpl *t, const struct tpl_seg *miss,
                                    const char *what, char *why, size_t n)
{
    if (rc == -ENOENT) {
        missing_why(t, miss, why, n);
        return miss && miss->kind == TPL_CAPTURE ? JVU_SKIP : JVU_FAIL;
    }
    snprintf(why, n, "%s: %s", what,
             rc == -ENOSPC  ? "too long once expanded"
             : rc == -EINVAL ? "a substituted value holds a line break"
                             : "cannot expand");
    return JVU_FAIL;
}

/*
 * The request's header lines into v->hdr and its nodes: the phase's, the step's
 * (expanded), a content type for a body that has none, and an empty Expect. Returns 0,
 * -ENOSPC (the buffer is too small: grow and call again), -ENOMEM, or 1 with *out the
 * outcome of a placeholder that cannot be filled (why says which).
 */
static int build_headers(struct jvu *v, const struct jvu_ctx *c, const struct step *s,
                         const struct tpl_values *vals, struct jreq *r,
                         const struct tpl_seg **miss, enum jvu_outcome *out, char *why, size_t n)
{
    size_t nh = 0, used = 0;
    struct curl_slist *prev = NULL;
    bool type = false;
    r->headers = NULL;
    if (!v->hdr.p && !grow(&v->hdr, 512, JVU_HEADER_BYTES))
        return -ENOMEM;
    for (size_t i = 0; i < s->nheaders + c->nextra + 2; i++) {
        char *at = v->hdr.p + used;
        size_t room = v->hdr.cap - used;
        const char *line = NULL;
        if (i < c->nextra) {
            line = c->extra[i];
        } else if (i < c->nextra + s->nheaders) {
            const struct step_header *h = &s->headers[i - c->nextra];
            size_t nl = strlen(h->name);
            if (nl + 3 > room)
                return -ENOSPC;
            memcpy(at, h->name, nl);
            memcpy(at + nl, ": ", 2);
            ssize_t rc = tpl_expand(&h->value, TPL_ENC_HEADER, vals, at + nl + 2, room - nl - 2,
                                    miss);
            if (rc == -ENOSPC)
                return -ENOSPC;
            if (rc < 0) {
                char what[160];
                snprintf(what, sizeof(what), "header %s", h->name);
                *out = expand_fail(rc, &h->value, *miss, what, why, n);
                return 1;
            }
            if (rc == 0) /* "Name:" with nothing after it tells libcurl to drop the header */
                at[nl + 1] = '\0';
            used += nl + 2 + (size_t)rc + 1;
            type |= !strcasecmp(h->name, "Content-Type");
        } else if (i == c->nextra + s->nheaders && s->has_body && !type) {
            line = s->body_enc == TPL_ENC_JSON ? "Content-Type: application/json"
                                               : "Content-Type: text/plain";
        } else if (i == c->nextra + s->nheaders + 1 && s->has_body) {
            line = "Expect:"; /* no "Expect: 100-continue" round trip before a body */
        } else {
            continue;
        }
        if (line) {
            size_t ll = strlen(line);
            if (ll + 1 > room)
                return -ENOSPC;
            memcpy(at, line, ll + 1);
            used += ll + 1;
        }
        struct curl_slist *node = &v->hnode[nh++];
        node->data = at;
        node->next = NULL;
        if (prev)
            prev->next = node;
        else
            r->headers = node;
        prev = node;
    }
    return 0;
}

enum jvu_outcome jvu_prepare(struct jvu *v, const struct jvu_ctx *c, struct jreq *r, char *why,
                             size_t n)
{
    const struct plan_step *ps = jvu_step(v, c);
    const struct step *s = ps->s;
    struct vctx x = {.v = v, .c = c};
    struct tpl_values vals = {value_cb, &x, v->vu, v->iteration, &v->rng};
    const struct tpl_seg *miss = NULL;
    ssize_t rc;

    memset(r, 0, sizeof(*r));
    if (s->needs & ~v->have) {
        for (int i = 0; i < JOURNEY_MAX_CAPTURES; i++)
            if ((s->needs & ~v->have) & (UINT64_C(1) << i)) {
                snprintf(why, n, "${%s} was not captured", c->plan->j[v->journey].j->captures[i]);
                break;
            }
        return JVU_SKIP;
    }
    if (ps->url) {
        r->url = ps->url;
        r->static_url = true;
    } else {
        size_t bl = strlen(ps->base);
        if (!grow(&v->url, bl + 1, JVU_URL_MAX))
            return expand_fail(-ENOSPC, &s->path, NULL, "path", why, n);
        memcpy(v->url.p, ps->base, bl);
        rc = expand_into(&v->url, bl, JVU_URL_MAX, &s->path, TPL_ENC_URL, &vals, &miss);
        if (rc < 0)
            return expand_fail(rc, &s->path, miss, "path", why, n);
        r->url = v->url.p;
    }

    if (s->nheaders || s->has_body || c->nextra) {
        enum jvu_outcome o = JVU_SEND;
        for (;;) {
            rc = build_headers(v, c, s, &vals, r, &miss, &o, why, n);
            if (rc != -ENOSPC || v->hdr.cap >= JVU_HEADER_BYTES ||
                !grow(&v->hdr, v->hdr.cap * 2, JVU_HEADER_BYTES))
                break;
        }
        if (rc == 1)
            return o;
        if (rc < 0)
            return expand_fail(rc, NULL, NULL, "headers", why, n);
    }

    if (s->has_body) {
        rc = expand_into(&v->body, 0, JVU_BODY_MAX, &s->body, s->body_enc, &vals, &miss);
        if (rc < 0)
            return expand_fail(rc, &s->body, miss, "body", why, n);
        r->body = v->body.p;
        r->body_len = (size_t)rc;
    }
    return JVU_SEND;
}

/* ---- responses ------------------------------------------------------------- */

void jvu_reset_response(struct jvu *v)
{
    v->resp_len = 0;
    v->resp_over = false;
    v->rhdr_len = 0;
    v->rhdr_over = false;
}

void jvu_body_data(struct jvu *v, const char *p, size_t n)
{
    if (v->resp_over)
        return;
    if (v->resp_len + n > JVU_RESPONSE_MAX) {
        v->resp_over = true;
        return;
    }
    if (v->resp_len + n + 1 > v->resp_cap) {
        size_t cap = v->resp_cap ? v->resp_cap : 1024;
        while (cap < v->resp_len + n + 1)
            cap *= 2;
        if (cap > JVU_RESPONSE_MAX + 1)
            cap = JVU_RESPONSE_MAX + 1;
        char *b = realloc(v->resp, cap);
        if (!b) {
            v->resp_over = true;
            return;
        }
        v->resp = b;
        v->resp_cap = cap;
    }
    memcpy(v->resp + v->resp_len, p, n);
    v->resp_len += n;
    v->resp[v->resp_len] = '\0';
}

static bool header_wanted(const struct step *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->nexpects; i++)
        if (s->expects[i].kind == EXPECT_HEADER && strlen(s->expects[i].header) == len &&
            !strncasecmp(s->expects[i].header, name, len))
            return true;
    for (size_t i = 0; i < s->ncaptures; i++)
        if (s->captures[i].header && strlen(s->captures[i].header) == len &&
            !strncasecmp(s->captures[i].header, name, len))
            return true;
    return false;
}

void jvu_header_line(struct jvu *v, const struct step *s, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (!colon || !header_wanted(s, line, (size_t)(colon - line)))
        return;
    /* a status line starts every response of a redirect chain or a 100: the last wins */
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    if (!grow(&v->rhdr, v->rhdr_len + n + 2, JVU_RESP_HEADERS)) {
        v->rhdr_over = true;
        return;
    }
    memcpy(v->rhdr.p + v->rhdr_len, line, n);
    v->rhdr.p[v->rhdr_len + n] = '\n';
    v->rhdr_len += n + 1;
    v->rhdr.p[v->rhdr_len] = '\0';
}

/* The value of header name in the kept lines (the last one when repeated), trimmed. */
static bool header_value(const struct jvu *v, const char *name, const char **val, size_t *len)
{
    size_t nl = strlen(name);
    bool found = false;
    const char *p = v->rhdr.p, *end = v->rhdr.p ? v->rhdr.p + v->rhdr_len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            const char *a = p + nl + 1, *b = eol;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            *val = a;
            *len = (size_t)(b - a);
            found = true;
        }
        p = eol + 1;
    }
    return found;
}

/* Keep a captured value in slot; false when it does not fit. */
static bool keep(struct jvu *v, int slot, const char *p, size_t len)
{
    if (len > JVU_VALUE_MAX || !grow(&v->vars, v->vars_used + len + 1, JVU_VARS_BYTES))
        return false;
    memcpy(v->vars.p + v->vars_used, p, len);
    v->var_off[slot] = (uint16_t)v->vars_used;
    v->var_len[slot] = (uint16_t)len;
    v->vars_used += len;
    v->have |= UINT64_C(1) << slot;
    return true;
}

/* Whether the JSON value matches what e expects (text expanded with the iteration's values). */
static bool json_matches(const struct step_expect *e, const struct json_span *got,
                         const char *want, size_t want_len)
{
    char buf[JVU_VALUE_MAX + 1];
    switch (e->type) {
    case EXPECT_TRUE:
        return got->type == JSON_TRUE;
    case EXPECT_FALSE:
        return got->type == JSON_FALSE;
    case EXPECT_NULL:
        return got->type == JSON_NULL;
    case EXPECT_NUMBER:
        if (got->type != JSON_NUMBER || got->len >= sizeof(buf))
            return false;
        memcpy(buf, got->p, got->len);
        buf[got->len] = '\0';
        return strtod(buf, NULL) == e->number;
    case EXPECT_STRING: {
        /* a string compares with a string's content, or with a number's text ("${id}" vs 17) */
        if (got->type != JSON_STRING && got->type != JSON_NUMBER)
            return false;
        ssize_t n = json_text(got, buf, sizeof(buf));
        return n >= 0 && (size_t)n == want_len && !memcmp(buf, want, want_len);
    }
    }
    return false;
}

bool jvu_judge(struct jvu *v, const struct jvu_ctx *c, bool got_response, int status,
               int64_t duration, struct jvu_verdict *out)
{
    const struct plan_journey *pj = &c->plan->j[v->journey];
    const struct step *s = pj->steps[v->step].s;
    struct vctx x = {.v = v, .c = c};
    struct tpl_values vals = {value_cb, &x, v->vu, v->iteration, &v->rng};
    bool json_ok = false, json_checked = false;
    char want[JVU_VALUE_MAX + 1];

    memset(out, 0, sizeof(*out));
    out->status = got_response && step_status_ok(s, status);
    out->latency = got_response && s->max_latency > 0 && duration < s->max_latency;
    out->nexpects = s->nexpects;
    /* The body is judged only when it is there whole. */
    bool body = got_response && !v->resp_over;

    for (size_t i = 0; i < s->nexpects; i++) {
        const struct step_expect *e = &s->expects[i];
        bool pass = false;
        ssize_t wl = 0;
        if (e->kind != EXPECT_JSON || e->type == EXPECT_STRING)
            wl = tpl_expand(&e->text, TPL_ENC_RAW, &vals, want, sizeof(want), NULL);
        if (wl < 0 || !got_response) {
            out->expect[i] = false;
            continue;
        }
        switch (e->kind) {
        case EXPECT_BODY:
            pass = body && v->resp_len && memmem(v->resp, v->resp_len, want, (size_t)wl);
            break;
        case EXPECT_HEADER: {
            const char *hv;
            size_t hl;
            pass = header_value(v, e->header, &hv, &hl) && memmem(hv, hl, want, (size_t)wl);
            break;
        }
        case EXPECT_JSON: {
            struct json_span got;
            if (!json_checked) {
                json_checked = true;
                json_ok = body && v->resp_len && json_valid(v->resp, v->resp_len);
            }
            pass = json_ok && jp_find(&e->path, v->resp, v->resp_len, &got) == 0 &&
                   json_matches(e, &got, want, (size_t)wl);
            break;
        }
        }
        out->expect[i] = pass;
    }

    for (size_t i = 0; i < s->ncaptures; i++) {
        const struct step_capture *cp = &s->captures[i];
        bool kept = false;
        if (got_response && cp->header) {
            const char *hv;
            size_t hl;
            kept = header_value(v, cp->header, &hv, &hl) && hl > 0 && keep(v, cp->slot, hv, hl);
        } else if (got_response) {
            struct json_span got;
            char buf[JVU_VALUE_MAX + 1];
            if (!json_checked) {
                json_checked = true;
                json_ok = body && v->resp_len && json_valid(v->resp, v->resp_len);
            }
            ssize_t n = json_ok && jp_find(&cp->path, v->resp, v->resp_len, &got) == 0 &&
                                got.type != JSON_NULL
                            ? json_text(&got, buf, sizeof(buf))
                            : -1;
            kept = n >= 0 && keep(v, cp->slot, buf, (size_t)n);
        }
        out->capture[i] = kept;
        out->captures_failed += !kept;
    }
    out->ncaptures = s->ncaptures;
    v->step++;
    return v->step < pj->j->nsteps;
}

bool jvu_wants_body(const struct jvu *v, const struct jvu_ctx *c)
{
    return jvu_step(v, c)->s->wants_body;
}

bool jvu_wants_headers(const struct jvu *v, const struct jvu_ctx *c)
{
    return jvu_step(v, c)->s->wants_headers;
}
