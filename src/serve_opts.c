/* serve_opts: `syncgate serve` options from the command line and the environment. */
#include "syncgate/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncgate/units.h"
#include "utf8.h"

const char serve_usage[] =
    "usage: syncgate serve [options]\n"
    "The test-runner service: POST /api/tests/run starts a run, GET /api/tests lists them.\n"
    "options (environment variable in brackets; options win):\n"
    "  --listen ADDR:PORT       where to listen [SYNCGATE_LISTEN] (" SERVE_DEFAULT_LISTEN ")\n"
    "  --token-file FILE        bearer token every request but /healthz must carry\n"
    "                           [SYNCGATE_API_TOKEN_FILE] (required)\n"
    "  --profiles-dir DIR       profiles by name: DIR/<name>.yaml [SYNCGATE_PROFILES_DIR]\n"
    "                           (" SERVE_DEFAULT_PROFILES_DIR ")\n"
    "  --default-profile NAME   profile of a request that names none\n"
    "                           [SYNCGATE_DEFAULT_PROFILE] (none: requests must name one)\n"
    "  --data-dir DIR           history.db and each run's files [SYNCGATE_DATA_DIR]\n"
    "                           (" SERVE_DEFAULT_DATA_DIR ")\n"
    "  --retention-days N       forget runs older than N days, 0 never [SYNCGATE_RETENTION_DAYS]\n"
    "                           (30)\n"
    "  --retention-runs N       keep at most N runs, 0 no limit [SYNCGATE_RETENTION_RUNS] (1000)\n"
    "  --stop-timeout DURATION  time a run gets to stop on cancel or shutdown before it is\n"
    "                           killed [SYNCGATE_STOP_TIMEOUT] (30s)\n"
    "  --log-format json|text   (json when stdout is not a TTY)\n"
    "  -q, --quiet              only warnings and errors in the log\n";

static const char *env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (; envp && *envp; envp++)
        if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
            return (*envp)[n + 1] ? *envp + n + 1 : NULL; /* empty counts as unset */
    return NULL;
}

int serve_parse_listen(const char *s, struct sockaddr_storage *ss, size_t *len)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    memset(ss, 0, sizeof(*ss));
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -EINVAL;
    const char *p = colon + 1;
    long port = 0;
    if (!*p || strlen(p) > 5)
        return -EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (host[0] == '[') {
        size_t hl = strlen(host);
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        if (hl < 3 || host[hl - 1] != ']')
            return -EINVAL;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
            return -EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (host[0] == '\0')
        a4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        return -EINVAL;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof(*a4);
    return 0;
}

void serve_opts_clear(struct serve_opts *o)
{
    free(o->listen);
    free(o->data_dir);
    free(o->profiles_dir);
    free(o->default_profile);
    free(o->token_file);
    memset(o, 0, sizeof(*o));
}

static int set(char **dst, const char *v)
{
    char *c = strdup(v);
    if (!c)
        return -ENOMEM;
    free(*dst);
    *dst = c;
    return 0;
}

/* "--opt" or "env NAME" with the value, for a message. */
static int bad(char *err, size_t n, const char *where, const char *value, const char *why)
{
    char v[128];
    snprintf(err, n, "%s: %s, got %s", where, why,
             utf8_escape(value, strlen(value), true, v, sizeof(v)));
    return -EINVAL;
}

static int apply(struct serve_opts *o, int which, const char *v, const char *where, char *err,
                 size_t n)
{
    int64_t d;
    char *end;
    switch (which) {
    case 'l': {
        struct sockaddr_storage ss;
        size_t len;
        if (serve_parse_listen(v, &ss, &len) < 0)
            return bad(err, n, where, v, "expected ADDR:PORT such as 0.0.0.0:3007, [::]:3007 "
                                         "or :3007 (numeric addresses only)");
        return set(&o->listen, v);
    }
    case 't':
        return set(&o->token_file, v);
    case 'P':
        return set(&o->profiles_dir, v);
    case 'D':
        return set(&o->data_dir, v);
    case 'd':
        if (!api_profile_name_ok(v))
            return bad(err, n, where, v, "expected a profile name ([a-z0-9_-], at most 64)");
        return set(&o->default_profile, v);
    case 'r': {
        long days = strtol(v, &end, 10);
        if (!*v || *end || days < 0 || days > 36500)
            return bad(err, n, where, v, "expected a whole number of days from 0 to 36500");
        o->retention_age = (int64_t)days * 86400 * USEC_PER_SEC;
        return 0;
    }
    case 'R': {
        long runs = strtol(v, &end, 10);
        if (!*v || *end || runs < 0 || runs > 10000000)
            return bad(err, n, where, v, "expected a whole number from 0 to 10000000");
        o->retention_runs = (size_t)runs;
        return 0;
    }
    case 's':
        if (units_parse_duration(v, &d) < 0 || d < USEC_PER_SEC || d > 3600 * USEC_PER_SEC)
            return bad(err, n, where, v, "expected a duration from 1s to 1h");
        o->stop_timeout = d;
        return 0;
    case 'L':
        if (!strcmp(v, "json"))
            o->log_format = LOG_FORMAT_JSON;
        else if (!strcmp(v, "text"))
            o->log_format = LOG_FORMAT_TEXT;
        else
            return bad(err, n, where, v, "expected json or text");
        return 0;
    }
    return -EINVAL;
}

