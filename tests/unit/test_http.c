/* Unit tests for http.c's pure parts: head tracking, status labels, timeouts. */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "syncgate/http.h"
#include "tap.h"

static bool feed(const char *const *lines)
{
    bool done = false;
    for (; *lines; lines++)
        http_head_line(&done, *lines, strlen(*lines));
    return done;
}

static void test_head(void)
{
    ok(feed((const char *const[]){"HTTP/1.1 200 OK\r\n", "Content-Length: 0\r\n", "\r\n", NULL}),
       "a head ends at its blank line");
    ok(!feed((const char *const[]){"HTTP/1.1 200 OK\r\n", NULL}),
       "a status line alone is no head");
    ok(!feed((const char *const[]){"HTTP/1.1 200 OK\r\n", "Server: x\r\n", NULL}),
       "headers without the blank line are no head");
    ok(feed((const char *const[]){"HTTP/1.1 200 OK\n", "Server: x\n", "\n", NULL}),
       "bare LF line ends too");
    ok(!feed((const char *const[]){"HTTP/1.1 100 Continue\r\n", "\r\n", "HTTP/1.1 200 OK\r\n",
                                   NULL}),
       "an interim 100 head does not count for the final one");
    ok(feed((const char *const[]){"HTTP/1.1 100 Continue\r\n", "\r\n", "HTTP/1.1 200 OK\r\n",
                                  "\r\n", NULL}),
       "the final head after an interim one");
    ok(feed((const char *const[]){"HTTP/1.1 200 OK\r\n", "\r\n", "Trailer: x\r\n", "\r\n", NULL}),
       "trailers after a chunked body keep it whole");
    ok(!feed((const char *const[]){NULL}), "nothing received: no head");
}

static const char *utoa_test(int v, char *buf)
{
    static char own[12];
    (void)buf;
    snprintf(own, sizeof(own), "%d", v);
    return own;
}

static void test_status_labels(void)
{
    struct http_statuses st = {0};
    char b[12];
    ok(!strcmp(http_status_label(&st, 0, false, b, sizeof(b)), "0"), "no response is 0");
    ok(!strcmp(http_status_label(&st, 200, true, b, sizeof(b)), "200"), "the expected status");
    ok(!strcmp(http_status_label(&st, 99, false, b, sizeof(b)), "invalid") &&
           !strcmp(http_status_label(&st, 600, false, b, sizeof(b)), "invalid") &&
           !strcmp(http_status_label(&st, 999, false, b, sizeof(b)), "invalid"),
       "outside 100..599: invalid");
    int exact = 1;
    for (int s = 500; s < 500 + HTTP_SHAPE_STATUSES; s++)
        exact &= !strcmp(http_status_label(&st, s, false, b, sizeof(b)), utoa_test(s, b));
    ok(exact, "the first %d other statuses keep their number", HTTP_SHAPE_STATUSES);
    ok(!strcmp(http_status_label(&st, 404, false, b, sizeof(b)), "4xx") &&
           !strcmp(http_status_label(&st, 302, false, b, sizeof(b)), "3xx") &&
           !strcmp(http_status_label(&st, 101, false, b, sizeof(b)), "1xx"),
       "later ones by class");
    ok(!strcmp(http_status_label(&st, 503, false, b, sizeof(b)), "503"),
       "a status that got its number keeps it");
    ok(!strcmp(http_status_label(&st, 200, true, b, sizeof(b)), "200") &&
           !strcmp(http_status_label(&st, 204, true, b, sizeof(b)), "204"),
       "the expected status keeps its number even with the table full");
}

static void test_timeout_ms(void)
{
    ok(http_timeout_ms(1) == 1 && http_timeout_ms(500) == 1 && http_timeout_ms(999) == 1,
       "under a millisecond: 1 ms, never 0 (libcurl's 'no timeout')");
    ok(http_timeout_ms(0) == 1, "0 usec: 1 ms as well");
    ok(http_timeout_ms(1000) == 1 && http_timeout_ms(1001) == 2 && http_timeout_ms(1500) == 2,
       "rounded up");
    ok(http_timeout_ms(10000000) == 10000, "10 s is 10000 ms");
    ok(http_timeout_ms(INT64_MAX) == (INT64_MAX / 1000 + 1 > LONG_MAX ? LONG_MAX
                                                                      : INT64_MAX / 1000 + 1),
       "huge values do not wrap");
}

int main(void)
{
    test_head();
    test_status_labels();
    test_timeout_ms();
    return tap_done();
}
