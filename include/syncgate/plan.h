/*
 * plan: one phase's journeys, ready to run.
 *
 * Smoke runs, through gateway.url, the implicit health journeys (the
 * gateway's ready path and every service's smoke_path, each a one-step
 * journey) on every iteration, and once each the profile's journeys marked
 * smoke: true. Load runs the profile's journeys, each step at the origin of
 * its service's url, picked by weight; a profile without journeys loads the
 * implicit health journeys (every service's url) in turn, as syncgate always
 * did. A plan borrows the configuration, which must outlive it.
 * Pure module: no I/O.
 */
#ifndef SYNCGATE_PLAN_H
#define SYNCGATE_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "syncgate/config.h"
#include "syncgate/journey.h"
#include "syncgate/metrics.h"

struct plan_step {
    const struct step *s;
    const char *service; /* the service's name, or NULL (implicit journeys, the gateway) */
    const char *base;    /* prepended to the expanded path ("" when the path is a full URL) */
    char *url;           /* base + path when the path has no placeholder, else NULL */
};

struct plan_journey {
    const struct journey *j;
    struct plan_step *steps;
    int64_t think_time; /* usec, resolved against the phase's */
};

enum plan_phase { PLAN_SMOKE, PLAN_LOAD };

struct plan {
    enum plan_phase phase;
    size_t n;
    struct plan_journey *j;
    int *weights;                /* n, for journey_pick */
    size_t nhealth;              /* smoke: the first nhealth journeys are the health checks */
    const struct journey_set *js; /* data, auth, env values */
    bool uses_auth;
    /* owned storage */
    struct journey *implicit;
    size_t nimplicit;
    char **bases;
    size_t nbases;
};

/*
 * Build the plan of phase from c; for load, journey picks what iterations run
 * (a scenario's journey: an index into c's journeys, SCENARIO_JOURNEYS or
 * SCENARIO_HEALTH; smoke ignores it). Returns 0, -ENOMEM, or -EINVAL with why
 * in err (load with nothing to request, a step whose service has no url).
 * plan_clear() frees a built or failed plan.
 */
int plan_build(struct plan *p, const struct config *c, enum plan_phase phase, int journey,
               char *err, size_t errlen);
void plan_clear(struct plan *p);

/*
 * The tags of a step's requests (name, method, scenario; group and service for
 * named journeys) and of its checks (name, scenario, group; the caller sets
 * check). Strings are borrowed from the plan and scenario.
 */
void plan_tags(const struct plan_journey *pj, const struct plan_step *ps, const char *scenario,
               struct tagset *http, struct tagset *check);

/* Total steps over all journeys (for per-step caches). */
size_t plan_nsteps(const struct plan *p);

#endif
