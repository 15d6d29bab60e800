/*
 * Fuzz target: the remote-write encoder, round trip. The input drives a
 * small program: the encoder's configuration (trend stats, native
 * histograms, testid, environment, test_type, static labels), then samples
 * into a metrics registry with arbitrary tags, encodes (changed or all
 * series, at clock values that may go backwards), phase changes and stale
 * markers. Every body is snappy-decompressed and protobuf-unpacked, and must
 * hold what a Prometheus receiver requires: labels valid, sorted and unique,
 * one sample per series, counts that agree with the batch's.
 *
 * Two modes (bit 7 of the first byte). Wild: any tag keys and values, bytes
 * and all; sanitising may then give two series the same labels (tags "a-b"
 * and "a_b", values "\xff" and "\xfe", an empty value and none), which
 * syncgate itself never produces (its tag keys are fixed, its values
 * validated names and numbers). Tame: keys from k6's set, values from
 * [a-z0-9]; then no two series of a body may be alike, and each series'
 * timestamps must strictly increase from body to body.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>

#include <snappy-c.h>

#include "fuzz.h"
#include "remote.pb-c.h"
#include "syncgate/config.h"
#include "syncgate/metrics.h"
#include "syncgate/rw.h"

#define MAX_OPS 64
#define MAX_TRACKED 4096
#define BASE_MS INT64_C(1700000000000)

struct reader {
    const uint8_t *p;
    size_t n;
};

static uint8_t rd_u8(struct reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* A length-prefixed string (cut at an embedded NUL) into out (cap bytes). */
static void rd_str(struct reader *r, char *out, size_t cap)
{
    size_t len = rd_u8(r);
    if (len == 255)
        len = 255 + (size_t)rd_u8(r) * 16; /* long values reach RW_MAX_VALUE */
    if (len > r->n)
        len = r->n;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, r->p, len);
    out[len] = '\0';
    r->p += len;
    r->n -= len;
}

/* Tag keys k6 uses, and a few that must be renamed or dropped. */
static const char *const common_keys[] = {
    "name",       "method", "status",   "scenario", "check",     "expected_response",
    "error_code", "url",    "__name__", "testid",   "test_type", "9lives",
    "a-b",        "a_b",    "",
};

/* Tame text: 1..32 characters of [a-z0-9], which sanitising leaves alone. */
static void rd_tame(struct reader *r, char *out, size_t cap)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = 1 + rd_u8(r) % 32;
    if (len >= cap)
        len = cap - 1;
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[rd_u8(r) % (sizeof(alphabet) - 1)];
    out[len] = '\0';
}

static const char *const stat_lists[] = {
    RW_DEFAULT_TREND_STATS,
    "avg,min,max,med,count,sum",
    "p(99.9),p(0.95),p(50)",
    "p(100),p(0)",
};

struct seen {
    char *key; /* the series' labels, "name=value\1..." */
    int64_t ts;
};

static const char *const tame_keys[] = {
    "name", "method", "status", "scenario", "check", "expected_response", "error_code",
};

struct state {
    bool tame;
    struct seen seen[MAX_TRACKED];
    size_t nseen;
    char testid[RW_MAX_VALUE + 1]; /* sanitised, "" when absent */
};

static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, len, cp;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07;
        else
            return false;
        for (unsigned i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += len;
    }
    return true;
}

static bool name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static Prometheus__WriteRequest *decode(const struct rw_batch *b)
{
    size_t n = 0;
    FUZZ_CHECK(b->len < 4 || memcmp(b->body, "\xff\x06\x00\x00", 4) != 0, "framed snappy");
    FUZZ_CHECK(snappy_validate_compressed_buffer((const char *)b->body, b->len) == SNAPPY_OK,
               "not a snappy block");
    FUZZ_CHECK(snappy_uncompressed_length((const char *)b->body, b->len, &n) == SNAPPY_OK,
               "no snappy length");
    char *raw = malloc(n ? n : 1);
    if (!raw)
        return NULL;
    FUZZ_CHECK(snappy_uncompress((const char *)b->body, b->len, raw, &n) == SNAPPY_OK,
               "snappy_uncompress");
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, n, (uint8_t *)raw);
    free(raw);
    FUZZ_CHECK(wr != NULL, "body is not a WriteRequest");
    return wr;
}

