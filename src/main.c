/*
 * main: the program layer. Takes the command line (cli.c), resolves the
 * configuration, runs the phases, prints the outputs and decides the exit
 * code (the only place that does).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "syncgate/auth.h"
#include "syncgate/baseline.h"
#include "syncgate/config.h"
#include "syncgate/coord.h"
#include "syncgate/digest.h"
#include "syncgate/fleet.h"
#include "syncgate/history.h"
#include "syncgate/http.h"
#include "syncgate/load.h"
#include "syncgate/log.h"
#include "syncgate/notify.h"
#include "syncgate/peer.h"
#include "syncgate/report.h"
#include "syncgate/report_html.h"
#include "syncgate/run.h"
#include "syncgate/rw.h"
#include "syncgate/sampler.h"
#include "syncgate/serve.h"
#include "syncgate/sig.h"
#include "syncgate/smoke.h"
#include "syncgate/units.h"
#include "cli.h"

static volatile sig_atomic_t stop_flag;

static void log_test_start(struct log *log, const struct config *c, enum command cmd)
{
    cJSON *ev = log_begin(log, "test_start");
    cJSON_AddStringToObject(ev, "command", command_names[cmd]);
    cJSON_AddStringToObject(ev, "version", SYNCGATE_VERSION);
    if (c->profile_path)
        cJSON_AddStringToObject(ev, "profile", c->profile_path);
    cJSON_AddStringToObject(ev, "instance", c->instance);
    cJSON_AddNumberToObject(ev, "services", (double)c->nservices);
    if (c->scaleout.instances > 1) {
        cJSON_AddNumberToObject(ev, "index", c->scaleout.index);
        cJSON_AddNumberToObject(ev, "instances", c->scaleout.instances);
        cJSON_AddStringToObject(ev, "role", c->scaleout.index ? "peer" : "coordinator");
    }
    log_emit(log, LOG_INFO, ev);
}

static void log_verdict(struct log *log, const struct report_ctx *ctx, const struct verdict *v)
{
    char detail[1024];
    for (size_t i = 0; i < v->n; i++) {
        const struct verdict_item *it = &v->items[i];
        cJSON *ev = log_begin(log, "threshold");
        cJSON_AddStringToObject(ev, "scenario", it->scenario);
        cJSON_AddStringToObject(ev, "metric", it->t->metric_key);
        cJSON_AddStringToObject(ev, "threshold", it->t->source);
        cJSON_AddBoolToObject(ev, "passed", it->passed);
        if (it->implicit)
            cJSON_AddBoolToObject(ev, "implicit", true);
        cJSON_AddStringToObject(ev, "outcome", outcome_name(it->outcome));
        if (it->reason != REASON_NONE)
            cJSON_AddStringToObject(ev, "reason", outcome_reason_name(it->reason));
        if (isnan(it->observed))
            cJSON_AddStringToObject(ev, "observed", "no samples");
        else
            cJSON_AddNumberToObject(ev, "observed", it->observed);
        if (!isnan(it->limit))
            cJSON_AddNumberToObject(ev, "limit", it->limit);
        if (it->base && it->base->status == BASELINE_FOUND)
            cJSON_AddNumberToObject(ev, "baseline", it->base->value);
        cJSON_AddStringToObject(ev, "detail", digest_item(it, ctx->cfg, detail, sizeof(detail)));
        log_emit(log, it->outcome == OUTCOME_PASSED ? LOG_INFO
                      : it->outcome == OUTCOME_FAILED ? LOG_ERROR
                                                      : LOG_WARN,
                 ev);
    }
}

/* What was read for each baseline threshold, once, before the phases. */
static void log_baselines(struct log *log, const struct config *c, const struct baseline_set *set)
{
    char key[2048], stat[32];
    for (size_t i = 0; i < set->n; i++) {
        const struct baseline *b = &set->items[i];
        cJSON *ev = log_begin(log, "baseline");
        static const char *const st[] = {"found", "missing", "failed"};
        cJSON_AddStringToObject(ev, "scenario", b->scenario);
        cJSON_AddStringToObject(ev, "metric", threshold_key(b->t, key, sizeof(key)) >= 0 ? key : "?");
        cJSON_AddStringToObject(ev, "stat", threshold_stat(b->t, stat, sizeof(stat)) >= 0 ? stat : "?");
        cJSON_AddStringToObject(ev, "status", st[b->status]);
        cJSON_AddStringToObject(ev, "source", set->source);
        if (b->status == BASELINE_FOUND)
            cJSON_AddNumberToObject(ev, "value", b->value);
        cJSON_AddNumberToObject(ev, "runs", (double)b->nruns);
        cJSON *ids = cJSON_AddArrayToObject(ev, "testids");
        for (size_t k = 0; k < b->nruns && k < 20; k++)
            cJSON_AddItemToArray(ids, cJSON_CreateString(b->runs[k].testid));
        if (b->status == BASELINE_MISSING)
            cJSON_AddStringToObject(ev, "missing", config_missing_names[c->baseline.missing]);
        if (b->status == BASELINE_FAILED)
            cJSON_AddStringToObject(ev, "error", b->error);
        log_emit(log, b->status == BASELINE_FOUND ? LOG_INFO : LOG_WARN, ev);
    }
}

/* Smoke's own verdict, so `run` starts load only after a passing smoke. */
static bool smoke_passed(struct run *r)
{
    struct metrics *snap = metrics_new();
    struct report_ctx ctx = {.cfg = r->cfg, .m = snap, .smoke_ran = true,
                             .elapsed = units_now_mono() - r->start_mono,
                             .baselines = r->baselines};
    struct verdict v;
    bool ok = snap && run_snapshot(r, snap) == 0 && report_verdict(&ctx, &v) == 0 && !v.failed;
    metrics_free(snap);
    return ok;
}

static struct rw_push *pusher; /* NULL when metrics are not pushed */
/* A distributed run's instance 0 (NULL otherwise): the peers and their metrics. */
static struct coord *coord;
/* The coordinator's second push: the whole run's trend statistics, instance="all". */
static struct rw_push *merged_pusher;
#define MERGED_INSTANCE "all"
/* The HTML report's charts: sampled once a second while the run goes (--report only). */
static struct sampler *sampler;
static struct timeline timeline;
static const char *command_name;
static int64_t started_wall;

