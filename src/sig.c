/* sig: every signal that would end the process ends the run as interrupted. */
#include "syncgate/sig.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t *stop_flag;
static int second_exit;
/* Written by the handler (maybe on two threads at once): lock-free atomics are safe there. */
static atomic_int first_sig;
static atomic_llong first_at; /* CLOCK_MONOTONIC ns of the first signal */

/* Default action "terminate" or "core" and not a fault of our own: see sig.h. */
static const int handled[] = {
    SIGHUP,  SIGINT,    SIGQUIT,  SIGTERM, SIGUSR1,   SIGUSR2, SIGALRM,
    SIGXCPU, SIGXFSZ,   SIGVTALRM, SIGPROF, SIGSTKFLT, SIGIO,   SIGPWR,
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_signal(int sig)
{
    long long now = now_ns(), first = 0;
    /* the time is the claim: a second signal on another thread always sees it */
    if (atomic_compare_exchange_strong(&first_at, &first, now)) {
        atomic_store(&first_sig, sig);
        *stop_flag = 1;
        return;
    }
    /* the same interruption, delivered twice (terminal and script): nothing more to do */
    if (now - first < (long long)SIG_SAME_WINDOW_MSEC * 1000000LL)
        return;
    _exit(second_exit);
}

int sig_install(volatile sig_atomic_t *flag, int exit_code)
{
    struct sigaction sa = {.sa_handler = on_signal};
    int rc = 0;

    stop_flag = flag;
    second_exit = exit_code;
    /* one handler at a time on a thread: the window check sees a finished first one */
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        sigaddset(&sa.sa_mask, handled[i]);
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        sigaddset(&sa.sa_mask, s);
    for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++)
        if (sigaction(handled[i], &sa, NULL) < 0)
            rc = -errno;
    /* some real-time signals may be taken (a debugger, valgrind): those keep what they have */
    for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
        sigaction(s, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return rc;
}

int sig_first(void)
{
    return atomic_load(&first_sig);
}

const char *sig_name(int sig, char *buf, size_t n)
{
    /* SIGIO and SIGPOLL are one signal; glibc names it POLL, most tools IO */
    const char *abbrev = sig == SIGIO                  ? "IO"
                         : sig > 0 && sig < SIGRTMIN ? sigabbrev_np(sig)
                                                       : NULL;
    if (abbrev)
        snprintf(buf, n, "SIG%s", abbrev);
    else if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(buf, n, sig == SIGRTMIN ? "SIGRTMIN" : "SIGRTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(buf, n, "signal %d", sig);
    return buf;
}
