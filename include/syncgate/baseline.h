/*
 * baseline: the values that baseline thresholds ("p(95) <= baseline * 1.2")
 * compare with, read back from Prometheus before the run starts.
 *
 * For each baseline threshold of the phases that will run, the newest
 * baseline.runs earlier runs of the same environment, test type, scenario
 * and metrics.labels that may serve as history (history.h says which) and
 * that recorded the same statistic are found through Prometheus' HTTP API
 * (/api/v1/query), and their values are aggregated (median, mean, min or
 * max). With baseline.pin_testid, that one run is the baseline instead.
 *
 * The source is baseline.source, else the remote-write server's query API
 * (its URL without "/api/v1/write"), which then also gets the remote-write
 * credentials, headers and TLS settings. Every query of a run shares one
 * time budget (baseline.timeout); a transport failure ends the fetch, and
 * every baseline not read yet fails with the same reason. Answers are cut
 * at BASELINE_MAX_BODY bytes.
 *
 * What is found is returned, never logged (the program logs it).
 */
#ifndef SYNCGATE_BASELINE_H
#define SYNCGATE_BASELINE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "syncgate/config.h"
#include "syncgate/threshold.h"

#define BASELINE_MAX_BODY (1024 * 1024)

enum baseline_status {
    BASELINE_FOUND,   /* value holds the aggregate of nruns runs */
    BASELINE_MISSING, /* fewer than baseline.min_runs runs: baseline.missing decides */
    BASELINE_FAILED,  /* the query failed, or the pinned run has no such value: error says */
};

/* One earlier run that went into a baseline. */
struct baseline_run {
    char *testid;
    double value;    /* its value of the statistic (threshold units) */
    double finished; /* Unix time (s) it finished */
};

struct baseline {
    const struct threshold *t; /* the threshold it serves (borrowed from the config) */
    const char *scenario;      /* "smoke" or "load" */
    enum baseline_status status;
    double value;              /* the aggregate; NAN unless FOUND */
    size_t nruns;              /* runs found, also when MISSING */
    struct baseline_run *runs; /* newest first */
    char error[256];           /* FAILED: why, one line, no secrets */
};

struct baseline_set {
    size_t n;
    struct baseline items[2 * CONFIG_MAX_THRESHOLDS];
    char source[256]; /* the query API base as logs may show it; "" when there is none */
    int queries;      /* HTTP requests made */
};

/*
 * Read the baselines of every baseline threshold of the smoke (when smoke)
 * and load (when load) thresholds of c. Always fills set (a threshold whose
 * baseline could not be read gets BASELINE_FAILED and why); set->n is 0 when
 * no threshold asks for one, and nothing is sent then. Stops early, failing
 * what is left, once *stop is nonzero (may be NULL). Needs
 * curl_global_init(). Returns 0 or -ENOMEM. Free with baseline_set_clear.
 */
int baseline_fetch(const struct config *c, bool smoke, bool load, volatile sig_atomic_t *stop,
                   struct baseline_set *set);

/* Free what baseline_fetch allocated and zero set; safe on a zeroed set. */
void baseline_set_clear(struct baseline_set *set);

/* The baseline read for threshold t, or NULL. */
const struct baseline *baseline_find(const struct baseline_set *set, const struct threshold *t);

#endif