static void set_phase(struct log *log, const struct config *c, const char *phase)
{
    log_set_test_type(log, c->test_type ? c->test_type : phase);
    if (pusher)
        rw_push_set_test_type(pusher, phase);
}

/* Remote write pushes this process's own series: each instance of a distributed run pushes
 * its own (the instance label keeps them apart; counters sum across them). */
static int snapshot_cb(struct metrics *dst, void *ud)
{
    return run_snapshot_local(ud, dst);
}

/* The coordinator's view of the whole run: the peers' latest registries and the whole
 * run's achieved rates (run.h, merge_others). */
static int merge_others_cb(void *ud, struct metrics *dst)
{
    struct run *r = ud;
    uint64_t started[CONFIG_MAX_SCENARIOS], due[CONFIG_MAX_SCENARIOS];
    for (size_t i = 0; i < CONFIG_MAX_SCENARIOS; i++) {
        started[i] = atomic_load(&r->started[i]);
        due[i] = atomic_load(&r->due[i]);
    }
    return coord_merge(coord, dst, started, due);
}

/* The trends of the whole run (the coordinator's merge), for merged_pusher: counters and rates
 * are left out (each instance pushes its own, and they add up in PromQL), percentiles are
 * not (a p95 of p95s is not the run's p95). */
static int merged_trends_cb(struct metrics *dst, void *ud)
{
    struct metrics *all = metrics_new();
    int rc = all ? run_snapshot(ud, all) : -ENOMEM;
    for (const struct series *s = rc ? NULL : metrics_first(all); s && rc == 0; s = s->next) {
        if (metric_def(s->id)->type != METRIC_TREND)
            continue;
        struct series *d = metrics_series(dst, s->id, &s->tags);
        rc = d ? series_merge(d, s) : -ENOMEM;
    }
    metrics_free(all);
    return rc;
}

/* Time the coordinator waits for the peers' final reports after its own load: they send
 * them after their remote write's final flush. */
#define FLEET_FINAL_WAIT (RW_DRAIN_USEC + 5 * USEC_PER_SEC)

/* Time the final flush may take to deliver what is still queued. */
#define RW_DRAIN_USEC (10 * USEC_PER_SEC)
/* The same after SIGTERM/SIGINT: whoever sent it wants the pod gone soon. */
#define RW_DRAIN_SIGNAL_USEC (1 * USEC_PER_SEC)

/* Stop pushing; describe delivery in status. Returns true when all was delivered. */
static bool stop_pushing(struct log *log, char *status, size_t n)
{
    struct rw_stats st;
    bool merged_ok = true;
    if (merged_pusher) {
        merged_ok = rw_push_stop(merged_pusher, RW_DRAIN_USEC, &st) == 0;
        rw_push_free(merged_pusher);
        merged_pusher = NULL;
        cJSON *ev = log_begin(log, "remote_write_summary");
        cJSON_AddStringToObject(ev, "instance", MERGED_INSTANCE);
        cJSON_AddBoolToObject(ev, "delivered", merged_ok);
        cJSON_AddNumberToObject(ev, "pushes", (double)st.pushes);
        cJSON_AddNumberToObject(ev, "samples_sent", (double)st.samples_sent);
        cJSON_AddNumberToObject(ev, "samples_undelivered", (double)st.samples_undelivered);
        log_emit(log, merged_ok ? LOG_INFO : LOG_WARN, ev);
    }
    if (!pusher)
        return merged_ok;
    bool ok = rw_push_stop(pusher, RW_DRAIN_USEC, &st) == 0;
    rw_push_free(pusher);
    pusher = NULL;
    snprintf(status, n,
             "%s: %llu pushes, %llu samples sent, %llu dropped, %llu undelivered, %llu retries%s%s",
             ok ? "delivered" : "INCOMPLETE", (unsigned long long)st.pushes,
             (unsigned long long)st.samples_sent, (unsigned long long)st.samples_dropped,
             (unsigned long long)st.samples_undelivered, (unsigned long long)st.retries,
             st.last_error[0] ? "; last error: " : "", st.last_error);
    cJSON *ev = log_begin(log, "remote_write_summary");
    cJSON_AddBoolToObject(ev, "delivered", ok);
    cJSON_AddNumberToObject(ev, "pushes", (double)st.pushes);
    cJSON_AddNumberToObject(ev, "samples_sent", (double)st.samples_sent);
    cJSON_AddNumberToObject(ev, "samples_dropped", (double)st.samples_dropped);
    cJSON_AddNumberToObject(ev, "samples_undelivered", (double)st.samples_undelivered);
    cJSON_AddNumberToObject(ev, "retries", (double)st.retries);
    log_emit(log, ok ? LOG_INFO : LOG_WARN, ev);
    return ok && merged_ok;
}

/* Whether the journeys of the phases cmd runs need the OAuth2 token. */
static bool needs_auth(const struct config *c, enum command cmd)
{
    for (size_t i = 0; i < c->journeys.n; i++) {
        const struct journey *j = &c->journeys.j[i];
        if (j->uses_auth && (cmd != CMD_SMOKE || j->smoke))
            return true;
    }
    return false;
}

/* Fetch the first token; returns 0 or the exit code after saying why. */
static int start_auth(struct run *r)
{
    const struct config *c = r->cfg;
    char why[512];
    int err = 0;
    r->auth = auth_start(&c->journeys.auth, c->ca_file, c->load.request_timeout, r->log, &err,
                         why, sizeof(why));
    if (r->auth) {
        cJSON *ev = log_begin(r->log, "token");
        char safe[CONFIG_MAX_URL + 16];
        config_redact_url(c->journeys.auth.token_url, safe, sizeof(safe));
        cJSON_AddStringToObject(ev, "url", safe);
        cJSON_AddStringToObject(ev, "client_id", c->journeys.auth.client_id);
        log_emit(r->log, LOG_INFO, ev);
        return 0;
    }
    if (*r->stop)
        return EXIT_INTERRUPTED;
    cJSON *ev = log_begin(r->log, "auth_failed");
    cJSON_AddStringToObject(ev, "message", why);
    cJSON_AddStringToObject(ev, "client_id", c->journeys.auth.client_id);
    log_emit(r->log, LOG_ERROR, ev);
    return err == -ENOMEM ? EXIT_INTERNAL : EXIT_AUTH;
}

