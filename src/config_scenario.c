/*
 * config_scenario: what load runs, as k6 decides it. The profile's
 * load.scenarios (k6's scenarios option, snake_case keys; k6's camelCase
 * spellings are accepted too) or its load.stages shorthand, and k6's
 * execution shortcuts from the environment (K6_VUS, K6_DURATION,
 * K6_ITERATIONS, K6_STAGES, the seed's STAGES) and the command line (--vus,
 * --duration, --iterations, --stage), are layered as k6 layers them: the
 * highest of profile < environment < command line that sets any of
 * duration, iterations, stages or scenarios replaces what lower layers set
 * (with a warning), two of them in one layer are an error, and the winner
 * becomes the scenarios (shortcuts turn into one scenario called "load").
 */
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/config.h"
#include "syncgate/doc.h"
#include "syncgate/executor.h"
#include "syncgate/sched.h"
#include "syncgate/units.h"

#define MIN_RATE_UNIT USEC_PER_MSEC
#define MAX_VUS 100000
#define MAX_RATE 10000000
#define DEFAULT_GRACEFUL_STOP (30 * USEC_PER_SEC) /* k6's, for explicit scenarios */
#define DEFAULT_MAX_DURATION (600 * USEC_PER_SEC) /* k6's maxDuration: 10m */

/* The layers k6 consolidates, lowest first. */
enum layer { L_NONE, L_PROFILE, L_ENV, L_CLI };

static const char *const layer_names[] = {"", "profile", "environment", "command line"};

static enum layer layer_of(const struct doc_node *n)
{
    if (!n || doc_is_null(n))
        return L_NONE;
    switch (n->at.src) {
    case DOC_SRC_FILE: return L_PROFILE;
    case DOC_SRC_ENV: return L_ENV;
    case DOC_SRC_SET:
    case DOC_SRC_CLI: return L_CLI;
    default: return L_NONE;
    }
}

static int add_warning(struct config *c, const char *fmt, const char *a, const char *b)
{
    if (c->nwarnings == CONFIG_MAX_WARNINGS)
        return 0;
    char *w;
    if (asprintf(&w, fmt, a, b) < 0)
        return -ENOMEM;
    c->warnings[c->nwarnings++] = w;
    return 0;
}

/* ---- one scenario ------------------------------------------------------------ */

/* k6's camelCase names and ours; a key is found by either. */
static const struct {
    const char *name, *k6;
} keys[] = {
    {"executor", NULL},
    {"journey", NULL},
    {"vus", NULL},
    {"start_vus", "startVUs"},
    {"duration", NULL},
    {"max_duration", "maxDuration"},
    {"iterations", NULL},
    {"rate", NULL},
    {"start_rate", "startRate"},
    {"time_unit", "timeUnit"},
    {"pre_allocated_vus", "preAllocatedVUs"},
    {"max_vus", "maxVUs"},
    {"stages", NULL},
    {"start_time", "startTime"},
    {"graceful_stop", "gracefulStop"},
    {"graceful_ramp_down", "gracefulRampDown"},
    {"tags", NULL},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Which keys each executor takes, as bits over keys[] (executor, journey, tags, start_time
 * and graceful_stop always). */
#define B(i) (1u << (i))
static const unsigned common = B(0) | B(1) | B(13) | B(14) | B(16);
static const unsigned allowed[] = {
    [EX_CONSTANT_VUS] = B(2) | B(4),
    [EX_RAMPING_VUS] = B(3) | B(12) | B(15),
    [EX_CONSTANT_ARRIVAL_RATE] = B(7) | B(9) | B(4) | B(10) | B(11),
    [EX_RAMPING_ARRIVAL_RATE] = B(8) | B(9) | B(12) | B(10) | B(11),
    [EX_PER_VU_ITERATIONS] = B(2) | B(6) | B(5),
    [EX_SHARED_ITERATIONS] = B(2) | B(6) | B(5),
};
static const unsigned required[] = {
    [EX_CONSTANT_VUS] = B(4),
    [EX_RAMPING_VUS] = B(12),
    [EX_CONSTANT_ARRIVAL_RATE] = B(7) | B(4) | B(10),
    [EX_RAMPING_ARRIVAL_RATE] = B(12) | B(10),
    [EX_PER_VU_ITERATIONS] = 0,
    [EX_SHARED_ITERATIONS] = 0,
};

static int key_index(const char *k)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(k, keys[i].name) || (keys[i].k6 && !strcmp(k, keys[i].k6)))
            return (int)i;
    return -1;
}