int serve_parse_args(int argc, char **argv, char *const *envp, struct serve_opts *o, char *err,
                     size_t n)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"token-file", required_argument, NULL, 't'},
        {"profiles-dir", required_argument, NULL, 'P'},
        {"data-dir", required_argument, NULL, 'D'},
        {"default-profile", required_argument, NULL, 'd'},
        {"retention-days", required_argument, NULL, 'r'},
        {"retention-runs", required_argument, NULL, 'R'},
        {"stop-timeout", required_argument, NULL, 's'},
        {"log-format", required_argument, NULL, 'L'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const struct {
        int which;
        const char *env;
    } envs[] = {
        {'l', "SYNCGATE_LISTEN"},          {'t', "SYNCGATE_API_TOKEN_FILE"},
        {'P', "SYNCGATE_PROFILES_DIR"},    {'D', "SYNCGATE_DATA_DIR"},
        {'d', "SYNCGATE_DEFAULT_PROFILE"}, {'r', "SYNCGATE_RETENTION_DAYS"},
        {'R', "SYNCGATE_RETENTION_RUNS"},  {'s', "SYNCGATE_STOP_TIMEOUT"},
    };
    char where[80], v[128];
    int c, rc;

    memset(o, 0, sizeof(*o));
    o->retention_age = (int64_t)30 * 86400 * USEC_PER_SEC;
    o->retention_runs = 1000;
    o->stop_timeout = 30 * USEC_PER_SEC;
    if ((rc = set(&o->listen, SERVE_DEFAULT_LISTEN)) < 0 ||
        (rc = set(&o->data_dir, SERVE_DEFAULT_DATA_DIR)) < 0 ||
        (rc = set(&o->profiles_dir, SERVE_DEFAULT_PROFILES_DIR)) < 0)
        return rc;
    for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
        const char *val = env_get(envp, envs[i].env);
        snprintf(where, sizeof(where), "env %s", envs[i].env);
        if (val && (rc = apply(o, envs[i].which, val, where, err, n)) < 0)
            return rc;
    }
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qh", opts, NULL)) != -1) {
        const struct option *op = NULL;
        for (size_t i = 0; opts[i].name; i++)
            if (opts[i].val == c)
                op = &opts[i];
        switch (c) {
        case 'q': o->quiet = true; break;
        case 'h': return 1;
        case ':':
        case '?': {
            const char *arg = argv[optind - 1];
            if (c == ':')
                snprintf(err, n, "serve: %s needs a value (see syncgate serve --help)",
                         utf8_escape(arg, strlen(arg), false, v, sizeof(v)));
            else
                snprintf(err, n, "serve: %s: unknown option (see syncgate serve --help)",
                         utf8_escape(arg, strlen(arg), false, v, sizeof(v)));
            return -EINVAL;
        }
        default:
            snprintf(where, sizeof(where), "--%s", op ? op->name : "?");
            if ((rc = apply(o, c, optarg, where, err, n)) < 0)
                return rc;
        }
    }
    if (optind < argc) {
        snprintf(err, n, "serve: extra argument %s (see syncgate serve --help)",
                 utf8_escape(argv[optind], strlen(argv[optind]), true, v, sizeof(v)));
        return -EINVAL;
    }
    if (!o->token_file) {
        snprintf(err, n, "serve: no API token: --token-file FILE or SYNCGATE_API_TOKEN_FILE "
                         "(a mounted Secret); every request but /healthz must carry it");
        return -EINVAL;
    }
    return 0;
}
