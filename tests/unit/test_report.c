/* Unit tests for report_errors(): failed requests counted by kind. */
#include <stdio.h>
#include <string.h>

#include "syncgate/http.h"
#include "syncgate/report.h"
#include "tap.h"

/* Record n requests the way http_record does. */
static void record(struct metrics *m, const char *name, int status, enum http_error err,
                   int expect, int n)
{
    struct tagset base = {0};
    struct http_result r = {.status = status, .error = err};
    tagset_set(&base, "name", name);
    tagset_set(&base, "method", "GET");
    tagset_set(&base, "scenario", "load");
    for (int i = 0; i < n; i++)
        http_record(m, &base, &r, expect);
}

static long find(const struct report_error *e, size_t n, const char *kind)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(e[i].kind, kind))
            return (long)e[i].count;
    return -1;
}

static void test_kinds(void)
{
    struct metrics *m = metrics_new();
    struct report_error e[REPORT_MAX_ERRORS];

    ok(report_errors(m, e, REPORT_MAX_ERRORS) == 0, "no requests: no errors");
    record(m, "a", 200, HTTP_ERR_NONE, 200, 7);
    ok(report_errors(m, e, REPORT_MAX_ERRORS) == 0, "expected responses are not errors");

    record(m, "a", 503, HTTP_ERR_NONE, 200, 3);
    record(m, "b", 503, HTTP_ERR_NONE, 200, 2); /* another series, same status */
    record(m, "a", 429, HTTP_ERR_NONE, 200, 1);
    record(m, "a", 0, HTTP_ERR_TIMEOUT, 200, 4);
    record(m, "b", 0, HTTP_ERR_RESET, 200, 5);
    record(m, "a", 200, HTTP_ERR_PROTOCOL, 200, 6); /* a status, then a broken body */
    record(m, "b", 0, HTTP_ERR_DNS, 200, 1);
    size_t n = report_errors(m, e, REPORT_MAX_ERRORS);
    ok(n == 6, "six kinds (got %zu)", n);
    ok(find(e, n, "status_503") == 5, "503s of both services add up");
    ok(find(e, n, "status_429") == 1, "429 counted");
    ok(find(e, n, "timeout") == 4 && find(e, n, "reset") == 5 && find(e, n, "dns") == 1,
       "transport failures under their kind");
    ok(find(e, n, "protocol") == 6 && find(e, n, "status_200") == -1,
       "a transport failure after a status counts as the failure, not the status");
    ok(n == 6 && !strcmp(e[0].kind, "dns") && !strcmp(e[1].kind, "reset") &&
           !strcmp(e[2].kind, "timeout") && !strcmp(e[3].kind, "protocol") &&
           !strcmp(e[4].kind, "status_429") && !strcmp(e[5].kind, "status_503"),
       "kinds in http.h order, then statuses ascending");
    ok(report_errors(m, e, 2) == 2 && !strcmp(e[1].kind, "reset"), "max is respected");

    /* expect_status 204: a 200 is a failure */
    record(m, "c", 200, HTTP_ERR_NONE, 204, 2);
    n = report_errors(m, e, REPORT_MAX_ERRORS);
    ok(find(e, n, "status_200") == 2, "an unexpected 200 is status_200");
    metrics_free(m);
}

static void test_many_statuses(void)
{
    struct metrics *m = metrics_new();
    struct report_error e[REPORT_MAX_ERRORS + 8];
    for (int s = 599; s >= 500; s--)
        record(m, "a", s, HTTP_ERR_NONE, 200, 1);
    size_t n = report_errors(m, e, REPORT_MAX_ERRORS + 8);
    ok(n == REPORT_MAX_ERRORS, "a target inventing statuses is capped (%zu)", n);
    int sorted = 1;
    for (size_t i = 1; i < n; i++)
        sorted &= strcmp(e[i - 1].kind, e[i].kind) < 0;
    ok(sorted, "capped statuses still ascending");
    metrics_free(m);
}

int main(void)
{
    test_kinds();
    test_many_statuses();
    return tap_done();
}