static void join(char *buf, size_t n, const char *a, const char *b)
{
    if (snprintf(buf, n, "%s.%s", a, b) >= (int)n)
        buf[n - 1] = '\0';
}

static bool scenario_name_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static int cvt_stages(struct diag *d, struct scenario *sc, const struct doc_node *n,
                      const char *key, bool rate)
{
    char k[300], kk[320];
    int64_t v;
    int rc;
    if (n->kind != DOC_SEQ || n->n == 0)
        return cfg_fail(d, &n->at, key, "expected a list of stages like [{duration: 30s, "
                        "target: %s}]", rate ? "50" : "10");
    if (n->n > CONFIG_MAX_STAGES)
        return cfg_fail(d, &n->at, key, "too many stages (at most %d)", CONFIG_MAX_STAGES);
    size_t i = 0;
    for (const struct doc_node *e = n->head; e; e = e->next, i++) {
        if (snprintf(k, sizeof(k), "%s[%zu]", key, i) >= (int)sizeof(k))
            k[sizeof(k) - 1] = '\0'; /* keys only label messages */
        if (e->kind != DOC_MAP)
            return cfg_fail(d, &e->at, k, "expected {duration: ..., target: ...}, got %s",
                            cfg_kind_name(e));
        const struct doc_node *du = doc_map_get(e, "duration"), *ta = doc_map_get(e, "target");
        for (const struct doc_node *f = e->head; f; f = f->next)
            if (strcmp(f->key, "duration") && strcmp(f->key, "target"))
                return cfg_fail(d, &f->key_at, k, "unknown key \"%s\"; allowed: duration, target",
                                f->key);
        if (!du || !ta)
            return cfg_fail(d, &e->at, k, "a stage needs duration and target");
        join(kk, sizeof(kk), k, "duration");
        if ((rc = cfg_parse_dur(d, du, kk, 0, UNITS_MAX_DURATION, &sc->stages[i].duration)))
            return rc;
        join(kk, sizeof(kk), k, "target");
        if ((rc = cfg_parse_int(d, ta, kk, 0, rate ? MAX_RATE : MAX_VUS, &v)))
            return rc;
        sc->stages[i].target = (int)v;
    }
    sc->nstages = i;
    if (sched_duration(sc->stages, sc->nstages) <= 0)
        return cfg_fail(d, &n->at, key, "every stage lasts 0s, so the scenario would do nothing");
    return 0;
}

static int cvt_tags(struct diag *d, struct scenario *sc, const struct doc_node *n,
                    const char *key)
{
    char k[300];
    if (doc_is_null(n))
        return 0;
    if (n->kind != DOC_MAP)
        return cfg_fail(d, &n->at, key, "expected a mapping of tag names to values");
    if (n->n > sizeof(sc->tags) / sizeof(sc->tags[0]))
        return cfg_fail(d, &n->at, key, "too many tags (at most %zu)",
                        sizeof(sc->tags) / sizeof(sc->tags[0]));
    for (const struct doc_node *e = n->head; e; e = e->next) {
        join(k, sizeof(k), key, e->key);
        const char *why = cfg_check_label(e->key);
        if (why)
            return cfg_fail(d, &e->key_at, k, "%s", why);
        if (e->kind != DOC_SCALAR || doc_is_null(e) || !*e->str)
            return cfg_fail(d, &e->at, k, "expected a tag value");
        int rc = cfg_check_string(d, e, k, false);
        if (rc)
            return rc;
        if ((why = cfg_check_label_value(e->str)))
            return cfg_fail(d, &e->at, k, "\"%s\" %s", e->str, why);
        sc->tags[sc->ntags].key = strdup(e->key);
        sc->tags[sc->ntags].value = strdup(e->str);
        sc->ntags++;
        if (!sc->tags[sc->ntags - 1].key || !sc->tags[sc->ntags - 1].value)
            return -ENOMEM;
    }
    return 0;
}