/* The labels of ts as one string; checks them on the way. */
static char *series_key(const Prometheus__TimeSeries *ts, const struct state *st)
{
    size_t need = 1;
    bool has_name = false, has_testid = false;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const Prometheus__Label *l = ts->labels[i];
        FUZZ_CHECK(l->name && l->value, "label %zu missing", i);
        FUZZ_CHECK(name_ok(l->name), "bad label name \"%s\"", l->name);
        FUZZ_CHECK(i == 0 || strcmp(ts->labels[i - 1]->name, l->name) < 0,
                   "labels not sorted or not unique: \"%s\" then \"%s\"", ts->labels[i - 1]->name,
                   l->name);
        FUZZ_CHECK(strcmp(l->name, "url") != 0, "url label sent");
        FUZZ_CHECK(*l->value, "empty value for %s", l->name);
        FUZZ_CHECK(strlen(l->value) <= RW_MAX_VALUE, "value of %s is %zu bytes", l->name,
                   strlen(l->value));
        FUZZ_CHECK(utf8_ok(l->value), "value of %s is not UTF-8", l->name);
        if (!strcmp(l->name, "__name__")) {
            has_name = true;
            FUZZ_CHECK(!strncmp(l->value, "k6_", 3), "series name \"%s\"", l->value);
        } else {
            FUZZ_CHECK(strncmp(l->name, "__", 2) != 0, "reserved label \"%s\"", l->name);
        }
        if (!strcmp(l->name, "testid")) {
            has_testid = true;
            /* A configured testid wins over a tag of that name; without one, a tag may give it. */
            FUZZ_CHECK(!st->testid[0] || !strcmp(l->value, st->testid),
                       "testid \"%s\", configured \"%s\"", l->value, st->testid);
        }
        need += strlen(l->name) + strlen(l->value) + 2;
    }
    FUZZ_CHECK(has_name, "series without __name__");
    FUZZ_CHECK(has_testid || !st->testid[0], "testid label missing");
    char *key = malloc(need), *p = key;
    if (!key)
        return NULL;
    for (size_t i = 0; i < ts->n_labels; i++)
        p += sprintf(p, "%s=%s\1", ts->labels[i]->name, ts->labels[i]->value);
    return key;
}

static struct seen *seen_find(struct state *st, const char *key)
{
    for (size_t i = 0; i < st->nseen; i++)
        if (!strcmp(st->seen[i].key, key))
            return &st->seen[i];
    return NULL;
}

static void check_histogram(const Prometheus__Histogram *h)
{
    FUZZ_CHECK(h->schema == RW_HIST_SCHEMA, "schema %d", h->schema);
    FUZZ_CHECK(h->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT &&
                   h->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT,
               "float counts");
    uint64_t spanned = 0;
    for (size_t i = 0; i < h->n_positive_spans; i++) {
        FUZZ_CHECK(h->positive_spans[i]->length > 0, "empty span %zu", i);
        FUZZ_CHECK(i == 0 || h->positive_spans[i]->offset >= 0, "span %zu goes back", i);
        spanned += h->positive_spans[i]->length;
    }
    FUZZ_CHECK(spanned == h->n_positive_deltas, "spans cover %llu buckets, %zu deltas",
               (unsigned long long)spanned, h->n_positive_deltas);
    int64_t cnt = 0;
    uint64_t total = h->zero_count_int;
    for (size_t i = 0; i < h->n_positive_deltas; i++) {
        cnt += h->positive_deltas[i];
        FUZZ_CHECK(cnt > 0, "bucket %zu holds %lld", i, (long long)cnt);
        total += (uint64_t)cnt;
    }
    FUZZ_CHECK(total == h->count_int, "buckets hold %llu, count says %llu",
               (unsigned long long)total, (unsigned long long)h->count_int);
}