/* Run the phases; returns the exit code before outputs are considered. */
static int run_phases(struct run *r, enum command cmd, bool *smoke_ran, bool *load_ran)
{
    const struct config *c = r->cfg;
    int rc;

    if (*r->stop)
        return EXIT_INTERRUPTED; /* signalled while starting: send nothing */
    if (cmd == CMD_RUN || cmd == CMD_SMOKE) {
        set_phase(r->log, c, "smoke");
        rc = smoke_wait_ready(r);
        if (rc == -EINTR || *r->stop)
            return EXIT_INTERRUPTED;
        if (rc == -ETIMEDOUT)
            return EXIT_NOT_READY;
        if (rc < 0)
            return EXIT_INTERNAL;
        if (needs_auth(c, cmd) && (rc = start_auth(r)) != 0)
            return rc;
        *smoke_ran = true;
        rc = smoke_run(r);
        if (rc == -EINTR)
            return EXIT_INTERRUPTED;
        if (rc < 0)
            return EXIT_INTERNAL;
        if (cmd == CMD_RUN && !smoke_passed(r)) {
            log_msg(r->log, LOG_ERROR, "phase_skipped",
                    "smoke failed: load phase not started");
            return EXIT_THRESHOLDS;
        }
    }
    if (*r->stop)
        return EXIT_INTERRUPTED;
    if (cmd == CMD_RUN || cmd == CMD_LOAD) {
        /* smoke's VU is gone: pushed as such under smoke's test_type before load begins */
        if (*smoke_ran)
            run_set_gauge(r, M_VUS, 0);
        set_phase(r->log, c, "load");
        if (!r->auth && needs_auth(c, cmd) && (rc = start_auth(r)) != 0)
            return rc;
        if (coord) {
            /* a distributed run: every instance in, then all start at T0 */
            rc = coord_wait_peers(coord);
            if (*r->stop)
                return EXIT_INTERRUPTED;
            if (rc < 0)
                return EXIT_PEERS_LOST; /* load starts nowhere: each one lost is logged */
            r->load_at = units_now_mono() + FLEET_START_MARGIN;
            coord_go(coord, r->load_at);
        }
        *load_ran = true;
        rc = load_run(r);
        if (coord)
            coord_wait_final(coord, units_now_mono() + FLEET_FINAL_WAIT);
        if (*r->stop)
            return EXIT_INTERRUPTED;
        if (rc < 0)
            return EXIT_INTERNAL;
    }
    return EXIT_OK;
}

/* The run's result as its result series say it (delivery is not known yet). */
static const char *run_result(const struct run *r, int code, const struct verdict *v,
                              bool interrupted)
{
    if (interrupted)
        return "interrupted";
    if (code == EXIT_PEERS_LOST)
        return "inconclusive";
    if (code != EXIT_OK || v->failed || r->aborted)
        return "failed";
    return v->inconclusive ? "inconclusive" : "passed";
}

/* Time the webhook may take after SIGTERM/SIGINT, whatever notify.timeout says. */
#define NOTIFY_SIGNAL_USEC (2 * USEC_PER_SEC)

/* The digest where people look: the termination message, the webhook. */
static void tell(struct run *r, const struct report_ctx *ctx, const struct verdict *v,
                 bool interrupted)
{
    const struct config *c = ctx->cfg;
    char text[NOTIFY_TERMINATION_MAX + 1];
    digest_text(ctx, v, text, sizeof(text));
    /* not there or not writable (outside Kubernetes): nothing to say */
    if (c->notify.termination_log && notify_termination(c->notify.termination_log, text) == 0) {
        cJSON *ev = log_begin(r->log, "termination_message");
        cJSON_AddStringToObject(ev, "path", c->notify.termination_log);
        cJSON_AddNumberToObject(ev, "bytes", (double)strlen(text));
        log_emit(r->log, LOG_INFO, ev);
    }
    if (!c->notify.webhook_url)
        return;
    cJSON *body = NULL;
    if (c->notify.format == NOTIFY_SLACK) {
        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "text", text);
    } else {
        body = digest_json(ctx, v);
        cJSON_AddStringToObject(body, "text", text);
    }
    char *json = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    struct notify_result res;
    int64_t budget = c->notify.timeout;
    if (interrupted && budget > NOTIFY_SIGNAL_USEC)
        budget = NOTIFY_SIGNAL_USEC;
    if (json)
        notify_webhook(c, json, budget, interrupted ? NULL : r->stop, &res);
    else
        snprintf(res.error, sizeof(res.error), "out of memory");
    free(json);
    cJSON *ev = log_begin(r->log, "webhook");
    cJSON_AddBoolToObject(ev, "delivered", json && res.delivered);
    cJSON_AddStringToObject(ev, "format", config_notify_format_names[c->notify.format]);
    cJSON_AddNumberToObject(ev, "attempts", json ? res.attempts : 0);
    if (json && res.status)
        cJSON_AddNumberToObject(ev, "status", (double)res.status);
    if (!json || !res.delivered)
        cJSON_AddStringToObject(ev, "error", res.error);
    log_emit(r->log, json && res.delivered ? LOG_INFO : LOG_WARN, ev);
}