static int cvt_scenario(struct diag *d, const struct config *c, struct scenario *sc,
                        const struct doc_node *n, const char *key)
{
    char k[300], allowed_list[400];
    unsigned seen = 0;
    int64_t v;
    int rc;

    if (n->kind != DOC_MAP)
        return cfg_fail(d, &n->at, key, "expected a mapping (a scenario), got %s",
                        cfg_kind_name(n));
    const struct doc_node *ex = doc_map_get(n, "executor");
    if (!ex)
        return cfg_fail(d, &n->at, key, "missing key \"executor\"; one of: constant-vus, "
                        "ramping-vus, constant-arrival-rate, ramping-arrival-rate, "
                        "per-vu-iterations, shared-iterations");
    join(k, sizeof(k), key, "executor");
    int kind = -1;
    for (int i = 0; ex->kind == DOC_SCALAR && executor_names[i]; i++)
        if (!strcmp(ex->str, executor_names[i]))
            kind = i;
    if (kind < 0) {
        char q[128];
        return cfg_fail(d, &ex->at, k,
                        "%s is not an executor; one of: constant-vus, ramping-vus, "
                        "constant-arrival-rate, ramping-arrival-rate, per-vu-iterations, "
                        "shared-iterations (externally-controlled is not supported)",
                        cfg_quote(ex->kind == DOC_SCALAR ? ex->str : "?", false, q, sizeof(q)));
    }
    sc->executor = (enum executor_kind)kind;
    /* k6's defaults */
    sc->journey = SCENARIO_JOURNEYS;
    sc->vus = 1;
    sc->start_vus = 1;
    sc->iterations = 1;
    sc->time_unit = USEC_PER_SEC;
    sc->graceful_stop = DEFAULT_GRACEFUL_STOP;
    sc->graceful_ramp_down = DEFAULT_GRACEFUL_STOP;
    sc->max_duration = DEFAULT_MAX_DURATION;
    sc->max_vus = -1;

    for (const struct doc_node *e = n->head; e; e = e->next) {
        int ki = key_index(e->key);
        join(k, sizeof(k), key, e->key);
        if (ki < 0 || !((allowed[kind] | common) & B(ki))) {
            allowed_list[0] = '\0';
            for (size_t i = 0; i < NKEYS; i++)
                if ((allowed[kind] | common) & B(i))
                    snprintf(allowed_list + strlen(allowed_list),
                             sizeof(allowed_list) - strlen(allowed_list), "%s%s",
                             allowed_list[0] ? ", " : "", keys[i].name);
            return cfg_fail(d, &e->key_at, k, "%s \"%s\" for a %s scenario; allowed: %s",
                            ki < 0 ? "unknown key" : "no key", e->key, executor_names[kind],
                            allowed_list);
        }
        if (seen & B(ki))
            return cfg_fail(d, &e->key_at, k, "given twice (as %s and %s)", keys[ki].name,
                            keys[ki].k6);
        seen |= B(ki);
        switch (ki) {
        case 0:
            break;
        case 1: { /* journey; null: the default */
            if (doc_is_null(e))
                break;
            if (e->kind != DOC_SCALAR)
                return cfg_fail(d, &e->at, k, "expected a journey name");
            if (!strcmp(e->str, "health")) {
                sc->journey = SCENARIO_HEALTH;
                break;
            }
            sc->journey = -3;
            for (size_t i = 0; i < c->journeys.n; i++)
                if (!strcmp(c->journeys.j[i].name, e->str))
                    sc->journey = (int)i;
            if (sc->journey == -3) {
                char known[400] = "health";
                for (size_t i = 0; i < c->journeys.n; i++)
                    snprintf(known + strlen(known), sizeof(known) - strlen(known), ", %s",
                             c->journeys.j[i].name);
                return cfg_fail(d, &e->at, k, "no journey is called \"%s\"; known: %s",
                                e->str, known);
            }
            break;
        }
        case 2:
        case 3:
        case 6:
        case 10:
        case 11:
            if ((rc = cfg_parse_int(d, e, k, ki == 2 || ki == 6 ? 1 : 0,
                                    ki == 6 ? 100000000 : MAX_VUS, &v)))
                return rc;
            *(ki == 2   ? &sc->vus
              : ki == 3 ? &sc->start_vus
              : ki == 6 ? &sc->iterations
              : ki == 10 ? &sc->pre_allocated_vus
                         : &sc->max_vus) = (int)v;
            break;
        case 7:
        case 8:
            if ((rc = cfg_parse_int(d, e, k, ki == 7 ? 1 : 0, MAX_RATE, &v)))
                return rc;
            *(ki == 7 ? &sc->rate : &sc->start_rate) = v;
            break;
        case 4:
        case 5:
        case 9:
        case 13:
        case 14:
        case 15: {
            int64_t min = ki == 4 || ki == 5 ? USEC_PER_SEC / 1000 : ki == 9 ? MIN_RATE_UNIT : 0;
            int64_t *dst = ki == 4    ? &sc->duration
                           : ki == 5  ? &sc->max_duration
                           : ki == 9  ? &sc->time_unit
                           : ki == 13 ? &sc->start_time
                           : ki == 14 ? &sc->graceful_stop
                                      : &sc->graceful_ramp_down;
            if ((rc = cfg_parse_dur(d, e, k, min, UNITS_MAX_DURATION, dst)))
                return rc;
            break;
        }
        case 12:
            if ((rc = cvt_stages(d, sc, e, k, kind == EX_RAMPING_ARRIVAL_RATE)))
                return rc;
            break;
        case 16:
            if ((rc = cvt_tags(d, sc, e, k)))
                return rc;
            break;
        }
    }
    for (size_t i = 0; i < NKEYS; i++)
        if ((required[kind] & B(i)) && !(seen & B(i))) {
            join(k, sizeof(k), key, keys[i].name);
            return cfg_fail(d, &n->at, k, "missing; a %s scenario needs it",
                            executor_names[kind]);
        }
    if (sc->max_vus < 0)
        sc->max_vus = sc->pre_allocated_vus;
    if (ex_open(sc)) {
        join(k, sizeof(k), key, "max_vus");
        if (sc->max_vus < sc->pre_allocated_vus)
            return cfg_fail(d, &n->at, k, "%d is below pre_allocated_vus (%d)", sc->max_vus,
                            sc->pre_allocated_vus);
        if (sc->max_vus == 0)
            return cfg_fail(d, &n->at, k, "an arrival-rate scenario needs at least one VU "
                            "(pre_allocated_vus or max_vus)");
    }
    if (kind == EX_RAMPING_VUS && ex_slots(sc) == 0)
        return cfg_fail(d, &n->at, key, "every target is 0 and start_vus is 0: no VU would run");
    return 0;
}

