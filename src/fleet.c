/* fleet: what a distributed run's instances share. See fleet.h. */
#include "syncgate/fleet.h"

#include <string.h>

const char *fleet_state_name(enum fleet_state s)
{
    static const char *const names[] = {"waiting", "go", "stop", "done"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* FNV-1a, 64 bits, over bytes and strings (a string's NUL ends it: "ab","c" != "a","bc"). */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(1099511628211);
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

static uint64_t fnv_i64(uint64_t h, int64_t v)
{
    return fnv(h, &v, sizeof(v));
}

uint64_t fleet_digest(const struct config *c)
{
    uint64_t h = UINT64_C(14695981039346656037);
    h = fnv_i64(h, c->scaleout.instances);
    h = fnv_str(h, c->environment);
    h = fnv_str(h, c->scaleout.testid_generated ? NULL : c->testid);
    h = fnv_i64(h, (int64_t)c->load.nscenarios);
    for (size_t i = 0; i < c->load.nscenarios; i++) {
        const struct scenario *s = &c->load.scenarios[i];
        h = fnv_str(h, s->name);
        int64_t v[] = {s->executor, s->journey, s->vus, s->start_vus, s->iterations,
                       s->pre_allocated_vus, s->max_vus, s->duration, s->max_duration,
                       s->start_time, s->graceful_stop, s->graceful_ramp_down, s->rate,
                       s->start_rate, s->time_unit, (int64_t)s->nstages};
        for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
            h = fnv_i64(h, v[k]);
        for (size_t k = 0; k < s->nstages; k++) {
            h = fnv_i64(h, s->stages[k].duration);
            h = fnv_i64(h, s->stages[k].target);
        }
    }
    h = fnv_i64(h, (int64_t)c->journeys.n);
    for (size_t i = 0; i < c->journeys.n; i++)
        h = fnv_str(h, c->journeys.j[i].name);
    return h;
}

void fleet_clock_init(struct fleet_clock *c)
{
    memset(c, 0, sizeof(*c));
    c->rtt = -1;
}

bool fleet_clock_sample(struct fleet_clock *c, int64_t t0, int64_t remote, int64_t t1)
{
    if (t1 < t0)
        return false;
    c->samples++;
    int64_t rtt = t1 - t0;
    if (c->rtt >= 0 && rtt >= c->rtt)
        return false;
    c->rtt = rtt;
    c->offset = remote - (t0 + rtt / 2);
    return true;
}

int64_t fleet_clock_local(const struct fleet_clock *c, int64_t remote)
{
    return remote - c->offset;
}