static int finish(struct run *r, int code, bool smoke_ran, bool load_ran)
{
    const struct config *c = r->cfg;
    struct metrics *final = metrics_new();
    struct verdict v;
    char lost[1024];
    struct report_ctx ctx = {.cfg = c, .m = final, .smoke_ran = smoke_ran, .load_ran = load_ran,
                             .elapsed = units_now_mono() - r->start_mono,
                             .baselines = r->baselines,
                             .saturation = load_ran ? &r->saturation : NULL,
                             .instances = (unsigned)c->scaleout.instances};

    if (coord) {
        /* a distributed run is judged whole: any instance saturated, any lost */
        if (load_ran)
            coord_saturation(coord, &r->saturation);
        if (coord_lost(coord, lost, sizeof(lost)) > 0) {
            ctx.lost = lost;
            if (code == EXIT_OK)
                code = EXIT_PEERS_LOST;
        }
    }
    sampler_stop(sampler); /* its last point ends here, with the run */
    sampler = NULL;
    if (!final || run_snapshot(r, final) < 0 || report_verdict(&ctx, &v) < 0) {
        metrics_free(final);
        log_msg(r->log, LOG_ERROR, "test_finish", "out of memory while reporting");
        return EXIT_INTERNAL;
    }
    log_verdict(r->log, &ctx, &v);
    if (metrics_grouped(final) || metrics_dropped(final)) {
        cJSON *ev = log_begin(r->log, "series_limit");
        cJSON_AddNumberToObject(ev, "max_series", METRICS_MAX_SERIES);
        cJSON_AddNumberToObject(ev, "grouped", (double)metrics_grouped(final));
        cJSON_AddNumberToObject(ev, "dropped", (double)metrics_dropped(final));
        cJSON_AddStringToObject(ev, "message",
                                "too many distinct tag sets: some samples were recorded "
                                "with the scenario tag only");
        log_emit(r->log, LOG_WARN, ev);
    }
    /* The run's result series go with the final flush: what later runs compare with. */
    struct history_series hs;
    memset(&hs, 0, sizeof(hs));
    if (pusher) {
        bool sig = *r->stop, saturated = load_ran && r->saturation.saturated;
        struct history_outcome ho = {
            .result = run_result(r, code, &v, sig),
            .history = !sig && code == EXIT_OK && !r->aborted && !saturated &&
                       history_eligible(&v),
            .revision = c->revision,
            .finished = (double)units_now_wall() / USEC_PER_SEC,
            .smoke_ran = smoke_ran || code == EXIT_NOT_READY,
            .load_ran = load_ran,
        };
        if (history_series_build(&hs, &v, &ho) == 0)
            rw_push_set_final(pusher, hs.items, hs.n);
    }
    /* The final flush sees the same sources the verdict did. */
    char rw_status[512];
    bool delivered = stop_pushing(r->log, rw_status, sizeof(rw_status));
    history_series_clear(&hs);
    ctx.rw_status = c->metrics.rw.server_url ? rw_status : NULL;
    /* A signal wins over thresholds (as in k6), also one during the final flush. One
     * arriving after this point (while the outputs are written) changes nothing. */
    bool interrupted = *r->stop;
    if (interrupted)
        code = EXIT_INTERRUPTED;
    /* An abort is a threshold failure. */
    if (code == EXIT_OK && (v.failed || r->aborted))
        code = EXIT_THRESHOLDS;
    if (code == EXIT_OK && (!delivered || (coord && coord_peers_undelivered(coord))) &&
        c->metrics.require_delivery)
        code = EXIT_UNDELIVERED;
    /* Not judged is not passed: below every failure, above a pass. */
    if (code == EXIT_OK && v.inconclusive)
        code = EXIT_INCONCLUSIVE;
    ctx.exit_code = code;
    /* every instance of a distributed run exits with this code: they may go now */
    if (coord)
        coord_done(coord, code, digest_result(code), ctx.lost ? ctx.lost : "");

    if (!c->quiet || code != EXIT_OK)
        report_text(stdout, &ctx, &v, isatty(STDOUT_FILENO));
    fflush(stdout);
    if (c->summary_export && report_json(c->summary_export, &ctx, &v) < 0)
        log_msg(r->log, LOG_ERROR, "output_error", "cannot write %s: %s", c->summary_export,
                strerror(errno));
    if (c->junit && report_junit(c->junit, &ctx, &v) < 0)
        log_msg(r->log, LOG_ERROR, "output_error", "cannot write %s: %s", c->junit,
                strerror(errno));
    if (c->report) {
        struct report_html_info hi = {.command = command_name, .started_wall = started_wall,
                                      .tl = &timeline};
        int rc = report_html(c->report, &ctx, &v, &hi);
        if (rc < 0)
            log_msg(r->log, LOG_ERROR, "output_error", "cannot write %s: %s", c->report,
                    strerror(-rc));
    }
    tell(r, &ctx, &v, interrupted);

    size_t ninc = 0;
    for (size_t i = 0; i < v.n; i++)
        ninc += v.items[i].outcome == OUTCOME_INCONCLUSIVE;
    cJSON *ev = log_begin(r->log, "test_finish");
    cJSON_AddNumberToObject(ev, "exit_code", code);
    cJSON_AddStringToObject(ev, "result", digest_result(code));
    cJSON_AddNumberToObject(ev, "checks_failed", (double)v.checks_failed);
    cJSON_AddNumberToObject(ev, "checks_total", (double)v.checks_total);
    cJSON_AddNumberToObject(ev, "thresholds_inconclusive", (double)ninc);
    cJSON_AddNumberToObject(ev, "duration_ms", (double)ctx.elapsed / 1000.0);
    if (r->aborted)
        cJSON_AddBoolToObject(ev, "aborted", true);
    if (interrupted) {
        char name[32];
        cJSON_AddBoolToObject(ev, "interrupted", true);
        if (sig_first())
            cJSON_AddStringToObject(ev, "signal", sig_name(sig_first(), name, sizeof(name)));
    }
    if (load_ran && r->saturation.saturated)
        cJSON_AddBoolToObject(ev, "saturated", true);
    if (c->scaleout.instances > 1) {
        cJSON_AddNumberToObject(ev, "instances", c->scaleout.instances);
        if (ctx.lost)
            cJSON_AddStringToObject(ev, "lost", ctx.lost);
    }
    struct report_error errs[REPORT_MAX_ERRORS];
    size_t nerrs = report_errors(final, errs, REPORT_MAX_ERRORS);
    cJSON *ej = cJSON_AddObjectToObject(ev, "errors");
    for (size_t i = 0; i < nerrs; i++)
        cJSON_AddNumberToObject(ej, errs[i].kind, (double)errs[i].count);
    log_emit(r->log, code == EXIT_OK ? LOG_INFO : LOG_ERROR, ev);
    metrics_free(final);
    return code;
}

