/*
 * notify: the verdict where people look, once the run is over.
 *
 * notify_termination() writes the digest to the pod's termination message
 * file (Kubernetes shows it in `kubectl describe pod` and ArgoCD in the
 * hook's status): at most NOTIFY_TERMINATION_MAX bytes, only into a file that
 * exists already (the kubelet makes it), so running outside Kubernetes
 * creates nothing.
 *
 * notify_webhook() POSTs a body to notify.webhook_url with libcurl: attempts
 * until one gets a 2xx, any other answer but 408, 429 and 5xx (never
 * repeated), or the time budget notify.timeout is spent (each attempt's timeout is what is
 * left; waits of 250 ms, then 500 ms, ... between attempts), at most
 * NOTIFY_MAX_ATTEMPTS; a signal ends it at once. So the webhook never delays
 * the exit by more than its budget (notify.timeout). The URL is a secret: it is never
 * part of what is returned.
 */
#ifndef SYNCGATE_NOTIFY_H
#define SYNCGATE_NOTIFY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"

#define NOTIFY_TERMINATION_MAX 4096
#define NOTIFY_MAX_ATTEMPTS 4

/*
 * Write text (cut to NOTIFY_TERMINATION_MAX bytes) to path, which must exist.
 * Returns 0, or -errno (-ENOENT when it does not exist).
 */
int notify_termination(const char *path, const char *text);

struct notify_result {
    int attempts;
    long status;     /* last HTTP status, 0: none */
    bool delivered;  /* a 2xx */
    char error[160]; /* why not, no URL in it */
};

/*
 * POST body (application/json) to c->notify.webhook_url within budget usec
 * (the program passes notify.timeout, less after a signal). stop (may be
 * NULL) ends it early. Fills res; returns 0 when delivered, else -EIO.
 * Needs curl_global_init().
 */
int notify_webhook(const struct config *c, const char *body, int64_t budget,
                   volatile sig_atomic_t *stop, struct notify_result *res);

#endif
