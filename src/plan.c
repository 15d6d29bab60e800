/* plan: a phase's journeys with their base URLs, implicit health journeys included. */
#include "syncgate/plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/units.h"

size_t plan_nsteps(const struct plan *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->j[i].j->nsteps;
    return n;
}

void plan_tags(const struct plan_journey *pj, const struct plan_step *ps, const char *scenario,
               struct tagset *http, struct tagset *check)
{
    const char *group = pj->j->group;
    memset(http, 0, sizeof(*http));
    memset(check, 0, sizeof(*check));
    tagset_set(http, "name", ps->s->name);
    tagset_set(http, "method", ps->s->method);
    tagset_set(http, "scenario", scenario);
    tagset_set(check, "name", ps->s->name);
    tagset_set(check, "scenario", scenario);
    if (*group) {
        tagset_set(http, "group", group);
        tagset_set(check, "group", group);
        if (ps->service)
            tagset_set(http, "service", ps->service);
    }
}

void plan_clear(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        for (size_t k = 0; p->j[i].steps && k < p->j[i].j->nsteps; k++)
            free(p->j[i].steps[k].url);
        free(p->j[i].steps);
    }
    free(p->j);
    free(p->weights);
    for (size_t i = 0; i < p->nimplicit; i++)
        journey_clear(&p->implicit[i]);
    free(p->implicit);
    for (size_t i = 0; i < p->nbases; i++)
        free(p->bases[i]);
    free(p->bases);
    memset(p, 0, sizeof(*p));
}

/* scheme://authority of url (configuration checked it is one), as a new string. */
static char *origin(const char *url)
{
    const char *auth = strstr(url, "://");
    size_t len = auth ? (size_t)(auth + 3 - url) + strcspn(auth + 3, "/?#") : strlen(url);
    return strndup(url, len);
}

/* A one-step journey requesting path (literal) with the checks health requests had. */
static int health_journey(struct journey *j, const char *name, const char *method,
                          const char *path, int status, int64_t max_latency)
{
    char lat[32];
    memset(j, 0, sizeof(*j));
    j->weight = 1;
    j->think_time = -1;
    j->name = strdup(name);
    j->group = strdup("");
    j->steps = calloc(1, sizeof(*j->steps));
    if (!j->name || !j->group || !j->steps)
        return -ENOMEM;
    j->nsteps = 1;
    struct step *s = j->steps;
    s->service = -1;
    s->nstatus = 1;
    s->status[0] = status;
    s->max_latency = max_latency;
    s->name = strdup(name);
    s->method = strdup(method);
    if (asprintf(&s->status_check, "%s status %d", name, status) < 0)
        s->status_check = NULL;
    if (max_latency > 0 &&
        asprintf(&s->latency_check, "%s latency < %s", name,
                 units_format_duration(max_latency, lat, sizeof(lat))) < 0)
        return -ENOMEM;
    if (!s->name || !s->method || !s->status_check)
        return -ENOMEM;
    return tpl_literal(&s->path, path);
}

static int add_journey(struct plan *p, const struct journey *j, const struct config *c,
                       const char *gateway_base)
{
    struct plan_journey *pj = &p->j[p->n];
    pj->j = j;
    pj->think_time = j->think_time >= 0 ? j->think_time : c->load.think_time;
    pj->steps = calloc(j->nsteps ? j->nsteps : 1, sizeof(*pj->steps));
    if (!pj->steps)
        return -ENOMEM;
    p->weights[p->n] = j->weight;
    p->n++;
    for (size_t k = 0; k < j->nsteps; k++) {
        const struct step *s = &j->steps[k];
        struct plan_step *ps = &pj->steps[k];
        ps->s = s;
        if (s->service < 0)
            ps->base = gateway_base ? gateway_base : "";
        else if (p->phase == PLAN_SMOKE)
            ps->base = gateway_base;
        else
            ps->base = p->bases[s->service];
        if (!ps->base)
            return -ENXIO; /* load, and the step's service has no url */
        if (s->service >= 0)
            ps->service = c->services[s->service].name;
        if (!s->path.has_vars) {
            size_t bl = strlen(ps->base), pl = s->path.src_len;
            if (!(ps->url = malloc(bl + pl + 1)))
                return -ENOMEM;
            memcpy(ps->url, ps->base, bl);
            memcpy(ps->url + bl, s->path.src, pl + 1);
        }
    }
    return 0;
}

