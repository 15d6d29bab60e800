/* rw: k6-compatible remote-write series, encoded as snappy-compressed protobuf. */
#include "syncgate/rw.h"

#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remote.pb-c.h"
#include "utf8.h"

/* Prometheus' default native-histogram zero threshold (2^-128). */
#define RW_ZERO_THRESHOLD 2.938735877055719e-39

/* One metrics series as remembered between encodes. */
struct rw_entry {
    struct rw_entry *hnext, *next;
    uint64_t hash;
    enum metric_id id;
    struct tagset tags; /* raw copies, for matching the next snapshot's series */
    char *phase;        /* the fallback test_type it was made with, or NULL */
    uint64_t version;
    int64_t last_ts; /* ms of the last sample encoded; 0: never encoded */
    unsigned sent;   /* samples encoded, counted up to 2 */
    char *strs;      /* every string of tags and labels */
    size_t nlabels, name_slot;
    Prometheus__Label labels[]; /* sorted; labels[name_slot] is __name__ (value unset) */
};

struct rw_label {
    char *name, *value;
};

#define RW_NBUCKETS 8192 /* power of two, above METRICS_MAX_SERIES */
#define RW_MAX_LABELS (5 + TAGS_MAX + CONFIG_MAX_LABELS)

struct rw_encoder {
    char *testid, *instance, *environment, *test_type; /* sanitised; NULL: absent */
    char *phase; /* fallback test_type (rw_encoder_set_test_type) */
    size_t nstatic;
    struct rw_label statics[CONFIG_MAX_LABELS];
    size_t nstats;
    struct rw_stat stats[RW_MAX_STATS];
    bool native;
    /* Series names of each metric: one, or one per trend stat. */
    size_t nnames[M_COUNT];
    char *names[M_COUNT][RW_MAX_STATS];
    struct rw_entry *buckets[RW_NBUCKETS];
    struct rw_entry *first, *last;
    size_t nentries;
    uint64_t dropped;
};

/* ---- names, values, stats ---- */

size_t rw_label_name(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    if (!in || outlen == 0)
        return 0;
    for (; in[n] && n + 1 < outlen; n++) {
        unsigned char c = (unsigned char)in[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (n > 0 && c >= '0' && c <= '9');
        out[n] = ok ? (char)c : '_';
    }
    out[n] = '\0';
    if (n == 0 || (n >= 2 && out[0] == '_' && out[1] == '_'))
        return 0;
    return n;
}

size_t rw_label_value(const char *in, char *out, size_t outlen)
{
    if (!in || outlen == 0)
        return 0;
    size_t cap = outlen - 1 < RW_MAX_VALUE ? outlen - 1 : RW_MAX_VALUE;
    size_t inlen = strlen(in), i = 0, n = 0;
    const unsigned char *s = (const unsigned char *)in;
    while (i < inlen) {
        size_t l = utf8_seq_len(s + i, inlen - i);
        if (l == 0) {
            if (n + 1 > cap)
                break;
            out[n++] = '_';
            i++;
            continue;
        }
        if (n + l > cap)
            break;
        memcpy(out + n, s + i, l);
        n += l;
        i += l;
    }
    out[n] = '\0';
    return n;
}

int32_t rw_hist_index(double v)
{
    /* Upper bounds of the 8 buckets of one power of two, as fractions of it:
     * 2^(j/8) / 2. Comparing frexp's mantissa against them avoids log2
     * rounding at the bucket edges. */
    static const double bounds[8] = {
        0.5,
        0.5452538663326288,
        0.5946035575013605,
        0.6484197773255048,
        0.7071067811865476,
        0.7711054127039704,
        0.8408964152537145,
        0.9170040432046712,
    };
    int exp;
    double frac = frexp(v, &exp);
    int j = 0;
    while (j < 8 && bounds[j] < frac)
        j++;
    return (int32_t)(j + (exp - 1) * 8);
}

static int stat_error(char *err, size_t errlen, const char *fmt, const char *item)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, item);
    return -EINVAL;
}