/* ---- the k6 shortcuts --------------------------------------------------------- */

struct shortcut {
    enum layer layer;
    const char *text;  /* as given */
    const char *where; /* "--duration 30s", "env K6_DURATION" */
};

struct shortcuts {
    struct shortcut vus, duration, iterations, stages;
};

static void pick(struct shortcut *s, const char *cli, const char *cli_name, char *const *envp,
                 const char *env, char *buf, size_t n)
{
    const char *e = cfg_env_get(envp, env);
    if (cli) {
        snprintf(buf, n, "%s", cli_name);
        *s = (struct shortcut){L_CLI, cli, buf};
    } else if (e && *e) {
        snprintf(buf, n, "env %s", env);
        *s = (struct shortcut){L_ENV, e, buf};
    }
}

/* "30s:10,1m:20" (K6_STAGES) or one "30s:10" per --stage, into sc's stages. */
static int parse_stage_list(struct diag *d, struct scenario *sc, const struct shortcut *s,
                            const struct config_cli *cli)
{
    struct doc_origin at = {.name = s->where, .src = s->layer == L_CLI ? DOC_SRC_CLI : DOC_SRC_ENV};
    char item[128];
    size_t n = 0;
    const char *p = s->text;
    for (size_t arg = 0;; arg++) {
        if (s->layer == L_CLI) {
            if (arg == cli->nstages)
                break;
            p = cli->stages[arg];
        }
        while (*p) {
            size_t len = strcspn(p, ",");
            if (len >= sizeof(item) || n == CONFIG_MAX_STAGES)
                return cfg_fail(d, &at, "load.stages", "too many or too long stages");
            memcpy(item, p, len);
            item[len] = '\0';
            p += len + (p[len] == ',');
            char *colon = strchr(item, ':');
            char *end = NULL;
            long target = colon ? strtol(colon + 1, &end, 10) : -1;
            if (colon)
                *colon = '\0';
            if (!colon || !*(colon + 1) || *end || target < 0 || target > MAX_VUS ||
                units_parse_duration(item, &sc->stages[n].duration) < 0)
                return cfg_fail(d, &at, "load.stages",
                                "expected DURATION:TARGET stages like 30s:10 (comma-separated "
                                "in K6_STAGES)");
            sc->stages[n++].target = (int)target;
        }
        if (s->layer != L_CLI)
            break;
    }
    sc->nstages = n;
    if (!n || sched_duration(sc->stages, n) <= 0)
        return cfg_fail(d, &at, "load.stages", "no stage, or every stage lasts 0s");
    return 0;
}