/* Resolve and check the configuration: 0, or the exit code after saying why. */
static int resolve(struct config *cfg, const struct args *a)
{
    extern char **environ;
    struct diag d;
    char why[4400];

    memset(&d, 0, sizeof(d));
    if (config_init(cfg) < 0) {
        fputs("syncgate: cannot set up the built-in defaults\n", stderr);
        return EXIT_INTERNAL;
    }
    /* load and run need a service to load; smoke alone may go through the gateway only */
    if (config_resolve(cfg, &a->cli, environ, &d) < 0 ||
        ((a->cmd == CMD_RUN || a->cmd == CMD_LOAD) && config_check_load(cfg, &d) < 0)) {
        fprintf(stderr, "syncgate: %s\n", diag_format(&d, why, sizeof(why)));
        return EXIT_INVALID_CONFIG;
    }
    if (cli_check_output("--summary-export", "output.summary_export", cfg->summary_export, why,
                     sizeof(why)) < 0 ||
        cli_check_output("--junit", "output.junit", cfg->junit, why, sizeof(why)) < 0 ||
        cli_check_output("--report", "output.report", cfg->report, why, sizeof(why)) < 0) {
        fprintf(stderr, "syncgate: %s\n", why);
        return EXIT_INVALID_CONFIG;
    }
    /* no output overwrites another: each later one is checked against the earlier ones */
    const struct {
        const char *opt, *key, *path, *what;
    } outs[] = {
        {"--summary-export", "output.summary_export", cfg->summary_export, "summary export"},
        {"--junit", "output.junit", cfg->junit, "JUnit"},
        {"--report", "output.report", cfg->report, "HTML report"},
    };
    for (size_t i = 1; i < sizeof(outs) / sizeof(outs[0]); i++)
        for (size_t j = 0; j < i; j++) {
            if (!outs[i].path || !outs[j].path || !cli_same_output(outs[j].path, outs[i].path))
                continue;
            if (strcmp(outs[j].path, outs[i].path) == 0)
                fprintf(stderr, "syncgate: %s (%s): \"%s\" is also the %s file\n", outs[i].opt,
                        outs[i].key, outs[i].path, outs[j].what);
            else
                fprintf(stderr,
                        "syncgate: %s (%s): \"%s\" is the same file as the %s \"%s\"\n",
                        outs[i].opt, outs[i].key, outs[i].path, outs[j].what, outs[j].path);
            return EXIT_INVALID_CONFIG;
        }
    return 0;
}

static int validate(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->nwarnings; i++)
        fprintf(stderr, "syncgate: warning: %s\n", cfg->warnings[i]);
    size_t n = config_dump(cfg, NULL, 0) + 1;
    char *text = malloc(n);
    if (!text)
        return EXIT_INTERNAL;
    config_dump(cfg, text, n);
    fputs(text, stdout);
    free(text);
    return EXIT_OK;
}

/* Register secret (and, when user is given, "user:secret", the text Basic credentials
 * encode) with the log. Returns log_add_secret's result. */
static int add_secret(struct log *log, const char *user, const char *secret)
{
    int rc = secret ? log_add_secret(log, secret) : 0;
    if (rc == 0 && secret && user) {
        char *pair;
        if (asprintf(&pair, "%s:%s", user, secret) < 0)
            return -ENOMEM;
        rc = log_add_secret(log, pair);
        explicit_bzero(pair, strlen(pair));
        free(pair);
    }
    return rc;
}

/* The password of url's user info (and user:password) as written and as libcurl sends it
 * (decoded). */
static int add_url_secret(struct log *log, const char *url)
{
    CURLU *u = url ? curl_url() : NULL;
    int rc = 0;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        return 0; /* no URL, or one the configuration would have refused */
    }
    for (int decode = 0; decode < 2 && rc == 0; decode++) {
        unsigned flags = decode ? CURLU_URLDECODE : 0;
        char *user = NULL, *pass = NULL;
        if (curl_url_get(u, CURLUPART_PASSWORD, &pass, flags) == CURLUE_OK) {
            curl_url_get(u, CURLUPART_USER, &user, flags);
            rc = add_secret(log, user ? user : "", pass);
            explicit_bzero(pass, strlen(pass));
        }
        curl_free(pass);
        curl_free(user);
    }
    curl_url_cleanup(u);
    return rc;
}

/*
 * Every configured secret, registered with the log before the first request,
 * so that no line can show it, whatever a server echoes back: the Kong key,
 * the remote-write password (with user:password for Basic), bearer token and
 * header values, the passwords of URLs, and what journeys keep secret.
 * log_add_secret adds the base64 forms; "Bearer <token>" needs nothing more,
 * as it holds the token.
 */
static int register_secrets(struct log *log, const struct config *c)
{
    const struct rw_config *rw = &c->metrics.rw;
    int rc = add_secret(log, NULL, c->gateway.key);
    if (!rc) /* a distributed run's shared token */
        rc = add_secret(log, NULL, c->scaleout.token);
    if (!rc)
        rc = add_secret(log, rw->username, rw->password);
    if (!rc)
        rc = add_secret(log, NULL, rw->bearer_token);
    for (size_t i = 0; !rc && i < rw->nheaders; i++)
        rc = add_secret(log, NULL, rw->headers[i].value);
    if (!rc)
        rc = add_url_secret(log, c->gateway.url);
    if (!rc)
        rc = add_url_secret(log, rw->server_url);
    for (size_t i = 0; !rc && i < c->nservices; i++)
        rc = add_url_secret(log, c->services[i].url);
    /* the webhook URL is a credential itself (a Slack hook's path is its key) */
    if (!rc)
        rc = add_secret(log, NULL, c->notify.webhook_url);
    if (!rc)
        rc = add_url_secret(log, c->notify.webhook_url);

    /* journeys: the OAuth2 client secret (and the Basic credentials it goes out in) and
     * header values marked secret that are plain text; the tokens are registered by auth
     * as they are fetched. Not the env values templates read: most are plain words (a
     * region, a tenant), and masking those would hide them in every line. */
    const struct journey_set *js = &c->journeys;
    if (!rc)
        rc = add_secret(log, NULL, js->auth.client_secret);
    if (!rc && js->auth.client_id && js->auth.client_secret) {
        char basic[2 * AUTH_TOKEN_MAX];
        ssize_t len = auth_basic(js->auth.client_id, js->auth.client_secret, basic, sizeof(basic));
        if (len > 0 && len <= LOG_SECRET_MAX_LEN) /* longer: auth refuses it anyway */
            rc = log_add_secret(log, basic);
        explicit_bzero(basic, sizeof(basic));
    }
    for (size_t i = 0; !rc && i < js->n; i++)
        for (size_t k = 0; !rc && k < js->j[i].nsteps; k++)
            for (size_t h = 0; !rc && h < js->j[i].steps[k].nheaders; h++) {
                const struct step_header *sh = &js->j[i].steps[k].headers[h];
                if (sh->secret && !sh->value.has_vars)
                    rc = add_secret(log, NULL, sh->value.src);
            }
    return rc;
}

