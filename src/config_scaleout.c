/*
 * config_scaleout: the options of a distributed run (config.h, struct config's
 * scaleout): JOB_COMPLETION_INDEX (Kubernetes sets it in the pods of an Indexed Job),
 * SYNCGATE_INSTANCES or --instances, SYNCGATE_COORDINATOR, SYNCGATE_PEER_TOKEN_FILE and
 * SYNCGATE_REGISTER_TIMEOUT. Environment and command line only: every pod reads the same
 * profile, and what differs between pods (the index) comes from Kubernetes.
 */
#include "config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syncgate/executor.h"
#include "syncgate/units.h"

#define MAX_INSTANCES 1000
#define MAX_TOKEN 4096
#define DEFAULT_REGISTER_TIMEOUT (120 * USEC_PER_SEC)

static const char *quote(const char *s, char *buf, size_t n)
{
    return cfg_quote(s, false, buf, n);
}

/* A whole decimal number in [min, max], or -1. */
static long whole(const char *s, long min, long max)
{
    char *end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    return *end || errno || v < min || v > max ? -1 : v;
}

static bool host_char(char ch, bool v6)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '.')
        return true;
    return v6 ? ch == ':' : ch == '-';
}

/* "host:port" or "[v6]:port" into host (malloc'd) and port; NULL or why not. */
static const char *parse_address(const char *s, char **host, int *port)
{
    const char *h = s, *he, *p;
    bool v6 = *s == '[';
    if (v6) {
        h = s + 1;
        if (!(he = strchr(h, ']')) || he[1] != ':')
            return "an IPv6 address needs brackets and a port: [ADDRESS]:PORT";
        p = he + 2;
    } else {
        if (!(he = strrchr(s, ':')))
            return "no port: expected HOST:PORT";
        p = he + 1;
        if (memchr(s, ':', (size_t)(he - s)))
            return "an IPv6 address needs brackets: [ADDRESS]:PORT";
    }
    size_t len = (size_t)(he - h);
    if (len == 0)
        return "no host: expected HOST:PORT";
    if (len > 253)
        return "the host name is longer than 253 bytes";
    for (size_t i = 0; i < len; i++)
        if (!host_char(h[i], v6))
            return v6 ? "not an IPv6 address" : "not a host name: letters, digits, '.' and '-' only";
    long v = whole(p, 1, 65535);
    if (v < 0)
        return "the port must be a number from 1 to 65535";
    if (!(*host = strndup(h, len)))
        return "out of memory";
    *port = (int)v;
    return NULL;
}

/* The shared token: one word of printable ASCII (trailing white space dropped), at most
 * MAX_TOKEN bytes. Its content never reaches a message. */
static int read_token(struct diag *d, const struct doc_origin *at, const char *path, char **out)
{
    char q[160], buf[MAX_TOKEN + 2];
    size_t got = 0;
    struct stat st;
    int err = 0;
    quote(path, q, sizeof(q));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) < 0)
        err = errno;
    else if (!S_ISREG(st.st_mode))
        err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    if (!err)
        err = cfg_read_fd(fd, buf, sizeof(buf), &got);
    if (fd >= 0)
        close(fd);
    if (err)
        return cfg_fail(d, at, "peer_token_file", "cannot read %s: %s", q,
                        err == EINVAL ? "not a regular file" : strerror(err));
    while (got && strchr(" \t\r\n", buf[got - 1]))
        got--;
    const char *why = got == 0 ? "is empty" : got > MAX_TOKEN ? "holds more than 4096 bytes" : NULL;
    for (size_t i = 0; !why && i < got; i++)
        if (buf[i] < 0x21 || buf[i] > 0x7e)
            why = "holds something other than one word of printable ASCII";
    int rc = 0;
    if (why)
        rc = cfg_fail(d, at, "peer_token_file", "%s %s", q, why);
    else if (!(*out = strndup(buf, got)))
        rc = -ENOMEM;
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

void cfg_scaleout_clear(struct config *c)
{
    free(c->scaleout.coordinator);
    free(c->scaleout.host);
    free(c->scaleout.token_file);
    if (c->scaleout.token) {
        explicit_bzero(c->scaleout.token, strlen(c->scaleout.token));
        free(c->scaleout.token);
    }
    memset(&c->scaleout, 0, sizeof(c->scaleout));
}