int plan_build(struct plan *p, const struct config *c, enum plan_phase phase, int journey,
               char *err, size_t errlen)
{
    const struct journey_set *js = &c->journeys;
    size_t cap = js->n + c->nservices + 1;
    int rc = -ENOMEM;

    memset(p, 0, sizeof(*p));
    p->phase = phase;
    p->js = js;
    p->j = calloc(cap, sizeof(*p->j));
    p->weights = calloc(cap, sizeof(*p->weights));
    p->implicit = calloc(c->nservices + 1, sizeof(*p->implicit));
    p->bases = calloc(c->nservices ? c->nservices : 1, sizeof(*p->bases));
    if (!p->j || !p->weights || !p->implicit || !p->bases)
        goto fail;
    for (size_t i = 0; i < c->nservices; i++) {
        p->nbases++;
        if (c->services[i].url && !(p->bases[i] = origin(c->services[i].url)))
            goto fail;
    }

    if (phase == PLAN_SMOKE) {
        if (c->gateway.ready_path) {
            struct journey *h = &p->implicit[p->nimplicit++];
            if ((rc = health_journey(h, "gateway", "GET", c->gateway.ready_path,
                                     c->gateway.ready_status, USEC_PER_SEC)) < 0 ||
                (rc = add_journey(p, h, c, c->gateway.url)) < 0)
                goto fail;
        }
        for (size_t i = 0; i < c->nservices; i++) {
            const struct service *s = &c->services[i];
            if (!s->smoke_path)
                continue;
            struct journey *h = &p->implicit[p->nimplicit++];
            if ((rc = health_journey(h, s->name, s->method, s->smoke_path, s->expect_status,
                                     s->max_latency)) < 0 ||
                (rc = add_journey(p, h, c, c->gateway.url)) < 0)
                goto fail;
        }
        p->nhealth = p->n;
        for (size_t i = 0; i < js->n; i++)
            if (js->j[i].smoke && (rc = add_journey(p, &js->j[i], c, c->gateway.url)) < 0)
                goto fail;
    } else if (journey >= 0 && (size_t)journey < js->n) {
        if ((rc = add_journey(p, &js->j[journey], c, NULL)) < 0)
            goto fail;
    } else if (js->n && journey != SCENARIO_HEALTH) {
        for (size_t i = 0; i < js->n; i++)
            if ((rc = add_journey(p, &js->j[i], c, NULL)) < 0)
                goto fail;
    } else {
        for (size_t i = 0; i < c->nservices; i++) {
            const struct service *s = &c->services[i];
            if (!s->url)
                continue;
            struct journey *h = &p->implicit[p->nimplicit++];
            if ((rc = health_journey(h, s->name, s->method, s->url, s->expect_status, 0)) < 0 ||
                (rc = add_journey(p, h, c, NULL)) < 0)
                goto fail;
        }
    }
    for (size_t i = 0; i < p->n; i++)
        p->uses_auth |= p->j[i].j->uses_auth;
    if (phase == PLAN_LOAD && p->n == 0) {
        snprintf(err, errlen, "nothing to load: no journey and no service with a url");
        plan_clear(p);
        return -EINVAL;
    }
    return 0;
fail:
    if (rc == -ENXIO) {
        snprintf(err, errlen, "a journey step's service has no url to load");
        rc = -EINVAL;
    }
    plan_clear(p);
    return rc == 0 ? -ENOMEM : rc;
}
