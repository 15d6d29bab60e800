/* Unit tests for fleet: what instances must agree on (the digest) and the clock offset
 * taken from request round trips. */
#include <stdlib.h>
#include <string.h>

#include "syncgate/config.h"
#include "syncgate/fleet.h"
#include "tap.h"

static const char profile[] = "environment: staging\n"
                              "services:\n"
                              "  - {name: svc, url: \"http://127.0.0.1:1/health\"}\n"
                              "load:\n"
                              "  scenarios:\n"
                              "    a: {executor: ramping-vus, stages: [{duration: 10s, target: 8}]}\n"
                              "    b: {executor: constant-arrival-rate, rate: 50, duration: 5s, "
                              "pre_allocated_vus: 4}\n";

static uint64_t digest_of(const char *text, int index, int instances, const char *instance)
{
    struct config c;
    struct diag d;
    if (config_init(&c) < 0 || config_apply_profile(&c, text, strlen(text), "t.yaml", &d) < 0)
        return 0;
    c.scaleout.index = index;
    c.scaleout.instances = instances;
    c.scaleout.testid_generated = true;
    free(c.instance);
    c.instance = strdup(instance);
    uint64_t h = fleet_digest(&c);
    config_clear(&c);
    return h;
}

static void test_digest(void)
{
    uint64_t base = digest_of(profile, 0, 4, "pod-0");
    ok(base != 0 && base == digest_of(profile, 3, 4, "pod-3"),
       "digest: every instance of one run agrees, whatever its index and instance label");
    char *other = strdup(profile);
    *strstr(other, "target: 8") = '\0';
    char buf[1024];
    snprintf(buf, sizeof(buf), "%starget: 9}]}\n    b: {executor: constant-arrival-rate, rate: "
             "50, duration: 5s, pre_allocated_vus: 4}\n", other);
    uint64_t h_stage = digest_of(buf, 1, 4, "pod-1");
    ok(h_stage && h_stage != base, "digest: another stage target differs");
    snprintf(buf, sizeof(buf), "%s", profile);
    *strstr(buf, "rate: 50") = '\0';
    strcat(buf, "rate: 51, duration: 5s, pre_allocated_vus: 4}\n");
    uint64_t h_rate = digest_of(buf, 1, 4, "pod-1");
    ok(h_rate && h_rate != base, "digest: another arrival rate differs");
    uint64_t h_count = digest_of(profile, 1, 3, "pod-1");
    ok(h_count && h_count != base, "digest: another instance count differs");
    snprintf(buf, sizeof(buf), "%s", profile);
    memcpy(strstr(buf, "staging"), "stagin2", 7);
    uint64_t h_env = digest_of(buf, 1, 4, "pod-1");
    ok(h_env && h_env != base, "digest: another environment differs");
    free(other);
}

static void test_clock(void)
{
    struct fleet_clock c;
    fleet_clock_init(&c);
    ok(c.rtt == -1 && c.samples == 0, "clock: nothing measured at first");
    /* the coordinator's clock is 1,000,000 us ahead; one-way delays 300 and 300 */
    ok(fleet_clock_sample(&c, 5000, 1005300, 5600) && c.offset == 1000000 && c.rtt == 600,
       "clock: a symmetric exchange gives the offset exactly");
    /* a slower exchange (queued answer: 300 out, 2000 back) is not kept */
    ok(!fleet_clock_sample(&c, 9000, 1009300, 11300) && c.offset == 1000000,
       "clock: a longer round trip does not replace a shorter one");
    /* a faster, lopsided one (50 out, 150 back) is kept: off by half the difference */
    ok(fleet_clock_sample(&c, 20000, 1020050, 20200) && c.rtt == 200 &&
           llabs(c.offset - 1000000) <= 100,
       "clock: the shortest round trip wins, within half of it (%lld)", (long long)c.offset);
    ok(!fleet_clock_sample(&c, 30000, 1, 29999) && c.samples == 3,
       "clock: an exchange that ends before it starts is ignored");
    ok(fleet_clock_local(&c, 1000000 + 777777) - 777777 <= 100 &&
           fleet_clock_local(&c, 1000000 + 777777) - 777777 >= -100,
       "clock: the coordinator's T0 on the local clock");
    ok(!strcmp(fleet_state_name(FLEET_GO), "go") && !strcmp(fleet_state_name(FLEET_DONE), "done"),
       "states have names");
}

int main(void)
{
    test_digest();
    test_clock();
    return tap_done();
}