/* Parse one trimmed item into st. */
static int parse_stat(const char *item, struct rw_stat *st, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        enum rw_stat_kind kind;
    } plain[] = {
        {"avg", RW_STAT_AVG}, {"min", RW_STAT_MIN},     {"max", RW_STAT_MAX},
        {"med", RW_STAT_MED}, {"count", RW_STAT_COUNT}, {"sum", RW_STAT_SUM},
    };
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        if (strcmp(item, plain[i].name) == 0) {
            st->kind = plain[i].kind;
            snprintf(st->suffix, sizeof(st->suffix), "%s", plain[i].name);
            return 0;
        }
    }
    size_t len = strlen(item);
    if (len < 4 || strncmp(item, "p(", 2) != 0 || item[len - 1] != ')')
        return stat_error(err, errlen, "unknown trend stat \"%s\"", item);
    /* k6 names the series after the text between the parentheses minus its dot. */
    size_t ndigits = 0, ndots = 0, k = 1;
    st->suffix[0] = 'p';
    for (size_t i = 2; i < len - 1; i++) {
        char c = item[i];
        if (c == '.' && ndots == 0 && ndigits > 0) {
            ndots++;
            continue;
        }
        if (c < '0' || c > '9' || k + 1 >= sizeof(st->suffix))
            return stat_error(err, errlen, "invalid percentile in trend stat \"%s\"", item);
        st->suffix[k++] = c;
        ndigits++;
    }
    st->suffix[k] = '\0';
    if (ndigits == 0 || item[len - 2] == '.')
        return stat_error(err, errlen, "invalid percentile in trend stat \"%s\"", item);
    st->p = strtod(item + 2, NULL);
    if (!(st->p >= 0 && st->p <= 100))
        return stat_error(err, errlen, "percentile out of 0..100 in trend stat \"%s\"", item);
    st->kind = RW_STAT_PCT;
    return 0;
}

int rw_parse_trend_stats(const char *list, struct rw_stat *out, size_t max, char *err,
                         size_t errlen)
{
    size_t n = 0;
    const char *p = list ? list : "";
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        char item[64];
        if (len >= sizeof(item)) {
            snprintf(item, sizeof(item), "%.*s", 60, p);
            return stat_error(err, errlen, "overlong item \"%s...\" in trend stats", item);
        }
        if (len == 0) { /* "min,,max" and a trailing comma are harmless */
            if (!end)
                break;
            p = end + 1;
            continue;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        struct rw_stat st;
        int rc = parse_stat(item, &st, err, errlen);
        if (rc < 0)
            return rc;
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            seen = seen || strcmp(out[i].suffix, st.suffix) == 0;
        if (!seen) {
            if (n == max)
                return stat_error(err, errlen, "too many trend stats (at \"%s\")", item);
            out[n++] = st;
        }
        if (!end)
            break;
        p = end + 1;
    }
    if (n == 0)
        return stat_error(err, errlen, "no trend stats in \"%s\"", list ? list : "");
    return (int)n;
}

/* ---- encoder ---- */

void rw_batch_clear(struct rw_batch *b)
{
    if (!b)
        return;
    free(b->body);
    memset(b, 0, sizeof(*b));
}

static char *dup_value(const char *s)
{
    char buf[RW_MAX_VALUE + 1];
    if (!s || rw_label_value(s, buf, sizeof(buf)) == 0)
        return NULL;
    return strdup(buf);
}

static int name_printf(char **dst, const char *fmt, const char *a, const char *b)
{
    char buf[128];
    snprintf(buf, sizeof(buf), fmt, a, b);
    *dst = strdup(buf);
    return *dst ? 0 : -ENOMEM;
}