/* The run's log, with every configured secret registered to be masked in it; NULL (after
 * saying why when it was the secrets) when it cannot be had. */
static struct log *open_log(const struct config *cfg)
{
    struct log *log = log_new(stderr, cfg->log_format, cfg->quiet, cfg->environment, cfg->testid);
    int rc = log ? register_secrets(log, cfg) : 0;
    if (rc < 0) {
        fprintf(stderr, "syncgate: cannot protect the configured secrets in logs: %s\n",
                strerror(-rc));
        log_free(log);
        return NULL;
    }
    return log;
}

/* Run a command that sends requests: phases, outputs, the exit code. */
static int execute(const struct config *cfg, enum command cmd)
{
    struct log *log = open_log(cfg);
    struct run r;
    struct baseline_set *baselines = NULL;
    int code = EXIT_INTERNAL;

    if (!log)
        return EXIT_INTERNAL;
    run_init(&r, cfg, log, &stop_flag);
    started_wall = units_now_wall();
    command_name = command_names[cmd];
    if (cfg->scaleout.instances > 1) {
        /* instance 0 of a distributed run: listen for the peers before anything else */
        int err = 0;
        if (!(coord = coord_start(cfg, log, &r, &err))) {
            log_msg(log, LOG_ERROR, "fleet_error",
                    "the coordinator cannot listen on port %d: %s", cfg->scaleout.port,
                    strerror(-err));
            goto out;
        }
        r.merge_others = merge_others_cb;
        r.merge_ud = &r;
    }
    if (cfg->report) {
        int err = timeline_init(&timeline, TIMELINE_DEFAULT_POINTS, SAMPLER_INTERVAL);
        if (err == 0)
            sampler = sampler_start(&r, &timeline, SAMPLER_INTERVAL, &err);
        if (err < 0) {
            fprintf(stderr, "syncgate: cannot sample the run for the report: %s\n",
                    strerror(-err));
            goto out;
        }
    }
    if (cfg->metrics.rw.server_url) {
        char err[256];
        struct rw_push_opts po = {.interrupt = &stop_flag,
                                  .interrupt_drain = RW_DRAIN_SIGNAL_USEC};
        pusher = rw_push_start(cfg, log, snapshot_cb, &r, &po, err, sizeof(err));
        if (!pusher) {
            fprintf(stderr, "syncgate: remote write: %s\n", err);
            goto out;
        }
        /* native histograms add up in PromQL across instances: nothing merged to push */
        if (coord && !cfg->metrics.rw.native_histogram) {
            struct config merged = *cfg;
            merged.instance = MERGED_INSTANCE;
            merged_pusher = rw_push_start(&merged, log, merged_trends_cb, &r, &po, err,
                                          sizeof(err));
            if (!merged_pusher) {
                fprintf(stderr, "syncgate: remote write: %s\n", err);
                goto out;
            }
        }
    }
    set_phase(log, cfg, cmd == CMD_LOAD ? "load" : "smoke");
    log_test_start(log, cfg, cmd);
    for (size_t i = 0; i < cfg->nwarnings; i++)
        log_msg(log, LOG_WARN, "config_warning", "%s", cfg->warnings[i]);
    if (cfg->metrics.rw.insecure_skip_tls_verify) {
        cJSON *ev = log_begin(log, "tls_verify_disabled");
        cJSON_AddStringToObject(ev, "target", "remote_write");
        cJSON_AddStringToObject(ev, "message",
                                "K6_PROMETHEUS_RW_INSECURE_SKIP_TLS_VERIFY is on: the "
                                "remote-write receiver's certificate and host name are not "
                                "checked");
        log_emit(log, LOG_WARN, ev);
    }

    /* Baselines are read before anything is sent to the targets: their
     * history does not change during the run, and abortOnFail can use them. */
    baselines = calloc(1, sizeof(*baselines));
    if (!baselines || baseline_fetch(cfg, cmd != CMD_LOAD, cmd != CMD_SMOKE, &stop_flag,
                                     baselines) < 0) {
        log_msg(log, LOG_ERROR, "baseline", "out of memory while reading baselines");
        code = EXIT_INTERNAL;
        goto out;
    }
    log_baselines(log, cfg, baselines);
    r.baselines = baselines;

    bool smoke_ran = false, load_ran = false;
    code = run_phases(&r, cmd, &smoke_ran, &load_ran);
    auth_stop(r.auth);
    r.auth = NULL;
    code = finish(&r, code, smoke_ran, load_ran);
    if (coord) /* the peers read the verdict: then they exit with it, and so do we */
        coord_linger(coord, units_now_mono() + FLEET_VERDICT_LINGER);
out:
    rw_push_free(merged_pusher);
    merged_pusher = NULL;
    rw_push_free(pusher); /* already stopped unless reporting failed */
    pusher = NULL;
    sampler_stop(sampler); /* already stopped unless the run never started */
    sampler = NULL;
    coord_free(coord); /* after everything that merges through it */
    coord = NULL;
    r.merge_others = NULL;
    timeline_clear(&timeline);
    if (baselines)
        baseline_set_clear(baselines);
    free(baselines);
    run_clear(&r);
    log_free(log);
    return code;
}