static int one_scenario(struct config *c, struct scenario **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out || !((*out)->name = strdup("load"))) {
        free(*out);
        return -ENOMEM;
    }
    c->load.scenarios = *out;
    c->load.nscenarios = 1;
    (*out)->journey = SCENARIO_JOURNEYS;
    (*out)->time_unit = USEC_PER_SEC;
    return 0;
}

void cfg_scenario_clear(struct scenario *sc)
{
    free(sc->name);
    for (size_t i = 0; i < sc->ntags; i++) {
        free(sc->tags[i].key);
        free(sc->tags[i].value);
    }
    memset(sc, 0, sizeof(*sc));
}

/* k6's variables syncgate reads; any other K6_* is named in a warning, never dropped unseen. */
static int unknown_k6_vars(struct config *c, char *const *envp)
{
    static const char *const known[] = {"K6_VUS", "K6_DURATION", "K6_ITERATIONS", "K6_STAGES",
                                        "K6_TAGS", "K6_SUMMARY_TREND_STATS", "K6_NO_THRESHOLDS",
                                        NULL};
    char name[128];
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];
        size_t len = strcspn(e, "=");
        if (strncmp(e, "K6_", 3) || !strncmp(e, "K6_PROMETHEUS_RW_", 17) || !e[len + 1])
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(len < 100 ? len : 100), e);
        bool ok = false;
        for (size_t k = 0; known[k] && !ok; k++)
            ok = !strcmp(name, known[k]);
        if (!ok && add_warning(c, "%s is a k6 setting syncgate does not support: it has no "
                               "effect%s", name, "") < 0)
            return -ENOMEM;
    }
    return 0;
}