static int make_names(struct rw_encoder *e)
{
    for (int id = 0; id < M_COUNT; id++) {
        const struct metric_def *d = metric_def(id);
        int rc = 0;
        e->nnames[id] = 1;
        switch (d->type) {
        case METRIC_COUNTER:
            rc = name_printf(&e->names[id][0], "k6_%s_total%s", d->name, "");
            break;
        case METRIC_RATE:
            rc = name_printf(&e->names[id][0], "k6_%s_rate%s", d->name, "");
            break;
        case METRIC_GAUGE:
            rc = name_printf(&e->names[id][0], "k6_%s%s", d->name, "");
            break;
        case METRIC_TREND:
            if (e->native) {
                rc = name_printf(&e->names[id][0], "k6_%s%s", d->name,
                                 d->unit == UNIT_TIME ? "_seconds" : "");
                break;
            }
            e->nnames[id] = e->nstats;
            for (size_t i = 0; i < e->nstats && rc == 0; i++)
                rc = name_printf(&e->names[id][i], "k6_%s_%s", d->name, e->stats[i].suffix);
            break;
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct rw_encoder *rw_encoder_new(const struct config *c, char *err, size_t errlen)
{
    struct rw_encoder *e = calloc(1, sizeof(*e));
    if (!e)
        goto nomem;
    const char *stats =
        c->metrics.rw.trend_stats ? c->metrics.rw.trend_stats : RW_DEFAULT_TREND_STATS;
    int n = rw_parse_trend_stats(stats, e->stats, RW_MAX_STATS, err, errlen);
    if (n < 0) {
        rw_encoder_free(e);
        return NULL;
    }
    e->nstats = (size_t)n;
    e->native = c->metrics.rw.native_histogram;
    e->testid = dup_value(c->testid);
    e->instance = dup_value(c->instance);
    e->environment = dup_value(c->environment);
    e->test_type = dup_value(c->test_type);
    for (size_t i = 0; i < c->metrics.nlabels && i < CONFIG_MAX_LABELS; i++) {
        char name[256];
        if (rw_label_name(c->metrics.labels[i].key, name, sizeof(name)) == 0)
            continue;
        char *v = dup_value(c->metrics.labels[i].value);
        if (!v)
            continue;
        e->statics[e->nstatic].value = v;
        e->statics[e->nstatic].name = strdup(name);
        if (!e->statics[e->nstatic++].name)
            goto nomem;
    }
    if (make_names(e) < 0)
        goto nomem;
    return e;
nomem:
    if (err && errlen)
        snprintf(err, errlen, "out of memory");
    rw_encoder_free(e);
    return NULL;
}

void rw_encoder_free(struct rw_encoder *e)
{
    if (!e)
        return;
    free(e->testid);
    free(e->instance);
    free(e->environment);
    free(e->test_type);
    free(e->phase);
    for (size_t i = 0; i < e->nstatic; i++) {
        free(e->statics[i].name);
        free(e->statics[i].value);
    }
    for (int id = 0; id < M_COUNT; id++)
        for (size_t i = 0; i < RW_MAX_STATS; i++)
            free(e->names[id][i]);
    for (struct rw_entry *x = e->first, *nx; x; x = nx) {
        nx = x->next;
        free(x->strs);
        free(x);
    }
    free(e);
}

int rw_encoder_set_test_type(struct rw_encoder *e, const char *test_type)
{
    char *v = NULL;
    if (test_type && *test_type && !(v = dup_value(test_type)))
        return -ENOMEM;
    free(e->phase);
    e->phase = v;
    return 0;
}

size_t rw_encoder_nseries(const struct rw_encoder *e)
{
    return e->nentries;
}

uint64_t rw_encoder_dropped(const struct rw_encoder *e)
{
    return e->dropped;
}

/*
 * The phase stands in for test_type only when neither the configuration nor
 * a scenario tag gives one (the scenario "smoke" is the smoke phase, any other
 * is load's); it is then part of the series' identity, so the same gauge in two
 * phases is two series, as the dashboards expect.
 */
static const char *fallback(const struct rw_encoder *e, const struct series *s)
{
    if (e->test_type)
        return NULL;
    const char *sc = tagset_get(&s->tags, "scenario");
    return sc && *sc ? NULL : e->phase;
}

static uint64_t series_hash(enum metric_id id, const struct tagset *t, const char *phase)
{
    uint64_t h = UINT64_C(1469598103934665603);
    h = (h ^ (unsigned)id) * UINT64_C(1099511628211);
    for (const char *p = phase; p && *p; p++)
        h = (h ^ (unsigned char)*p) * UINT64_C(1099511628211);
    for (unsigned i = 0; i < t->n; i++) {
        for (const char *s = t->t[i].key; *s; s++)
            h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
        h = (h ^ 0xff) * UINT64_C(1099511628211);
        for (const char *s = t->t[i].value; *s; s++)
            h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
        h = (h ^ 0xfe) * UINT64_C(1099511628211);
    }
    return h;
}

static bool same_tags(const struct tagset *a, const struct tagset *b)
{
    if (a->n != b->n)
        return false;
    for (unsigned i = 0; i < a->n; i++)
        if (strcmp(a->t[i].key, b->t[i].key) != 0 || strcmp(a->t[i].value, b->t[i].value) != 0)
            return false;
    return true;
}

static int label_cmp(const void *a, const void *b)
{
    const Prometheus__Label *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Append a candidate label unless its name is taken (first wins) or it is empty. */
static void add_label(struct rw_label *l, size_t *n, char *name, char *value)
{
    if (!name || !value || !*name || !*value)
        return;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(l[i].name, name) == 0)
            return;
    l[(*n)++] = (struct rw_label){name, value};
}

static struct rw_entry *entry_new(struct rw_encoder *e, const struct series *s, uint64_t hash,
                                  const char *phase)
{
    size_t need = phase ? strlen(phase) + 1 : 0;
    for (unsigned i = 0; i < s->tags.n; i++)
        need += strlen(s->tags.t[i].key) + strlen(s->tags.t[i].value) + 2;
    /* Raw copies, then sanitised ones, which are never longer. */
    char *strs = malloc(2 * need + 1);
    if (!strs)
        return NULL;
    struct tagset raw = {.n = s->tags.n};
    struct rw_label cand[RW_MAX_LABELS];
    size_t n = 0;
    char *p = strs;
    const char *scenario = NULL;
    static char name_key[] = "__name__", k_testid[] = "testid", k_instance[] = "instance",
                k_env[] = "environment", k_test_type[] = "test_type", placeholder[] = "-";

    char *phase_copy = NULL;
    if (phase) {
        phase_copy = memcpy(p, phase, strlen(phase) + 1);
        p += strlen(phase) + 1;
    }
    for (unsigned i = 0; i < s->tags.n; i++) {
        size_t kl = strlen(s->tags.t[i].key), vl = strlen(s->tags.t[i].value);
        raw.t[i].key = memcpy(p, s->tags.t[i].key, kl + 1);
        p += kl + 1;
        raw.t[i].value = memcpy(p, s->tags.t[i].value, vl + 1);
        p += vl + 1;
    }
    cand[n++] = (struct rw_label){name_key, placeholder};
    add_label(cand, &n, k_testid, e->testid);
    add_label(cand, &n, k_instance, e->instance);
    add_label(cand, &n, k_env, e->environment);
    /* Sanitised tags go after the raw copies; test_type may borrow the scenario's. */
    struct rw_label tagl[TAGS_MAX];
    size_t ntag = 0;
    for (unsigned i = 0; i < s->tags.n; i++) {
        if (strcmp(s->tags.t[i].key, "url") == 0)
            continue;
        size_t kl = strlen(s->tags.t[i].key), vl = strlen(s->tags.t[i].value);
        char *k = p;
        size_t klen = rw_label_name(s->tags.t[i].key, k, kl + 1);
        p += kl + 1;
        char *v = p;
        size_t vlen = rw_label_value(s->tags.t[i].value, v, vl + 1);
        p += vl + 1;
        if (klen == 0 || vlen == 0)
            continue;
        tagl[ntag++] = (struct rw_label){k, v};
        if (strcmp(s->tags.t[i].key, "scenario") == 0)
            scenario = v;
    }
    /* the phase a series belongs to: smoke's scenario is "smoke", every other scenario is
     * one of load's (named scenarios: "browse", "checkout"...) */
    add_label(cand, &n, k_test_type,
              e->test_type                           ? e->test_type
              : scenario && !strcmp(scenario, "smoke") ? (char *)"smoke"
              : scenario                               ? (char *)"load"
                                                       : phase_copy);
    for (size_t i = 0; i < ntag; i++)
        add_label(cand, &n, tagl[i].name, tagl[i].value);
    for (size_t i = 0; i < e->nstatic; i++)
        add_label(cand, &n, e->statics[i].name, e->statics[i].value);

    struct rw_entry *x = calloc(1, sizeof(*x) + n * sizeof(x->labels[0]));
    if (!x) {
        free(strs);
        return NULL;
    }
    x->hash = hash;
    x->id = s->id;
    x->tags = raw;
    x->phase = phase_copy;
    x->strs = strs;
    x->nlabels = n;
    for (size_t i = 0; i < n; i++) {
        Prometheus__Label l = PROMETHEUS__LABEL__INIT;
        l.name = cand[i].name;
        l.value = cand[i].value;
        x->labels[i] = l;
    }
    qsort(x->labels, n, sizeof(x->labels[0]), label_cmp);
    for (size_t i = 0; i < n; i++)
        if (x->labels[i].name == name_key)
            x->name_slot = i;
    return x;
}

/* The entry remembering s, created on first sight; NULL when full or out of memory. */
static struct rw_entry *entry_get(struct rw_encoder *e, const struct series *s)
{
    const char *phase = fallback(e, s);
    uint64_t h = series_hash(s->id, &s->tags, phase);
    struct rw_entry **head = &e->buckets[h & (RW_NBUCKETS - 1)];
    for (struct rw_entry *x = *head; x; x = x->hnext)
        if (x->hash == h && x->id == s->id && same_tags(&x->tags, &s->tags) &&
            (x->phase == phase || (x->phase && phase && strcmp(x->phase, phase) == 0)))
            return x;
    if (e->nentries >= RW_MAX_SERIES)
        return NULL;
    struct rw_entry *x = entry_new(e, s, h, phase);
    if (!x)
        return NULL;
    x->hnext = *head;
    *head = x;
    if (e->last)
        e->last->next = x;
    else
        e->first = x;
    e->last = x;
    e->nentries++;
    return x;
}

/* A bump allocator for one request's message tree, freed in one go. */
struct arena {
    struct chunk {
        struct chunk *next;
        size_t used, cap;
        alignas(max_align_t) unsigned char data[];
    } * head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        struct chunk *c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return memset(p, 0, n);
}

static void arena_free(struct arena *a)
{
    for (struct chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    a->head = NULL;
}

/* Any NaN we send is Prometheus' ordinary one, so it can never read as a stale marker. */
static double plain_value(double v)
{
    if (isnan(v)) {
        uint64_t bits = RW_NAN_BITS;
        memcpy(&v, &bits, sizeof(v));
    }
    return v;
}

static double stat_value(const struct rw_stat *st, const struct hist *h, double scale)
{
    switch (st->kind) {
    case RW_STAT_AVG:
        return hist_mean(h) * scale;
    case RW_STAT_MIN:
        return (double)hist_min(h) * scale;
    case RW_STAT_MAX:
        return (double)hist_max(h) * scale;
    case RW_STAT_MED:
        return hist_percentile(h, 50) * scale;
    case RW_STAT_COUNT:
        return (double)hist_count(h);
    case RW_STAT_SUM:
        return hist_sum(h) * scale;
    case RW_STAT_PCT:
        return hist_percentile(h, st->p) * scale;
    }
    return NAN;
}

/* One TimeSeries with e's labels and name; samples/histograms are filled by the caller. */
static Prometheus__TimeSeries *ts_new(struct arena *a, const struct rw_entry *x, char *name)
{
    Prometheus__TimeSeries *ts = arena_alloc(a, sizeof(*ts));
    Prometheus__Label **lp = arena_alloc(a, x->nlabels * sizeof(*lp));
    Prometheus__Label *nl = arena_alloc(a, sizeof(*nl));
    if (!ts || !lp || !nl)
        return NULL;
    prometheus__time_series__init(ts);
    *nl = x->labels[x->name_slot];
    nl->value = name;
    for (size_t i = 0; i < x->nlabels; i++)
        lp[i] = i == x->name_slot ? nl : (Prometheus__Label *)&x->labels[i];
    ts->labels = lp;
    ts->n_labels = x->nlabels;
    return ts;
}

static int ts_add_sample(struct arena *a, Prometheus__TimeSeries *ts, double v, int64_t ms)
{
    Prometheus__Sample *s = arena_alloc(a, sizeof(*s));
    Prometheus__Sample **sp = arena_alloc(a, sizeof(*sp));
    if (!s || !sp)
        return -ENOMEM;
    prometheus__sample__init(s);
    s->value = v;
    s->timestamp = ms;
    sp[0] = s;
    ts->samples = sp;
    ts->n_samples = 1;
    return 0;
}

/* The native histogram of a trend: schema 3, integer counts, positive buckets. */
static int ts_add_histogram(struct arena *a, Prometheus__TimeSeries *ts, const struct hist *h,
                            double scale, int64_t ms)
{
    uint64_t cur = 0, n, nb = 0, zero = 0, total = 0;
    int64_t lo, hi;
    while (hist_next_bucket(h, &cur, &lo, &hi, &n))
        nb++;
    Prometheus__Histogram *hg = arena_alloc(a, sizeof(*hg));
    Prometheus__Histogram **hp = arena_alloc(a, sizeof(*hp));
    int32_t *idx = arena_alloc(a, (nb + 1) * sizeof(*idx));
    int64_t *cnt = arena_alloc(a, (nb + 1) * sizeof(*cnt));
    if (!hg || !hp || !idx || !cnt)
        return -ENOMEM;
    prometheus__histogram__init(hg);

    /* Each source bucket goes whole into the native bucket of its mean value:
     * source buckets are exact below 2048 and ~0.1% wide above, far finer than
     * schema 3's ~9%, so at most a few samples sit near a wrong edge. */
    size_t nn = 0;
    cur = 0;
    while (hist_next_bucket(h, &cur, &lo, &hi, &n)) {
        double rep = (double)lo + (double)(hi - lo - 1) / 2.0;
        total += n;
        if (rep * scale <= RW_ZERO_THRESHOLD) {
            zero += n;
            continue;
        }
        int32_t k = rw_hist_index(rep * scale);
        if (nn > 0 && idx[nn - 1] == k) {
            cnt[nn - 1] += (int64_t)n;
        } else {
            idx[nn] = k;
            cnt[nn++] = (int64_t)n;
        }
    }
    size_t nspans = 0;
    for (size_t i = 0; i < nn; i++)
        if (i == 0 || idx[i] != idx[i - 1] + 1)
            nspans++;
    Prometheus__BucketSpan *spans = arena_alloc(a, (nspans + 1) * sizeof(*spans));
    Prometheus__BucketSpan **sp = arena_alloc(a, (nspans + 1) * sizeof(*sp));
    int64_t *deltas = arena_alloc(a, (nn + 1) * sizeof(*deltas));
    if (!spans || !sp || !deltas)
        return -ENOMEM;
    size_t s = 0;
    for (size_t i = 0; i < nn; i++) {
        if (i == 0 || idx[i] != idx[i - 1] + 1) {
            prometheus__bucket_span__init(&spans[s]);
            spans[s].offset = i == 0 ? idx[0] : idx[i] - idx[i - 1] - 1;
            sp[s] = &spans[s];
            s++;
        }
        spans[s - 1].length++;
        deltas[i] = cnt[i] - (i ? cnt[i - 1] : 0);
    }
    /* The count is what the buckets hold, so the two always agree. */
    hg->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
    hg->count_int = total;
    hg->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
    hg->zero_count_int = zero;
    hg->sum = plain_value(hist_sum(h) * scale);
    hg->schema = RW_HIST_SCHEMA;
    hg->zero_threshold = RW_ZERO_THRESHOLD;
    hg->n_positive_spans = nspans;
    hg->positive_spans = sp;
    hg->n_positive_deltas = nn;
    hg->positive_deltas = deltas;
    hg->timestamp = ms;
    hp[0] = hg;
    ts->histograms = hp;
    ts->n_histograms = 1;
    return 0;
}

/* Add the TimeSeries of one metrics series (NULL s: stale markers) to wr. */
static int encode_entry(struct rw_encoder *e, struct arena *a, Prometheus__WriteRequest *wr,
                        const struct rw_entry *x, const struct series *s, int64_t ms,
                        size_t *nsamples)
{
    const struct metric_def *d = metric_def(x->id);
    double scale = d->unit == UNIT_TIME ? 1e-6 : 1.0;
    for (size_t i = 0; i < e->nnames[x->id]; i++) {
        Prometheus__TimeSeries *ts = ts_new(a, x, e->names[x->id][i]);
        if (!ts)
            return -ENOMEM;
        int rc;
        if (!s) {
            double stale;
            uint64_t bits = RW_STALE_NAN_BITS;
            memcpy(&stale, &bits, sizeof(stale));
            rc = ts_add_sample(a, ts, stale, ms);
        } else if (d->type == METRIC_TREND && e->native) {
            rc = ts_add_histogram(a, ts, s->v.trend, scale, ms);
        } else {
            double v = 0;
            switch (d->type) {
            case METRIC_COUNTER:
                v = s->v.counter;
                break;
            case METRIC_RATE:
                v = s->v.rate.total ? (double)s->v.rate.pass / (double)s->v.rate.total : NAN;
                break;
            case METRIC_GAUGE:
                v = s->v.gauge.value;
                break;
            case METRIC_TREND:
                v = stat_value(&e->stats[i], s->v.trend, scale);
                break;
            }
            rc = ts_add_sample(a, ts, plain_value(v), ms);
        }
        if (rc < 0)
            return rc;
        wr->timeseries[wr->n_timeseries++] = ts;
        (*nsamples)++;
    }
    return 0;
}

/* Pack wr and compress it into out. */
static int pack(const Prometheus__WriteRequest *wr, size_t nsamples, struct rw_batch *out)
{
    size_t raw_len = prometheus__write_request__get_packed_size(wr);
    uint8_t *raw = malloc(raw_len ? raw_len : 1);
    size_t zlen = snappy_max_compressed_length(raw_len);
    char *z = malloc(zlen);
    if (!raw || !z) {
        free(raw);
        free(z);
        return -ENOMEM;
    }
    prometheus__write_request__pack(wr, raw);
    snappy_status st = snappy_compress((const char *)raw, raw_len, z, &zlen);
    free(raw);
    if (st != SNAPPY_OK) {
        free(z);
        return -ENOMEM;
    }
    /* Queued bodies count against a byte budget: keep only what is used. */
    char *shrunk = realloc(z, zlen ? zlen : 1);
    out->body = (uint8_t *)(shrunk ? shrunk : z);
    out->len = zlen;
    out->nseries = wr->n_timeseries;
    out->nsamples = nsamples;
    return 0;
}

/* The stamp of x's next sample: now, but always after its previous one. */
static int64_t next_ts(const struct rw_entry *x, int64_t now_ms)
{
    return now_ms > x->last_ts ? now_ms : x->last_ts + 1;
}

static bool has_value(const struct series *s)
{
    switch (metric_def(s->id)->type) {
    case METRIC_GAUGE:
        return s->v.gauge.set;
    case METRIC_TREND:
        return s->v.trend && hist_count(s->v.trend) > 0;
    default:
        return true;
    }
}

int rw_encode(struct rw_encoder *e, const struct metrics *snap, int64_t now_ms,
              enum rw_select sel, struct rw_batch *out)
{
    memset(out, 0, sizeof(*out));
    size_t nseries = metrics_nseries(snap), nts = 0, nx = 0;
    if (nseries == 0)
        return 0;
    /* Pair each changed series with its entry first, so sizes are known and
     * nothing is committed before the body exists. */
    struct rw_entry **xs = calloc(nseries, sizeof(*xs));
    const struct series **ss = calloc(nseries, sizeof(*ss));
    if (!xs || !ss) {
        free(xs);
        free(ss);
        return -ENOMEM;
    }
    for (const struct series *s = metrics_first(snap); s && nx < nseries; s = s->next) {
        if (!has_value(s))
            continue;
        struct rw_entry *x = entry_get(e, s);
        if (!x) {
            e->dropped++;
            continue;
        }
        bool changed = x->last_ts == 0 || x->version != s->version;
        if (!changed && sel != RW_ALL && !(sel == RW_FINAL && x->sent == 1))
            continue;
        xs[nx] = x;
        ss[nx++] = s;
        nts += e->nnames[s->id];
    }
    int rc = 0;
    struct arena a = {0};
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    if (nx == 0)
        goto done;
    wr.timeseries = arena_alloc(&a, nts * sizeof(*wr.timeseries));
    if (!wr.timeseries) {
        rc = -ENOMEM;
        goto done;
    }
    size_t nsamples = 0;
    for (size_t i = 0; i < nx && rc == 0; i++)
        rc = encode_entry(e, &a, &wr, xs[i], ss[i], next_ts(xs[i], now_ms), &nsamples);
    if (rc == 0)
        rc = pack(&wr, nsamples, out);
    if (rc == 0) {
        for (size_t i = 0; i < nx; i++) {
            xs[i]->last_ts = next_ts(xs[i], now_ms);
            xs[i]->version = ss[i]->version;
            if (xs[i]->sent < 2)
                xs[i]->sent++;
        }
    }
done:
    arena_free(&a);
    free(xs);
    free(ss);
    return rc;
}

int rw_encode_info(struct rw_encoder *e, const struct rw_info *items, size_t n, int64_t now_ms,
                   struct rw_batch *out)
{
    memset(out, 0, sizeof(*out));
    if (n == 0)
        return 0;
    /* Each item's labels are made the way a k6 series' are, from a series
     * standing in for it that no table remembers. */
    struct rw_entry **xs = calloc(n, sizeof(*xs));
    struct arena a = {0};
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    size_t nsamples = 0;
    int rc = 0;
    if (!xs)
        return -ENOMEM;
    wr.timeseries = arena_alloc(&a, n * sizeof(*wr.timeseries));
    if (!wr.timeseries)
        rc = -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct series s = {.id = M_VUS, .tags = items[i].labels};
        const char *sc = tagset_get(&s.tags, "scenario");
        xs[i] = entry_new(e, &s, 0, sc && *sc ? NULL : e->phase);
        Prometheus__TimeSeries *ts =
            xs[i] ? ts_new(&a, xs[i], (char *)items[i].name) : NULL;
        if (!ts || ts_add_sample(&a, ts, plain_value(items[i].value), now_ms) < 0) {
            rc = -ENOMEM;
            break;
        }
        wr.timeseries[wr.n_timeseries++] = ts;
        nsamples++;
    }
    if (rc == 0)
        rc = pack(&wr, nsamples, out);
    for (size_t i = 0; i < n; i++)
        if (xs[i]) {
            free(xs[i]->strs);
            free(xs[i]);
        }
    free(xs);
    arena_free(&a);
    return rc;
}

int rw_encode_stale(struct rw_encoder *e, int64_t now_ms, struct rw_batch *out)
{
    memset(out, 0, sizeof(*out));
    size_t nts = 0;
    for (const struct rw_entry *x = e->first; x; x = x->next)
        if (x->last_ts)
            nts += e->nnames[x->id];
    if (nts == 0)
        return 0;
    struct arena a = {0};
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    int rc = 0;
    size_t nsamples = 0;
    wr.timeseries = arena_alloc(&a, nts * sizeof(*wr.timeseries));
    if (!wr.timeseries)
        rc = -ENOMEM;
    for (const struct rw_entry *x = e->first; x && rc == 0; x = x->next) {
        if (!x->last_ts)
            continue;
        rc = encode_entry(e, &a, &wr, x, NULL, next_ts(x, now_ms), &nsamples);
    }
    if (rc == 0)
        rc = pack(&wr, nsamples, out);
    if (rc == 0)
        for (struct rw_entry *x = e->first; x; x = x->next)
            if (x->last_ts)
                x->last_ts = next_ts(x, now_ms);
    arena_free(&a);
    return rc;
}