int cfg_convert_scaleout(struct diag *d, struct config *c, const struct config_cli *cli,
                         char *const *envp)
{
    char q[160], where[64];
    struct doc_origin at = {.name = where, .src = DOC_SRC_ENV};
    cfg_scaleout_clear(c);
    c->scaleout.instances = 1;
    c->scaleout.register_timeout = DEFAULT_REGISTER_TIMEOUT;

    const char *n = cli ? cli->instances : NULL;
    bool from_cli = n != NULL;
    const char *n_where = from_cli ? "--instances" : "env SYNCGATE_INSTANCES";
    snprintf(where, sizeof(where), "%s", n_where);
    if (from_cli)
        at.src = DOC_SRC_CLI;
    else
        n = cfg_env_get(envp, "SYNCGATE_INSTANCES");
    if (n && *n) {
        long v = whole(n, 1, MAX_INSTANCES);
        if (v < 0)
            return cfg_fail(d, &at, "instances",
                            "expected a number of instances from 1 to %d, got %s", MAX_INSTANCES,
                            quote(n, q, sizeof(q)));
        c->scaleout.instances = (int)v;
    }
    at.src = DOC_SRC_ENV;
    const char *ix = cfg_env_get(envp, "JOB_COMPLETION_INDEX");
    if (ix && *ix) {
        snprintf(where, sizeof(where), "env JOB_COMPLETION_INDEX");
        long v = whole(ix, 0, MAX_INSTANCES - 1);
        if (v < 0)
            return cfg_fail(d, &at, "index", "expected an index from 0 to %d, got %s",
                            c->scaleout.instances - 1, quote(ix, q, sizeof(q)));
        if (v >= c->scaleout.instances)
            return cfg_fail(d, &at, "index",
                            "%ld is not below the number of instances (%d; SYNCGATE_INSTANCES "
                            "or --instances): every pod of the Indexed Job must be told how many "
                            "run together",
                            v, c->scaleout.instances);
        c->scaleout.index = (int)v;
    }
    const char *to = cfg_env_get(envp, "SYNCGATE_REGISTER_TIMEOUT");
    if (to && *to) {
        snprintf(where, sizeof(where), "env SYNCGATE_REGISTER_TIMEOUT");
        int64_t v;
        if (units_parse_duration(to, &v) < 0 || v < USEC_PER_SEC || v > 3600 * USEC_PER_SEC)
            return cfg_fail(d, &at, "register_timeout",
                            "expected a duration from 1s to 1h, got %s", quote(to, q, sizeof(q)));
        c->scaleout.register_timeout = v;
    }
    if (c->scaleout.instances == 1)
        return 0; /* alone: the coordinator's address and the token mean nothing */

    const char *co = cfg_env_get(envp, "SYNCGATE_COORDINATOR");
    snprintf(where, sizeof(where), "env SYNCGATE_COORDINATOR");
    if (!co || !*co)
        return cfg_fail(d, &at, "coordinator",
                        "not set, and %d instances need it: HOST:PORT of instance 0 (in an "
                        "Indexed Job, <job>-0.<service>:<port>)",
                        c->scaleout.instances);
    const char *why = parse_address(co, &c->scaleout.host, &c->scaleout.port);
    if (why)
        return cfg_fail(d, &at, "coordinator", "%s, got %s", why, quote(co, q, sizeof(q)));
    if (!(c->scaleout.coordinator = strdup(co)))
        return -ENOMEM;

    const char *tf = cfg_env_get(envp, "SYNCGATE_PEER_TOKEN_FILE");
    snprintf(where, sizeof(where), "env SYNCGATE_PEER_TOKEN_FILE");
    if (!tf || !*tf)
        return cfg_fail(d, &at, "peer_token_file",
                        "not set, and %d instances need it: a file (a mounted Secret) with the "
                        "token every instance shares, so that nothing else can join or stop "
                        "the run",
                        c->scaleout.instances);
    int rc = read_token(d, &at, tf, &c->scaleout.token);
    if (rc)
        return rc;
    if (!(c->scaleout.token_file = strdup(tf)))
        return -ENOMEM;

    /* an open-model instance without a VU would drop every iteration dealt to it */
    for (size_t i = 0; i < c->load.nscenarios; i++) {
        const struct scenario *sc = &c->load.scenarios[i];
        if (ex_open(sc) && ex_slots(sc) < c->scaleout.instances) {
            snprintf(where, sizeof(where), "%s", n_where);
            at.src = from_cli ? DOC_SRC_CLI : DOC_SRC_ENV;
            return cfg_fail(d, &at, "instances",
                            "scenario %s has %d VUs at most (max_vus), fewer than the %d "
                            "instances: each instance needs one of its own, or the iterations "
                            "dealt to it would all be dropped",
                            sc->name, ex_slots(sc), c->scaleout.instances);
        }
    }

    /* pods on one host (or a host name shared by accident) must not share series: the
     * instance label ends with the index (an Indexed Job's pod, <job>-<index>, already does) */
    char suffix[16];
    snprintf(suffix, sizeof(suffix), "-%d", c->scaleout.index);
    size_t il = strlen(c->instance), sl = strlen(suffix);
    if (il < sl || strcmp(c->instance + il - sl, suffix) != 0) {
        char *inst;
        if (asprintf(&inst, "%s%s", c->instance, suffix) < 0)
            return -ENOMEM;
        free(c->instance);
        c->instance = inst;
    }
    return 0;
}