/* ---- a distributed run's peer (an instance above 0: fleet.h) ---------------------------- */

static struct peer *peer;
static bool peer_undelivered; /* its remote write lost samples (its final report says so) */

/* What a peer reports: its own registry, its open-model progress, and (once load is over)
 * its saturation watch and delivery; a signal makes it a failure of this instance. */
static int report_cb(void *ud, struct metrics *dst, struct snapshot_meta *meta)
{
    struct run *r = ud;
    const struct config *c = r->cfg;
    int rc = run_snapshot_local(r, dst);
    meta->nscenarios = c->load.nscenarios < CONFIG_MAX_SCENARIOS ? c->load.nscenarios
                                                                 : CONFIG_MAX_SCENARIOS;
    for (size_t i = 0; i < meta->nscenarios; i++) {
        meta->started[i] = atomic_load(&r->started[i]);
        meta->due[i] = atomic_load(&r->due[i]);
    }
    meta->elapsed = r->load_at ? units_now_mono() - r->load_at : 0;
    if (r->saturation.measured) {
        meta->has_saturation = true;
        meta->saturation = r->saturation;
    }
    meta->undelivered = peer_undelivered;
    if (*r->stop) {
        meta->failure = EXIT_INTERRUPTED;
        snprintf(meta->reason, sizeof(meta->reason), "interrupted by a signal");
    }
    return rc;
}

/* A peer's last words: the exit code (the coordinator's verdict unless `own`) in the log,
 * on stdout and in the termination message. */
static void peer_finish(struct run *r, int code, bool own, const char *why)
{
    const struct config *c = r->cfg;
    double requests = 0, failed = 0;
    struct metrics *m = metrics_new();
    struct metric_view v;
    if (m && run_snapshot_local(r, m) == 0) {
        if (metrics_view(m, M_HTTP_REQS, NULL, &v) == 0)
            requests = v.counter;
        if (metrics_view(m, M_HTTP_REQ_FAILED, NULL, &v) == 0)
            failed = (double)v.pass; /* a "pass" of http_req_failed is a failed request */
    }
    metrics_free(m);
    const char *from = own ? "this instance" : "the coordinator's verdict";
    if (!c->quiet || code != EXIT_OK)
        printf("\n   instance %d of %d (a peer of %s): %.0f requests, %.0f failed; the summary "
               "and outputs are the coordinator's\n\n   result: %s (exit code %d, %s%s%s)\n\n",
               c->scaleout.index, c->scaleout.instances, c->scaleout.coordinator, requests,
               failed, digest_result(code), code, from, why && *why ? ": " : "",
               why ? why : "");
    fflush(stdout);
    if (c->notify.termination_log) {
        char text[NOTIFY_TERMINATION_MAX + 1];
        snprintf(text, sizeof(text),
                 "syncgate %s (exit %d): instance %d of %d, testid %s; %s%s%s\n",
                 digest_result(code), code, c->scaleout.index, c->scaleout.instances, c->testid,
                 own ? "this instance's own outcome" : "the verdict of instance 0 (see its summary)",
                 why && *why ? ": " : "", why ? why : "");
        notify_termination(c->notify.termination_log, text);
    }
    cJSON *ev = log_begin(r->log, "test_finish");
    cJSON_AddNumberToObject(ev, "exit_code", code);
    cJSON_AddStringToObject(ev, "result", digest_result(code));
    cJSON_AddNumberToObject(ev, "index", c->scaleout.index);
    cJSON_AddNumberToObject(ev, "instances", c->scaleout.instances);
    cJSON_AddStringToObject(ev, "verdict_from", own ? "instance" : "coordinator");
    if (why && *why)
        cJSON_AddStringToObject(ev, "reason", why);
    cJSON_AddNumberToObject(ev, "requests", requests);
    cJSON_AddNumberToObject(ev, "duration_ms", (double)(units_now_mono() - r->start_mono) / 1000.0);
    if (*r->stop) {
        char name[32];
        cJSON_AddBoolToObject(ev, "interrupted", true);
        if (sig_first())
            cJSON_AddStringToObject(ev, "signal", sig_name(sig_first(), name, sizeof(name)));
    }
    log_emit(r->log, code == EXIT_OK ? LOG_INFO : LOG_ERROR, ev);
}

/*
 * An instance above 0 of a distributed run: join the coordinator, wait for the start, run
 * this instance's slice of the load at T0 while reporting, then exit with the verdict.
 * No readiness wait, smoke, baselines or outputs here: those are the coordinator's.
 */