static void check_batch(struct state *st, const struct rw_batch *b, int64_t now_ms, bool stale)
{
    if (b->len == 0) {
        FUZZ_CHECK(b->nseries == 0 && b->nsamples == 0 && !b->body, "empty batch with content");
        return;
    }
    Prometheus__WriteRequest *wr = decode(b);
    if (!wr)
        return;
    FUZZ_CHECK(wr->n_timeseries == b->nseries && b->nseries > 0, "%zu series, batch says %zu",
               wr->n_timeseries, b->nseries);
    size_t nsamples = 0, first = st->nseen;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        FUZZ_CHECK(ts->n_samples + ts->n_histograms == 1, "%zu samples, %zu histograms",
                   ts->n_samples, ts->n_histograms);
        nsamples += ts->n_samples + ts->n_histograms;
        int64_t t;
        if (ts->n_samples) {
            uint64_t bits;
            memcpy(&bits, &ts->samples[0]->value, sizeof(bits));
            FUZZ_CHECK((bits == RW_STALE_NAN_BITS) == stale, "stale marker %s",
                       stale ? "missing" : "in a normal body");
            FUZZ_CHECK(!isnan(ts->samples[0]->value) || bits == RW_STALE_NAN_BITS ||
                           bits == RW_NAN_BITS,
                       "NaN with bits %llx", (unsigned long long)bits);
            t = ts->samples[0]->timestamp;
        } else {
            FUZZ_CHECK(!stale, "histogram in a stale body");
            check_histogram(ts->histograms[0]);
            t = ts->histograms[0]->timestamp;
        }
        FUZZ_CHECK(t >= now_ms, "timestamp %lld before now %lld", (long long)t, (long long)now_ms);
        char *key = series_key(ts, st);
        if (!key)
            break;
        struct seen *s = st->tame ? seen_find(st, key) : NULL;
        if (s) {
            FUZZ_CHECK((size_t)(s - st->seen) < first, "two series alike in one body: %s", key);
            FUZZ_CHECK(t > s->ts, "timestamp %lld after %lld for %s", (long long)t,
                       (long long)s->ts, key);
            s->ts = t;
            free(key);
        } else if (st->tame && st->nseen < MAX_TRACKED) {
            st->seen[st->nseen++] = (struct seen){key, t};
        } else {
            free(key);
        }
    }
    FUZZ_CHECK(nsamples == b->nsamples, "%zu samples, batch says %zu", nsamples, b->nsamples);
    prometheus__write_request__free_unpacked(wr, NULL);
}

