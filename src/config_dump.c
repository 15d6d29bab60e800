/*
 * config_dump: struct config printed back as YAML (`syncgate validate`),
 * with every secret redacted, and struct diag formatted as one line.
 */
#include "config_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "syncgate/config.h"
#include "syncgate/executor.h"
#include "syncgate/threshold.h"
#include "syncgate/units.h"
#include "utf8.h"

/* ---- messages ------------------------------------------------------------ */

/*
 * s appended to buf (n bytes, len used so far) with control characters and
 * bytes that are not well-formed UTF-8 written as \xNN, so a message stays
 * one line and sends the terminal nothing but text. Quotes and backslashes
 * are left alone: values in messages were quoted (and escaped) already.
 */
static void put_escaped(char *buf, size_t n, size_t *len, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t left = strlen(s), l; left && *len + 5 <= n; p += l, left -= l) {
        l = utf8_seq_len(p, left);
        if (l && !(l == 1 && (*p < 0x20 || *p == 0x7f))) {
            if (*len + l + 1 > n)
                break;
            memcpy(buf + *len, p, l);
            *len += l;
        } else {
            l = 1;
            *len += (size_t)snprintf(buf + *len, n - *len, "\\x%02x", *p);
        }
    }
    buf[*len] = '\0';
}

const char *diag_format(const struct diag *d, char *buf, size_t n)
{
    size_t len = 0;
    if (!n)
        return buf;
    buf[0] = '\0';
    put_escaped(buf, n, &len, d->where);
    put_escaped(buf, n, &len, ": ");
    if (d->key[0]) {
        put_escaped(buf, n, &len, d->key);
        put_escaped(buf, n, &len, ": ");
    }
    put_escaped(buf, n, &len, d->msg);
    return buf;
}

/* ---- dump ------------------------------------------------------------------ */

struct out {
    char *buf;
    size_t n, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(o->len < o->n ? o->buf + o->len : NULL, o->len < o->n ? o->n - o->len : 0,
                      fmt, ap);
    va_end(ap);
    if (r > 0)
        o->len += (size_t)r;
}