static int execute_peer(struct config *cfg, enum command cmd)
{
    struct log *log = open_log(cfg);
    struct run r;
    struct peer_status st;
    char why[512] = "", status[512];
    int code = EXIT_INTERNAL, rc, err = 0, failure = 0;
    bool own = true;

    if (!log)
        return EXIT_INTERNAL;
    run_init(&r, cfg, log, &stop_flag);
    started_wall = units_now_wall();
    set_phase(log, cfg, "load");
    if (!(peer = peer_new(cfg, log, &err)))
        goto out;

    rc = peer_register(peer, &stop_flag, &st);
    if (rc < 0) {
        char t[32];
        units_format_duration(cfg->scaleout.register_timeout, t, sizeof(t));
        code = rc == -EINTR ? EXIT_INTERRUPTED : rc == -EACCES ? EXIT_INVALID_CONFIG : EXIT_PEERS_LOST;
        if (rc == -EACCES)
            snprintf(why, sizeof(why), "the coordinator refused this instance's token (%s): "
                     "SYNCGATE_PEER_TOKEN_FILE must hold the same token on every instance",
                     st.reason);
        else if (rc == -EPROTO)
            snprintf(why, sizeof(why), "the coordinator refused this instance: %s", st.reason);
        else if (rc == -ETIMEDOUT)
            snprintf(why, sizeof(why), "no coordinator answered at %s within %s "
                     "(SYNCGATE_REGISTER_TIMEOUT): %s", cfg->scaleout.coordinator, t, st.reason);
        else if (rc == -EHOSTDOWN)
            snprintf(why, sizeof(why), "the coordinator at %s was lost while this instance "
                     "joined: %s", cfg->scaleout.coordinator, st.reason);
        else
            snprintf(why, sizeof(why), "interrupted while joining the run");
        if (rc != -EINTR)
            log_msg(log, LOG_ERROR, "fleet_error", "%s", why);
        goto done;
    }
    /* no TESTID: the run's testid is the coordinator's, so its series are one run's */
    if (cfg->scaleout.testid_generated && st.testid[0] && strcmp(st.testid, cfg->testid)) {
        char *t = strdup(st.testid);
        if (!t)
            goto out;
        free(cfg->testid);
        cfg->testid = t;
    }
    log_test_start(log, cfg, cmd);
    for (size_t i = 0; i < cfg->nwarnings; i++)
        log_msg(log, LOG_WARN, "config_warning", "%s", cfg->warnings[i]);
    if (cfg->metrics.rw.server_url) {
        char e[256];
        struct rw_push_opts po = {.interrupt = &stop_flag,
                                  .interrupt_drain = RW_DRAIN_SIGNAL_USEC};
        if (!(pusher = rw_push_start(cfg, log, snapshot_cb, &r, &po, e, sizeof(e)))) {
            fprintf(stderr, "syncgate: remote write: %s\n", e);
            goto out;
        }
    }
    /* the OAuth2 token is each instance's own; without it this one cannot take part */
    if (cmd != CMD_SMOKE && needs_auth(cfg, CMD_LOAD) && (failure = start_auth(&r)) != 0)
        snprintf(why, sizeof(why), "%s", failure == EXIT_AUTH ? "the OAuth2 token could not be "
                 "fetched" : "could not start");

    /* registered while the run waits for its start, or after it ended (then st is DONE) */
    rc = st.state == FLEET_WAITING ? peer_wait(peer, FLEET_GO, &stop_flag, failure, why, &st) : 0;
    if (rc == 0 && st.state == FLEET_GO && !failure && cmd != CMD_SMOKE) {
        int64_t offset, rtt;
        peer_clock(peer, &offset, &rtt);
        cJSON *ev = log_begin(log, "peer_clock");
        cJSON_AddNumberToObject(ev, "offset_us", (double)offset);
        cJSON_AddNumberToObject(ev, "rtt_us", (double)rtt);
        cJSON_AddNumberToObject(ev, "start_in_ms",
                                (double)((st.start_local - units_now_mono()) / 1000));
        log_emit(log, LOG_INFO, ev);
        r.load_at = st.start_local;
        if ((err = peer_report_start(peer, report_cb, &r, &r.fleet_stop)) < 0)
            goto out;
        if (load_run(&r) < 0) {
            failure = EXIT_INTERNAL;
            snprintf(why, sizeof(why), "its load engine failed");
        }
        /* its own remote write first: the final report says whether it delivered (the
         * report thread keeps the coordinator informed meanwhile) */
        peer_undelivered = !stop_pushing(log, status, sizeof(status));
        rc = peer_report_final(peer, report_cb, &r, &st);
        if (*r.stop) {
            code = EXIT_INTERRUPTED;
            goto done;
        }
        if (rc < 0) {
            code = EXIT_PEERS_LOST;
            snprintf(why, sizeof(why), "the coordinator was lost");
            goto done;
        }
    }
    if (rc == 0 && st.state != FLEET_DONE)
        rc = peer_wait(peer, FLEET_DONE, &stop_flag, failure, why, &st);
    if (rc == -EINTR || *r.stop) {
        code = EXIT_INTERRUPTED;
    } else if (rc < 0) {
        code = EXIT_PEERS_LOST;
        snprintf(why, sizeof(why), "the coordinator was lost (nothing from %s for %d s)",
                 cfg->scaleout.coordinator, (int)(FLEET_PEER_LOST_AFTER / USEC_PER_SEC));
    } else {
        code = st.exit_code;
        own = false;
        snprintf(why, sizeof(why), "%s", st.reason);
    }
done:
    peer_free(peer); /* the report thread stops, if it still ran */
    peer = NULL;
    if (pusher)
        stop_pushing(log, status, sizeof(status));
    auth_stop(r.auth);
    r.auth = NULL;
    peer_finish(&r, code, own, why);
out:
    peer_free(peer);
    peer = NULL;
    rw_push_free(pusher);
    pusher = NULL;
    auth_stop(r.auth);
    run_clear(&r);
    log_free(log);
    return code;
}

/* `syncgate serve [options]`: the service, with options of its own (serve_opts.c). */
static int serve(int argc, char **argv, const char *self)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("syncgate: libcurl initialisation failed\n", stderr);
        return EXIT_INTERNAL;
    }
    int rc = serve_main(argc, argv, self);
    curl_global_cleanup();
    return rc == 0 ? EXIT_OK : rc == -EINVAL ? EXIT_INVALID_CONFIG : EXIT_INTERNAL;
}

int main(int argc, char **argv)
{
    struct args a;
    struct config cfg;

    if (argc > 1 && strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1, argv[0]);
    int code = cli_parse(argc, argv, &a);

    if (code)
        return code < 0 ? EXIT_OK : code;
    if (a.cmd == CMD_VERSION) {
        printf("syncgate %s (%s)\n", SYNCGATE_VERSION, curl_version());
        return EXIT_OK;
    }
    /* From the start: a signal while the profile is read still means 105, not death. */
    if (a.cmd != CMD_VALIDATE && sig_install(&stop_flag, EXIT_INTERRUPTED) < 0) {
        fprintf(stderr, "syncgate: cannot install signal handlers: %s\n", strerror(errno));
        return EXIT_INTERNAL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("syncgate: libcurl initialisation failed\n", stderr);
        return EXIT_INTERNAL;
    }
    code = resolve(&cfg, &a);
    if (code == 0)
        code = a.cmd == CMD_VALIDATE ? validate(&cfg)
               : cfg.scaleout.instances > 1 && cfg.scaleout.index > 0 ? execute_peer(&cfg, a.cmd)
                                                                      : execute(&cfg, a.cmd);
    config_clear(&cfg);
    curl_global_cleanup();
    return code;
}
