/* notify: termination message and webhook (see notify.h). */
#include "syncgate/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "syncgate/units.h"

#ifndef SYNCGATE_VERSION
#define SYNCGATE_VERSION "0"
#endif

int notify_termination(const char *path, const char *text)
{
    /* no O_CREAT: outside Kubernetes nothing is made; the kubelet makes the real one */
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    if (len > NOTIFY_TERMINATION_MAX)
        len = NOTIFY_TERMINATION_MAX;
    int rc = 0;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    (void)p, (void)ud;
    return s * n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    volatile sig_atomic_t *stop = ud;
    (void)dt, (void)dn, (void)ut, (void)un;
    return stop && *stop ? 1 : 0;
}

/* Sleep until at most deadline (mono usec), in steps that notice a signal. */
static void nap(int64_t usec, int64_t deadline, volatile sig_atomic_t *stop)
{
    int64_t until = units_now_mono() + usec;
    if (until > deadline)
        until = deadline;
    while (!(stop && *stop)) {
        int64_t left = until - units_now_mono();
        if (left <= 0)
            break;
        if (left > 50000)
            left = 50000;
        struct timespec ts = {0, (long)left * 1000};
        nanosleep(&ts, NULL);
    }
}

int notify_webhook(const struct config *c, const char *body, int64_t budget,
                   volatile sig_atomic_t *stop, struct notify_result *res)
{
    memset(res, 0, sizeof(*res));
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (!e || !h) {
        snprintf(res->error, sizeof(res->error), "cannot start an HTTP client");
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        return -EIO;
    }
    curl_easy_setopt(e, CURLOPT_URL, c->notify.webhook_url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "syncgate/" SYNCGATE_VERSION);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)stop);
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);

    int64_t deadline = units_now_mono() + budget, wait = 250000;
    while (res->attempts < NOTIFY_MAX_ATTEMPTS && !(stop && *stop)) {
        int64_t left = deadline - units_now_mono();
        if (left < 10000)
            break;
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(left / 1000));
        CURLcode rc = curl_easy_perform(e);
        res->attempts++;
        res->status = 0;
        if (rc == CURLE_OK)
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &res->status);
        if (rc == CURLE_OK && res->status >= 200 && res->status < 300) {
            res->delivered = true;
            res->error[0] = '\0';
            break;
        }
        /* curl_easy_strerror's words, not an error buffer that may quote the URL (its
         * path is the secret part of a Slack webhook) */
        if (rc != CURLE_OK)
            snprintf(res->error, sizeof(res->error), "%s",
                     rc == CURLE_ABORTED_BY_CALLBACK ? "interrupted" : curl_easy_strerror(rc));
        else
            snprintf(res->error, sizeof(res->error), "HTTP %ld", res->status);
        /* the receiver refuses this body (4xx) or sends us elsewhere (3xx): sending it
         * again changes nothing; a 408, a 429, a 5xx or no answer may pass later */
        if (rc == CURLE_OK && res->status < 500 && res->status != 408 && res->status != 429)
            break;
        nap(wait, deadline, stop);
        wait *= 2;
    }
    if (!res->delivered && !res->error[0])
        snprintf(res->error, sizeof(res->error), "%s",
                 stop && *stop ? "interrupted" : "notify.timeout spent");
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return res->delivered ? 0 : -EIO;
}