int cfg_convert_scenarios(struct diag *d, struct config *c, const struct doc_node *root,
                          const struct config_cli *cli, char *const *envp)
{
    const struct doc_node *load = doc_map_get(root, "load");
    const struct doc_node *scn = load ? doc_map_get(load, "scenarios") : NULL;
    const struct doc_node *stg = load ? doc_map_get(load, "stages") : NULL;
    struct shortcuts sh = {0};
    char b1[64], b2[64], b3[64], b4[64], k[200];
    int64_t v;
    int rc;

    for (size_t i = 0; i < c->load.nscenarios; i++)
        cfg_scenario_clear(&c->load.scenarios[i]);
    free(c->load.scenarios);
    c->load.scenarios = NULL;
    c->load.nscenarios = 0;
    c->load.scenarios_given = false;
    for (size_t i = 0; i < c->nwarnings; i++)
        free(c->warnings[i]);
    c->nwarnings = 0;
    if ((rc = unknown_k6_vars(c, envp)) < 0)
        return rc;

    static const struct config_cli none;
    if (!cli)
        cli = &none;
    pick(&sh.vus, cli->vus, "--vus", envp, "K6_VUS", b1, sizeof(b1));
    pick(&sh.duration, cli->duration, "--duration", envp, "K6_DURATION", b2, sizeof(b2));
    pick(&sh.iterations, cli->iterations, "--iterations", envp, "K6_ITERATIONS", b3, sizeof(b3));
    pick(&sh.stages, cli->nstages ? "" : NULL, "--stage", envp, "K6_STAGES", b4, sizeof(b4));

    /* each execution option and its layer; the default stages belong to no layer */
    enum layer l_scn = scn && scn->kind == DOC_MAP && scn->n ? layer_of(scn) : L_NONE;
    enum layer l_stg = layer_of(stg);
    if (sh.stages.layer == L_ENV && l_stg == L_ENV)
        return cfg_fail(d, &stg->at, "load.stages",
                        "both STAGES and K6_STAGES are set; set one");
    enum layer top = l_scn > l_stg ? l_scn : l_stg;
    const struct shortcut *opts[] = {&sh.duration, &sh.iterations, &sh.stages};
    for (size_t i = 0; i < 3; i++)
        if (opts[i]->layer > top)
            top = opts[i]->layer;

    /* within the winning layer, two execution options are an error (k6's rule) */
    const char *set_here[4];
    size_t nset = 0;
    if (l_scn == top && top)
        set_here[nset++] = "load.scenarios";
    if (l_stg == top && top)
        set_here[nset++] = sh.stages.layer == L_ENV ? "K6_STAGES" : "load.stages";
    if (sh.duration.layer == top && top)
        set_here[nset++] = sh.duration.where;
    if (sh.iterations.layer == top && top)
        set_here[nset++] = sh.iterations.where;
    if (sh.stages.layer == top && top && l_stg != top)
        set_here[nset++] = sh.stages.where;
    if (nset > 1) {
        struct doc_origin at = {.name = layer_names[top],
                                .src = top == L_PROFILE ? DOC_SRC_FILE : DOC_SRC_CLI};
        const struct doc_node *n = l_scn == top ? scn : l_stg == top ? stg : NULL;
        return cfg_fail(d, n ? &n->at : &at, "load",
                        "using %s and %s together is not allowed: both say what load runs; "
                        "keep one",
                        set_here[0], set_here[1]);
    }
    /* a lower layer that said what load runs is replaced, as k6 does: say so */
    if (top > L_PROFILE && l_scn && l_scn < top &&
        (rc = add_warning(c, "%s overrides the profile's load.scenarios entirely", set_here[0],
                          NULL)) < 0)
        return rc;
    if (top > l_stg && l_stg > L_NONE && l_stg != top &&
        (rc = add_warning(c, "%s overrides load.stages", set_here[0], NULL)) < 0)
        return rc;

    int vus = -1;
    if (sh.vus.layer) {
        struct doc_origin at = {.name = sh.vus.where,
                                .src = sh.vus.layer == L_CLI ? DOC_SRC_CLI : DOC_SRC_ENV};
        char *end;
        long n = strtol(sh.vus.text, &end, 10);
        if (!*sh.vus.text || *end || n < 0 || n > MAX_VUS)
            return cfg_fail(d, &at, "vus", "expected a number of VUs from 0 to %d, got \"%.32s\"",
                            MAX_VUS, sh.vus.text);
        vus = (int)n;
    }
    struct scenario *sc;

    if (sh.iterations.layer == top && top) {
        struct doc_origin at = {.name = sh.iterations.where,
                                .src = top == L_CLI ? DOC_SRC_CLI : DOC_SRC_ENV};
        char *end;
        long n = strtol(sh.iterations.text, &end, 10);
        if (!*sh.iterations.text || *end || n < 1 || n > 100000000)
            return cfg_fail(d, &at, "iterations", "expected a number of iterations, got \"%.32s\"",
                            sh.iterations.text);
        if ((rc = one_scenario(c, &sc)))
            return rc;
        sc->executor = EX_SHARED_ITERATIONS;
        sc->iterations = (int)n;
        sc->vus = vus > 0 ? vus : 1;
        sc->max_duration = DEFAULT_MAX_DURATION;
        if (sh.duration.layer && units_parse_duration(sh.duration.text, &v) == 0 && v > 0)
            sc->max_duration = v;
    } else if (sh.duration.layer == top && top) {
        struct doc_origin at = {.name = sh.duration.where,
                                .src = top == L_CLI ? DOC_SRC_CLI : DOC_SRC_ENV};
        if (units_parse_duration(sh.duration.text, &v) < 0 || v <= 0)
            return cfg_fail(d, &at, "duration", "expected a duration above 0 like 30s, got "
                            "\"%.32s\"", sh.duration.text);
        if ((rc = one_scenario(c, &sc)))
            return rc;
        sc->executor = EX_CONSTANT_VUS;
        sc->duration = v;
        sc->vus = vus > 0 ? vus : 1;
    } else if (sh.stages.layer == top && top && l_stg != top) {
        if ((rc = one_scenario(c, &sc)) || (rc = parse_stage_list(d, sc, &sh.stages, cli)))
            return rc;
        sc->executor = EX_RAMPING_VUS;
        sc->start_vus = vus >= 0 ? vus : c->load.start_vus;
        sc->graceful_ramp_down = c->load.graceful_ramp_down;
    } else if (l_scn == top && top) {
        if (scn->n > CONFIG_MAX_SCENARIOS)
            return cfg_fail(d, &scn->at, "load.scenarios", "too many scenarios (at most %d)",
                            CONFIG_MAX_SCENARIOS);
        if (vus >= 0 && (rc = add_warning(c, "%s is not used: load.scenarios say how many VUs "
                                          "each scenario runs", sh.vus.where, NULL)) < 0)
            return rc;
        if (!(c->load.scenarios = calloc(scn->n, sizeof(*c->load.scenarios))))
            return -ENOMEM;
        for (const struct doc_node *e = scn->head; e; e = e->next) {
            struct scenario *s = &c->load.scenarios[c->load.nscenarios++];
            join(k, sizeof(k), "load.scenarios", e->key);
            if (!scenario_name_ok(e->key) || !strcmp(e->key, "smoke"))
                return cfg_fail(d, &e->key_at, k,
                                "\"%s\" is not a scenario name: letters, digits, '_' and '-', "
                                "and not \"smoke\" (the smoke phase's)",
                                e->key);
            if (!(s->name = strdup(e->key)))
                return -ENOMEM;
            if ((rc = cvt_scenario(d, c, s, e, k)))
                return rc;
        }
        c->load.scenarios_given = true;
        return 0;
    } else {
        /* the load.stages shorthand: syncgate's ramping VUs, ending with its stages */
        if ((rc = one_scenario(c, &sc)))
            return rc;
        sc->executor = EX_RAMPING_VUS;
        memcpy(sc->stages, c->load.stages, c->load.nstages * sizeof(struct stage));
        sc->nstages = c->load.nstages;
        sc->start_vus = vus >= 0 ? vus : c->load.start_vus;
        sc->graceful_ramp_down = c->load.graceful_ramp_down;
        sc->graceful_stop = 0;
        return 0;
    }
    c->load.scenarios_given = true;
    /* a shortcut's scenario ends with its length, as the stages shorthand does */
    sc->graceful_stop = 0;
    sc->graceful_ramp_down = c->load.graceful_ramp_down;
    return 0;
}