static void add_sample(struct metrics *m, struct reader *r, bool tame)
{
    enum metric_id id = (enum metric_id)(rd_u8(r) % M_COUNT);
    unsigned ntags = rd_u8(r) % (TAGS_MAX + 2);
    char strs[TAGS_MAX + 1][2][600];
    struct tagset tags = {0};
    for (unsigned i = 0; i < ntags; i++) {
        uint8_t k = rd_u8(r);
        if (tame) {
            snprintf(strs[i][0], sizeof(strs[i][0]), "%s",
                     tame_keys[k % (sizeof(tame_keys) / sizeof(tame_keys[0]))]);
            rd_tame(r, strs[i][1], sizeof(strs[i][1]));
            tagset_set(&tags, strs[i][0], strs[i][1]);
            continue;
        }
        if (k < 0x80)
            snprintf(strs[i][0], sizeof(strs[i][0]), "%s",
                     common_keys[k % (sizeof(common_keys) / sizeof(common_keys[0]))]);
        else
            rd_str(r, strs[i][0], sizeof(strs[i][0]));
        rd_str(r, strs[i][1], sizeof(strs[i][1]));
        tagset_set(&tags, strs[i][0], strs[i][1]);
    }
    int64_t v = (int64_t)rd_u8(r) << 16 | (int64_t)rd_u8(r) << 8 | rd_u8(r);
    struct series *s = metrics_series(m, id, &tags);
    if (!s)
        return;
    switch (metric_def(id)->type) {
    case METRIC_COUNTER:
        series_add(s, (double)v);
        break;
    case METRIC_GAUGE:
        series_set(s, (double)v - 1000);
        break;
    case METRIC_RATE:
        series_rate(s, v & 1);
        break;
    case METRIC_TREND:
        series_trend(s, v);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    static struct state st; /* large; reset on every input */
    char testid[300], env[300], test_type[300], stats[200], lk[3][100], lv[3][300], err[256];
    struct config c;
    memset(&c, 0, sizeof(c));
    memset(&st, 0, sizeof(st));

    uint8_t flags = rd_u8(&r);
    uint8_t sl = rd_u8(&r);
    if (sl < 0x80)
        snprintf(stats, sizeof(stats), "%s", stat_lists[sl % 4]);
    else
        rd_str(&r, stats, sizeof(stats));
    rd_str(&r, testid, sizeof(testid));
    rd_str(&r, env, sizeof(env));
    rd_str(&r, test_type, sizeof(test_type));
    c.metrics.rw.trend_stats = stats;
    c.metrics.rw.native_histogram = flags & 1;
    c.testid = testid;
    c.instance = "fuzz-host";
    c.environment = flags & 2 ? env : NULL;
    c.test_type = flags & 4 ? test_type : NULL;
    c.metrics.labels[0].key = "static_a";
    c.metrics.labels[0].value = "x";
    c.metrics.nlabels = 1 + ((flags >> 3) & 3) % 3;
    st.tame = flags & 0x80;
    for (size_t i = 1; i < c.metrics.nlabels; i++) {
        if (st.tame) {
            /* Never a tag's name: a tag would stand in for it on some series only. */
            memcpy(lk[i], "s_", 2);
            rd_tame(&r, lk[i] + 2, sizeof(lk[i]) - 2);
            rd_tame(&r, lv[i], sizeof(lv[i]));
        } else {
            rd_str(&r, lk[i], sizeof(lk[i]));
            rd_str(&r, lv[i], sizeof(lv[i]));
        }
        c.metrics.labels[i].key = lk[i];
        c.metrics.labels[i].value = lv[i];
    }
    rw_label_value(testid, st.testid, sizeof(st.testid));

    struct rw_encoder *e = rw_encoder_new(&c, err, sizeof(err));
    struct metrics *m = metrics_new();
    if (!e || !m) {
        FUZZ_CHECK(e || err[0], "encoder refused without a reason");
        rw_encoder_free(e);
        metrics_free(m);
        return 0;
    }
    int64_t now = BASE_MS;
    struct rw_batch b;
    for (int op = 0; op < MAX_OPS && r.n > 0; op++) {
        uint8_t o = rd_u8(&r);
        switch (o % 8) {
        case 5:
        case 6: /* the clock may stand still or step back: timestamps must still grow */
            now += (int64_t)(int8_t)rd_u8(&r);
            FUZZ_CHECK(rw_encode(e, m, now, o & 0x80 ? RW_ALL : RW_CHANGED, &b) == 0, "rw_encode failed");
            check_batch(&st, &b, now, false);
            rw_batch_clear(&b);
            break;
        case 7:
            if (o & 0x80) {
                char phase[100];
                if (st.tame)
                    rd_tame(&r, phase, sizeof(phase));
                else
                    rd_str(&r, phase, sizeof(phase));
                FUZZ_CHECK(rw_encoder_set_test_type(e, phase) == 0, "set_test_type");
                break;
            }
            now += (int64_t)(int8_t)rd_u8(&r);
            FUZZ_CHECK(rw_encode_stale(e, now, &b) == 0, "rw_encode_stale failed");
            check_batch(&st, &b, now, true);
            rw_batch_clear(&b);
            break;
        default:
            add_sample(m, &r, st.tame);
            break;
        }
    }
    /* Whatever is left is sent whole, then marked stale. */
    FUZZ_CHECK(rw_encode(e, m, now, RW_FINAL, &b) == 0, "final rw_encode failed");
    check_batch(&st, &b, now, false);
    rw_batch_clear(&b);
    FUZZ_CHECK(rw_encode_stale(e, now, &b) == 0, "final stale failed");
    check_batch(&st, &b, now, true);
    rw_batch_clear(&b);
    FUZZ_CHECK(rw_encoder_nseries(e) <= RW_MAX_SERIES, "%zu series", rw_encoder_nseries(e));

    for (size_t i = 0; i < st.nseen; i++)
        free(st.seen[i].key);
    rw_encoder_free(e);
    metrics_free(m);
    return 0;
}
