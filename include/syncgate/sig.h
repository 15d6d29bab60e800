/*
 * sig: the signals that end a run, caught so that every one of them ends it
 * the same way: interrupted, with the summary.
 *
 * Every signal whose default action would end the process is handled (SIGHUP,
 * SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGXCPU, SIGXFSZ,
 * SIGVTALRM, SIGPROF, SIGPWR, SIGSTKFLT, SIGIO and the real-time signals),
 * except the ones the kernel sends for a fault of the program itself
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS), which keep
 * their default action, and SIGPIPE, which is ignored (writes to a closed
 * socket or pipe fail with EPIPE instead). Handling them matters most when
 * syncgate is PID 1 (its container image is FROM scratch): there the kernel
 * drops every signal with a default action that the process does not handle,
 * so an unhandled SIGQUIT or SIGUSR1 would be ignored and the run would go on.
 *
 * The first signal sets the stop flag. Any further signal within
 * SIG_SAME_WINDOW of the first is the same interruption (Ctrl-C on a script
 * delivers the terminal's SIGINT and the script's forwarded SIGTERM
 * together); one after the window ends the process at once with the exit
 * code given to sig_install().
 */
#ifndef SYNCGATE_SIG_H
#define SYNCGATE_SIG_H

#include <signal.h>

#define SIG_SAME_WINDOW_MSEC 500

/*
 * Install the handlers. *flag (owned by the caller) becomes 1 at the first
 * signal; exit_code is what a signal after the window exits with. Returns 0
 * or a negative errno (a handler could not be installed for a signal every
 * system has).
 */
int sig_install(volatile sig_atomic_t *flag, int exit_code);

/* The first signal received (its number), or 0. */
int sig_first(void);

/* "SIGTERM", "SIGRTMIN+3", ... for sig; buf holds at least 16 bytes. */
const char *sig_name(int sig, char *buf, size_t n);

#endif