static void put_str(struct out *o, const char *s)
{
    if (!s) {
        put(o, "null");
        return;
    }
    put(o, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            put(o, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            put(o, "\\x%02x", *p);
        else
            put(o, "%c", *p);
    }
    put(o, "\"");
}

static void put_secret(struct out *o, const char *s)
{
    put(o, "%s", s ? "\"<redacted>\"" : "null");
}

static void put_url(struct out *o, const char *url)
{
    char red[MAX_STRING + 16];
    put_str(o, url ? config_redact_url(url, red, sizeof(red)) : NULL);
}

static void put_dur(struct out *o, int64_t usec)
{
    char b[64];
    put(o, "%s", units_format_duration(usec, b, sizeof(b)));
}

static void put_thresholds(struct out *o, const struct threshold_set *set)
{
    char b[64];
    if (!set->n) {
        put(o, "  thresholds: {}\n");
        return;
    }
    put(o, "  thresholds:\n");
    for (size_t i = 0; i < set->n; i++) {
        const struct threshold *t = &set->t[i];
        if (!i || strcmp(set->t[i - 1].metric_key, t->metric_key)) {
            put(o, "    ");
            put_str(o, t->metric_key);
            put(o, ":\n");
        }
        put(o, "      - ");
        if (t->abort_on_fail || t->delay_abort_eval) {
            put(o, "{threshold: ");
            put_str(o, t->source);
            put(o, ", abortOnFail: %s, delayAbortEval: %s}\n", t->abort_on_fail ? "true" : "false",
                units_format_duration(t->delay_abort_eval, b, sizeof(b)));
        } else {
            put_str(o, t->source);
            put(o, "\n");
        }
    }
}

/* A JSON expectation's value as YAML that reads back to the same expectation. */
static void put_expected(struct out *o, const struct step_expect *e)
{
    switch (e->type) {
    case EXPECT_TRUE: put(o, "true"); break;
    case EXPECT_FALSE: put(o, "false"); break;
    case EXPECT_NULL: put(o, "null"); break;
    case EXPECT_NUMBER: put(o, "%.17g", e->number); break;
    case EXPECT_STRING: put_str(o, e->text.src); break;
    }
}

/* The expectations of one kind as a YAML mapping ("json", "header"). */
static void put_expect_map(struct out *o, const struct step *s, enum expect_kind kind,
                           const char *key)
{
    bool any = false;
    for (size_t i = 0; i < s->nexpects; i++) {
        const struct step_expect *e = &s->expects[i];
        if (e->kind != kind)
            continue;
        put(o, "%s", any ? "\n            " : "\n          ");
        if (!any)
            put(o, "%s:\n            ", key);
        any = true;
        put_str(o, kind == EXPECT_JSON ? e->path.src : e->header);
        put(o, ": ");
        if (kind == EXPECT_JSON)
            put_expected(o, e);
        else
            put_str(o, e->text.src);
    }
}

static void put_step(struct out *o, const struct config *c, const struct journey *j,
                     const struct step *s)
{
    char b[64];
    put(o, "      - name: ");
    put_str(o, s->name);
    put(o, "\n        service: ");
    put_str(o, c->services[s->service].name);
    put(o, "\n        method: %s\n        path: ", s->method);
    put_url(o, s->path.src);
    if (s->nheaders) {
        put(o, "\n        headers:");
        for (size_t i = 0; i < s->nheaders; i++) {
            put(o, "\n          ");
            put_str(o, s->headers[i].name);
            put(o, ": ");
            if (s->headers[i].secret)
                put_secret(o, s->headers[i].value.src);
            else
                put_str(o, s->headers[i].value.src);
        }
    }
    if (s->has_body) {
        put(o, "\n        body: ");
        put_str(o, s->body.src);
    }
    put(o, "\n        expect:\n          status: [");
    for (size_t i = 0; i < s->nstatus; i++)
        put(o, "%s%d", i ? ", " : "", s->status[i]);
    put(o, "]");
    if (s->max_latency)
        put(o, "\n          max_latency: %s", units_format_duration(s->max_latency, b, sizeof(b)));
    put_expect_map(o, s, EXPECT_JSON, "json");
    put_expect_map(o, s, EXPECT_HEADER, "header");
    for (size_t i = 0; i < s->nexpects; i++)
        if (s->expects[i].kind == EXPECT_BODY) {
            put(o, "\n          body_contains: ");
            put_str(o, s->expects[i].text.src);
        }
    if (s->ncaptures) {
        put(o, "\n        capture:");
        for (size_t i = 0; i < s->ncaptures; i++) {
            const struct step_capture *cp = &s->captures[i];
            put(o, "\n          %s: ", j->captures[cp->slot]);
            if (cp->header) {
                put(o, "{header: ");
                put_str(o, cp->header);
                put(o, "}");
            } else {
                put_str(o, cp->path.src);
            }
        }
    }
    put(o, "\n");
}

static void put_scenario_stages(struct out *o, const struct scenario *sc)
{
    put(o, "      stages:\n");
    for (size_t i = 0; i < sc->nstages; i++) {
        put(o, "        - {duration: ");
        put_dur(o, sc->stages[i].duration);
        put(o, ", target: %d}\n", sc->stages[i].target);
    }
}

/* load.scenarios as YAML that reads back to the same scenarios (only each executor's keys). */
static void put_scenarios(struct out *o, const struct config *c)
{
    put(o, "  scenarios:\n");
    for (size_t i = 0; i < c->load.nscenarios; i++) {
        const struct scenario *sc = &c->load.scenarios[i];
        put(o, "    %s:\n      executor: %s\n      journey: ", sc->name,
            executor_names[sc->executor]);
        if (sc->journey >= 0)
            put_str(o, c->journeys.j[sc->journey].name);
        else
            put(o, "%s", sc->journey == SCENARIO_HEALTH ? "health" : "null");
        put(o, "\n");
        switch (sc->executor) {
        case EX_CONSTANT_VUS:
            put(o, "      vus: %d\n      duration: ", sc->vus);
            put_dur(o, sc->duration);
            put(o, "\n");
            break;
        case EX_RAMPING_VUS:
            put(o, "      start_vus: %d\n      graceful_ramp_down: ", sc->start_vus);
            put_dur(o, sc->graceful_ramp_down);
            put(o, "\n");
            put_scenario_stages(o, sc);
            break;
        case EX_CONSTANT_ARRIVAL_RATE:
        case EX_RAMPING_ARRIVAL_RATE:
            if (sc->executor == EX_CONSTANT_ARRIVAL_RATE) {
                put(o, "      rate: %lld\n      duration: ", (long long)sc->rate);
                put_dur(o, sc->duration);
            } else {
                put(o, "      start_rate: %lld", (long long)sc->start_rate);
            }
            put(o, "\n      time_unit: ");
            put_dur(o, sc->time_unit);
            put(o, "\n      pre_allocated_vus: %d\n      max_vus: %d\n", sc->pre_allocated_vus,
                sc->max_vus);
            if (sc->executor == EX_RAMPING_ARRIVAL_RATE)
                put_scenario_stages(o, sc);
            break;
        case EX_PER_VU_ITERATIONS:
        case EX_SHARED_ITERATIONS:
            put(o, "      vus: %d\n      iterations: %d\n      max_duration: ", sc->vus,
                sc->iterations);
            put_dur(o, sc->max_duration);
            put(o, "\n");
            break;
        }
        put(o, "      start_time: ");
        put_dur(o, sc->start_time);
        put(o, "\n      graceful_stop: ");
        put_dur(o, sc->graceful_stop);
        put(o, "\n      tags:%s\n", sc->ntags ? "" : " {}");
        for (size_t t = 0; t < sc->ntags; t++) {
            put(o, "        %s: ", sc->tags[t].key);
            put_str(o, sc->tags[t].value);
            put(o, "\n");
        }
    }
}

static void put_journeys(struct out *o, const struct config *c)
{
    const struct journey_set *js = &c->journeys;
    char b[64];
    const struct auth_config *a = &js->auth;
    if (!a->enabled) {
        put(o, "auth: null\n");
    } else {
        put(o, "auth:\n  oauth2_client_credentials:\n    token_url: ");
        put_url(o, a->token_url);
        put(o, "\n    client_id: ");
        put_str(o, a->client_id);
        /* the file when there is one; a secret given as a value shows as redacted */
        if (a->client_secret_file) {
            put(o, "\n    client_secret_file: ");
            put_str(o, a->client_secret_file);
        } else {
            put(o, "\n    client_secret: ");
            put_secret(o, a->client_secret);
        }
        put(o, "\n    scope: ");
        put_str(o, a->scope);
        put(o, "\n");
    }
    put(o, "data:%s\n", js->ndata ? "" : " {}");
    for (size_t i = 0; i < js->ndata; i++) {
        const struct dataset *ds = &js->data[i].ds;
        put(o, "  %s:", js->data[i].name);
        if (js->data[i].file) {
            put(o, " {file: ");
            put_str(o, js->data[i].file);
            put(o, "}  # %zu rows\n", ds->nrows);
            continue;
        }
        put(o, "\n    rows:\n");
        for (size_t r = 0; r < ds->nrows; r++) {
            put(o, "      - {");
            for (size_t k = 0; k < ds->ncols; k++) {
                put(o, "%s", k ? ", " : "");
                put_str(o, ds->cols[k]);
                put(o, ": ");
                put_str(o, data_cell(ds, r, k));
            }
            put(o, "}\n");
        }
    }
    put(o, "env_allow: [");
    for (size_t i = 0; i < js->nenv; i++)
        put(o, "%s%s", i ? ", " : "", js->env_name[i]);
    put(o, "]\njourneys:%s\n", js->n ? "" : " []");
    for (size_t i = 0; i < js->n; i++) {
        const struct journey *j = &js->j[i];
        put(o, "  - name: ");
        put_str(o, j->name);
        put(o, "\n    weight: %d\n    smoke: %s\n    think_time: %s\n    steps:\n", j->weight,
            j->smoke ? "true" : "false",
            j->think_time < 0 ? "null" : units_format_duration(j->think_time, b, sizeof(b)));
        for (size_t k = 0; k < j->nsteps; k++)
            put_step(o, c, j, &j->steps[k]);
    }
}

size_t config_dump(const struct config *c, char *buf, size_t n)
{
    struct out o = {.buf = buf, .n = n};
    if (buf && n)
        buf[0] = '\0';
    if (!buf)
        o.n = 0;

    put(&o, "# syncgate effective configuration (%s)\n",
        c->profile_path ? "profile, environment, command line"
                        : "defaults, environment, "
                          "command line");
    if (c->profile_path) {
        put(&o, "# profile: ");
        put_str(&o, c->profile_path);
        put(&o, "\n");
    }
    if (c->scaleout.instances > 1) {
        /* environment only, never a profile key: said in comments */
        char t[32];
        put(&o, "# distributed run: instance %d of %d (%s), coordinator ", c->scaleout.index,
            c->scaleout.instances, c->scaleout.index ? "a peer" : "the coordinator");
        put_str(&o, c->scaleout.coordinator);
        put(&o, ", token from ");
        put_str(&o, c->scaleout.token_file);
        put(&o, " (<redacted>), register timeout %s\n",
            units_format_duration(c->scaleout.register_timeout, t, sizeof(t)));
    }
    put(&o, "environment: ");
    put_str(&o, c->environment);
    put(&o, "\ntest_type: ");
    put_str(&o, c->test_type);
    put(&o, "\ntestid: ");
    put_str(&o, c->testid);
    put(&o, "\ninstance: ");
    put_str(&o, c->instance);
    put(&o, "\nca_file: ");
    put_str(&o, c->ca_file);
    put(&o, "\nrevision: ");
    put_str(&o, c->revision);

    put(&o, "\ngateway:\n  url: ");
    put_url(&o, c->gateway.url);
    put(&o, "\n  consumer_header: ");
    put_str(&o, c->gateway.consumer_header);
    put(&o, "\n  consumer: ");
    put_str(&o, c->gateway.consumer);
    put(&o, "\n  key_file: ");
    put_str(&o, c->gateway.key_file);
    if (c->gateway.key)
        put(&o, "  # key: <redacted>");
    put(&o, "\n  key_header: ");
    put_str(&o, c->gateway.key_header);
    put(&o, "\n  ca_file: ");
    put_str(&o, c->gateway.ca_file);
    put(&o, "\n  ready:\n    path: ");
    put_url(&o, c->gateway.ready_path);
    put(&o, "\n    timeout: ");
    put_dur(&o, c->gateway.ready_timeout);
    put(&o, "\n    status: %d\n", c->gateway.ready_status);

    put(&o, "services:\n");
    for (size_t i = 0; i < c->nservices; i++) {
        const struct service *s = &c->services[i];
        put(&o, "  - name: ");
        put_str(&o, s->name);
        put(&o, "\n    smoke_path: ");
        put_url(&o, s->smoke_path);
        put(&o, "\n    url: ");
        put_url(&o, s->url);
        put(&o, "\n    method: ");
        put_str(&o, s->method);
        put(&o, "\n    expect_status: %d\n    max_latency: ", s->expect_status);
        put_dur(&o, s->max_latency);
        put(&o, "\n");
    }

    put(&o, "smoke:\n  duration: ");
    put_dur(&o, c->smoke.duration);
    put(&o, "\n  iterations: %d\n  retries: %d\n  think_time: ", c->smoke.iterations,
        c->smoke.retries);
    put_dur(&o, c->smoke.think_time);
    put(&o, "\n  request_timeout: ");
    put_dur(&o, c->smoke.request_timeout);
    put(&o, "\n");
    put_thresholds(&o, &c->smoke.thresholds);

    /* scenarios replace the stages: printing both would not read back */
    put(&o, "load:\n%s  stages:\n", c->load.scenarios_given ? "  # replaced by scenarios:\n#" : "");
    for (size_t i = 0; i < c->load.nstages; i++) {
        put(&o, "%s    - {duration: ", c->load.scenarios_given ? "#" : "");
        put_dur(&o, c->load.stages[i].duration);
        put(&o, ", target: %d}\n", c->load.stages[i].target);
    }
    if (c->load.scenarios_given)
        put_scenarios(&o, c);
    put(&o, "  start_vus: %d\n  think_time: ", c->load.start_vus);
    put_dur(&o, c->load.think_time);
    put(&o, "\n  graceful_ramp_down: ");
    put_dur(&o, c->load.graceful_ramp_down);
    put(&o, "\n  request_timeout: ");
    put_dur(&o, c->load.request_timeout);
    put(&o, "\n  threads: %d\n", c->load.threads);
    put_thresholds(&o, &c->load.thresholds);

    put(&o, "metrics:\n  labels:%s\n", c->metrics.nlabels ? "" : " {}");
    for (size_t i = 0; i < c->metrics.nlabels; i++) {
        put(&o, "    %s: ", c->metrics.labels[i].key);
        put_str(&o, c->metrics.labels[i].value);
        put(&o, "\n");
    }
    const struct rw_config *rw = &c->metrics.rw;
    put(&o, "  require_delivery: %s\n", c->metrics.require_delivery ? "true" : "false");
    put(&o, "  remote_write:\n    server_url: ");
    put_url(&o, rw->server_url);
    put(&o, "\n    push_interval: ");
    put_dur(&o, rw->push_interval);
    put(&o, "\n    trend_stats: ");
    put_str(&o, rw->trend_stats);
    put(&o, "\n    trend_as_native_histogram: %s", rw->native_histogram ? "true" : "false");
    put(&o, "\n    stale_markers: %s", rw->stale_markers ? "true" : "false");
    put(&o, "\n    insecure_skip_tls_verify: %s", rw->insecure_skip_tls_verify ? "true" : "false");
    put(&o, "\n    username: ");
    put_str(&o, rw->username);
    put(&o, "\n    password: ");
    put_secret(&o, rw->password);
    put(&o, "\n    bearer_token: ");
    put_secret(&o, rw->bearer_token);
    put(&o, "\n    client_certificate: ");
    put_str(&o, rw->client_cert);
    put(&o, "\n    client_certificate_key: ");
    put_str(&o, rw->client_key);
    put(&o, "\n    headers:%s\n", rw->nheaders ? "" : " {}");
    for (size_t i = 0; i < rw->nheaders; i++) {
        put(&o, "      ");
        put_str(&o, rw->headers[i].key);
        put(&o, ": \"<redacted>\"\n");
    }

    put_journeys(&o, c);
    put(&o, "baseline:\n  source: ");
    put_url(&o, c->baseline.source);
    put(&o, "\n  runs: %d\n  min_runs: %d\n  aggregate: %s\n  max_age: ", c->baseline.runs,
        c->baseline.min_runs, config_aggregate_names[c->baseline.aggregate]);
    put_dur(&o, c->baseline.max_age);
    put(&o, "\n  pin_testid: ");
    put_str(&o, c->baseline.pin_testid);
    put(&o, "\n  missing: %s\n  min_count: %d\n  timeout: ",
        config_missing_names[c->baseline.missing], c->baseline.min_count);
    put_dur(&o, c->baseline.timeout);

    put(&o, "\nnotify:\n  termination_log: ");
    put_str(&o, c->notify.termination_log);
    put(&o, "\n  webhook_url: ");
    if (c->notify.webhook_url_file)
        put(&o, "null  # read from webhook_url_file: <redacted>");
    else
        put_secret(&o, c->notify.webhook_url);
    put(&o, "\n  webhook_url_file: ");
    put_str(&o, c->notify.webhook_url_file);
    put(&o, "\n  format: %s\n  timeout: ", config_notify_format_names[c->notify.format]);
    put_dur(&o, c->notify.timeout);
    put(&o, "\n  dashboard_url: ");
    put_str(&o, c->notify.dashboard_url);
    put(&o, "\n");

    put(&o, "output:\n  summary_export: ");
    put_str(&o, c->summary_export);
    put(&o, "\n  junit: ");
    put_str(&o, c->junit);
    put(&o, "\n  report: ");
    put_str(&o, c->report);
    put(&o, "\n  log_format: %s\n  quiet: %s\n  summary_trend_stats: ",
        cfg_log_format_names[c->log_format], c->quiet ? "true" : "false");
    put_str(&o, c->summary_trend_stats);
    put(&o, "\nno_thresholds: %s\n", c->no_thresholds ? "true" : "false");
    return o.len;
}
