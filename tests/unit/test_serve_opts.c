/* Unit tests for serve_opts: listen addresses, options over environment, defaults, errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "syncgate/serve.h"
#include "syncgate/units.h"
#include "tap.h"

static int parse(char **argv, char *const *envp, struct serve_opts *o, char *err)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return serve_parse_args(argc, argv, envp, o, err, 300);
}

static void test_listen(void)
{
    struct sockaddr_storage ss;
    size_t len;
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;

    ok(serve_parse_listen("0.0.0.0:3007", &ss, &len) == 0 && a4->sin_family == AF_INET &&
           ntohs(a4->sin_port) == 3007 && a4->sin_addr.s_addr == htonl(INADDR_ANY) &&
           len == sizeof(*a4),
       "0.0.0.0:3007");
    ok(serve_parse_listen(":3007", &ss, &len) == 0 && a4->sin_addr.s_addr == htonl(INADDR_ANY),
       ":3007 is every interface");
    ok(serve_parse_listen("127.0.0.1:0", &ss, &len) == 0 && ntohs(a4->sin_port) == 0,
       "port 0 (the kernel picks)");
    ok(serve_parse_listen("[::1]:8080", &ss, &len) == 0 && a6->sin6_family == AF_INET6 &&
           ntohs(a6->sin6_port) == 8080 && len == sizeof(*a6),
       "[::1]:8080");
    static const char *const bad[] = {"", "3007", "localhost:3007", "1.2.3.4:", "1.2.3.4:65536",
                                      "1.2.3.4:-1", "1.2.3.4:30x7", "[::1:3007", "::1:3007",
                                      "1.2.3.4.5:80", "[]:80", "1.2.3.4:000003007"};
    int all = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (serve_parse_listen(bad[i], &ss, &len) != -EINVAL) {
            all = 0;
            ok(0, "listen \"%s\" should be refused", bad[i]);
        }
    ok(all, "names, missing or bad ports, bare IPv6: refused (numeric only, no DNS)");
}

static void test_args(void)
{
    struct serve_opts o;
    char err[300];
    char *const noenv[] = {NULL};

    char *a1[] = {"serve", "--token-file", "/t", NULL};
    ok(parse(a1, noenv, &o, err) == 0 && !strcmp(o.listen, "0.0.0.0:3007") &&
           !strcmp(o.data_dir, "/var/lib/syncgate") &&
           !strcmp(o.profiles_dir, "/etc/syncgate/profiles") && !o.default_profile &&
           o.retention_runs == 1000 && o.retention_age == 30LL * 86400 * USEC_PER_SEC &&
           o.stop_timeout == 30 * USEC_PER_SEC && !strcmp(o.token_file, "/t"),
       "defaults: 0.0.0.0:3007, /var/lib/syncgate, /etc/syncgate/profiles, 30 days, 1000 runs, "
       "30s");
    serve_opts_clear(&o);

    char *const env[] = {"SYNCGATE_LISTEN=127.0.0.1:9000", "SYNCGATE_API_TOKEN_FILE=/env-token",
                         "SYNCGATE_DEFAULT_PROFILE=staging", "SYNCGATE_RETENTION_DAYS=0",
                         "SYNCGATE_RETENTION_RUNS=", "SYNCGATE_STOP_TIMEOUT=5s",
                         "SYNCGATE_DATA_DIR=/d", NULL};
    char *a2[] = {"serve", "--listen", ":3007", NULL};
    ok(parse(a2, env, &o, err) == 0 && !strcmp(o.listen, ":3007") &&
           !strcmp(o.token_file, "/env-token") && !strcmp(o.default_profile, "staging") &&
           o.retention_age == 0 && o.retention_runs == 1000 && o.stop_timeout == 5 * USEC_PER_SEC &&
           !strcmp(o.data_dir, "/d"),
       "environment applies, options win, an empty variable counts as unset");
    serve_opts_clear(&o);

    char *a3[] = {"serve", "-q", "--log-format", "text", "--token-file=/x", "--retention-runs",
                  "0", NULL};
    ok(parse(a3, noenv, &o, err) == 0 && o.quiet && o.log_format == LOG_FORMAT_TEXT &&
           o.retention_runs == 0,
       "-q, --log-format text, --opt=value, retention off");
    serve_opts_clear(&o);

    char *help[] = {"serve", "--help", NULL};
    ok(parse(help, noenv, &o, err) == 1, "--help: 1 (the caller prints the usage)");
    serve_opts_clear(&o);
    ok(strstr(serve_usage, "SYNCGATE_API_TOKEN_FILE") && strstr(serve_usage, "--stop-timeout"),
       "the usage names options and variables");

    static const struct {
        char *argv[6];
        const char *env, *msg;
    } bad[] = {
        {{"serve", NULL}, NULL, "no API token"},
        {{"serve", "--token-file", "/t", "--listen", "x:1", NULL}, NULL, "--listen: expected"},
        {{"serve", "--token-file", "/t", NULL}, "SYNCGATE_LISTEN=nope", "env SYNCGATE_LISTEN"},
        {{"serve", "--token-file", "/t", "--default-profile", "../x", NULL}, NULL,
         "--default-profile: expected a profile name"},
        {{"serve", "--token-file", "/t", "--retention-days", "-1", NULL}, NULL, "--retention-days"},
        {{"serve", "--token-file", "/t", "--retention-runs", "1e3", NULL}, NULL, "--retention-runs"},
        {{"serve", "--token-file", "/t", "--stop-timeout", "0s", NULL}, NULL, "--stop-timeout"},
        {{"serve", "--token-file", "/t", "--log-format", "xml", NULL}, NULL, "--log-format"},
        {{"serve", "--nope", NULL}, NULL, "--nope: unknown option"},
        {{"serve", "--listen", NULL}, NULL, "needs a value"},
        {{"serve", "--token-file", "/t", "extra", NULL}, NULL, "extra argument \"extra\""},
        {{"serve", NULL}, "SYNCGATE_STOP_TIMEOUT=forever", "env SYNCGATE_STOP_TIMEOUT"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *const e[] = {(char *)bad[i].env, NULL};
        err[0] = '\0';
        int rc = parse((char **)bad[i].argv, bad[i].env ? e : noenv, &o, err);
        ok(rc == -EINVAL && strstr(err, bad[i].msg) && !strchr(err, '\n'),
           "bad options %zu: %s", i, err);
        serve_opts_clear(&o);
    }
}

int main(void)
{
    test_listen();
    test_args();
    return tap_done();
}
