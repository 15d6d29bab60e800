/*
 * Helpers of the configuration fuzz targets: run config_resolve on a profile
 * held in memory (through a memfd, so no file is written), and check what
 * must hold of every resolved configuration.
 */
#ifndef SYNCGATE_FUZZ_CONFIG_H
#define SYNCGATE_FUZZ_CONFIG_H

#include <errno.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "syncgate/config.h"
#include "syncgate/units.h"

/* Big enough for the dump of any configuration the caps allow. */
#define FUZZ_DUMP_MAX (4 * 1024 * 1024)

/* A memfd holding data, its /proc path in path; returns the fd or -1. */
static inline int fuzz_memfd(const void *data, size_t size, char *path, size_t n)
{
    int fd = memfd_create("fuzz-profile", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        size -= (size_t)w;
    }
    snprintf(path, n, "/proc/self/fd/%d", fd);
    return fd;
}

/* A diagnostic is the only thing a user sees of a failure: it must say something. */
static inline void fuzz_check_diag(int rc, const struct diag *d)
{
    FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "unexpected error %d", rc);
    FUZZ_CHECK(memchr(d->where, 0, sizeof(d->where)) && memchr(d->key, 0, sizeof(d->key)) &&
                   memchr(d->msg, 0, sizeof(d->msg)),
               "diag fields not NUL-terminated");
    FUZZ_CHECK(d->msg[0] != '\0', "empty error message (rc %d)", rc);
    char line[2048];
    diag_format(d, line, sizeof(line));
    /* one line of text: control bytes and non-ASCII bytes that are not UTF-8 come out
     * as \xNN, so only a message of plain ASCII is found as it is */
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)d->msg; *p; p++)
        plain = plain && *p >= 0x20 && *p < 0x7f;
    FUZZ_CHECK(!plain || strstr(line, d->msg) != NULL, "formatted diag lost its message: %s",
               line);
    for (const unsigned char *p = (const unsigned char *)line; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f, "control byte 0x%02x in a message: %s", *p, line);
}

/* What validation promises of every resolved configuration. */
static inline void fuzz_check_config(const struct config *c)
{
    FUZZ_CHECK(c->testid && *c->testid, "no testid");
    FUZZ_CHECK(c->gateway.url && c->instance, "no gateway url or instance");
    FUZZ_CHECK(c->nservices >= 1 && c->nservices <= CONFIG_MAX_SERVICES, "%zu services",
               c->nservices);
    for (size_t i = 0; i < c->nservices; i++) {
        const struct service *s = &c->services[i];
        FUZZ_CHECK(s->name && *s->name && s->method, "service %zu unnamed", i);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(s->name, c->services[j].name) != 0, "duplicate service %s", s->name);
        FUZZ_CHECK(s->max_latency >= 0 && s->max_latency <= UNITS_MAX_DURATION, "max_latency %lld",
                   (long long)s->max_latency);
    }
    FUZZ_CHECK(c->load.nstages >= 1 && c->load.nstages <= CONFIG_MAX_STAGES, "%zu stages",
               c->load.nstages);
    FUZZ_CHECK(c->load.start_vus >= 0, "start_vus %d", c->load.start_vus);
    bool any = c->load.start_vus > 0; /* k6's rule: startVUs or a target above 0 */
    for (size_t i = 0; i < c->load.nstages; i++) {
        const struct stage *st = &c->load.stages[i];
        FUZZ_CHECK(st->duration >= 0 && st->duration <= UNITS_MAX_DURATION,
                   "stage %zu duration %lld", i, (long long)st->duration);
        FUZZ_CHECK(st->target >= 0, "stage %zu target %d", i, st->target);
        any = any || st->target > 0;
    }
    FUZZ_CHECK(any, "every stage target and start_vus are 0");
    FUZZ_CHECK(c->load.thresholds.n <= CONFIG_MAX_THRESHOLDS, "load thresholds");
    FUZZ_CHECK(c->smoke.thresholds.n <= CONFIG_MAX_THRESHOLDS, "smoke thresholds");
    FUZZ_CHECK(c->metrics.nlabels <= CONFIG_MAX_LABELS, "labels");
    FUZZ_CHECK(c->metrics.rw.nheaders <= CONFIG_MAX_HEADERS, "headers");
}

/* The effective configuration as text (malloc'd), NULL when it is too large. */
static inline char *fuzz_dump(const struct config *c, size_t *len)
{
    size_t need = config_dump(c, NULL, 0);
    FUZZ_CHECK(need > 0 && need < FUZZ_DUMP_MAX, "dump of %zu bytes", need);
    char *buf = malloc(need + 1);
    if (!buf)
        return NULL;
    size_t again = config_dump(c, buf, need + 1);
    FUZZ_CHECK(again == need && strlen(buf) == need, "dump length %zu then %zu", need, again);
    *len = need;
    return buf;
}

/* A URL whose user info has a password: the dump redacts it. */
static inline bool fuzz_url_secret(const char *url)
{
    const char *auth = url ? strstr(url, "://") : NULL;
    if (!auth)
        return false;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', alen);
    return at && memchr(auth, ':', (size_t)(at - auth));
}

/*
 * `syncgate validate` prints the effective configuration as a profile: it
 * must resolve again, to the same text. Skipped when a secret is set (it is
 * printed redacted, so the text cannot round-trip).
 */
static inline void fuzz_check_roundtrip(const struct config *c)
{
    if (c->gateway.key || c->metrics.rw.password || c->metrics.rw.bearer_token ||
        c->metrics.rw.nheaders || fuzz_url_secret(c->gateway.url) ||
        fuzz_url_secret(c->metrics.rw.server_url))
        return;
    for (size_t i = 0; i < c->nservices; i++)
        if (fuzz_url_secret(c->services[i].url))
            return;
    size_t len, len2;
    char *text = fuzz_dump(c, &len);
    if (!text)
        return;
    char path[64];
    int fd = fuzz_memfd(text, len, path, sizeof(path));
    FUZZ_CHECK(fd >= 0, "memfd: %s", strerror(errno));
    struct config c2 = {0};
    struct diag d;
    struct config_cli cli = {.profile = path};
    char *const envp[] = {NULL};
    int rc = config_resolve(&c2, &cli, envp, &d);
    close(fd);
    char msg[2048];
    FUZZ_CHECK(rc == 0, "the dumped configuration does not resolve: %s\n--- dump ---\n%s",
               diag_format(&d, msg, sizeof(msg)), text);
    char *text2 = fuzz_dump(&c2, &len2);
    if (text2) {
        /* The second dump names the memfd as its profile: compare past that line. */
        const char *a = strstr(text, "\nenvironment:"), *b = strstr(text2, "\nenvironment:");
        FUZZ_CHECK(a && b && strcmp(a, b) == 0,
                   "dump does not round-trip\n--- first ---\n%s\n--- second ---\n%s", text, text2);
    }
    free(text2);
    free(text);
    config_clear(&c2);
}

/* What config_resolve promises either way: a sound configuration that round-trips, or
 * a diagnostic that says something. */
static inline void fuzz_check_resolved(int rc, const struct config *c, const struct diag *d)
{
    if (rc == 0) {
        fuzz_check_config(c);
        fuzz_check_roundtrip(c);
    } else {
        fuzz_check_diag(rc, d);
    }
}

#endif
