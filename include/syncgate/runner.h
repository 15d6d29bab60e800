/*
 * runner: one child process whose output is kept, bounded, in files.
 *
 * `syncgate serve` runs every test as a child: the same binary, the same
 * command line a Job would use, so a run that crashes or leaks takes only
 * itself down. runner_start() forks and execs it with stdin at end of file
 * (an empty pipe: an empty root has no /dev/null) and stdout/stderr on
 * pipes; runner_wait() copies each stream into its file (at most max_bytes
 * each; what is beyond is counted and a note says so), hands every complete
 * stderr line (the JSON log) to a callback, and reaps the
 * child once both streams closed.
 *
 * The child gets an empty signal mask and default SIGPIPE handling, no file
 * descriptor of the parent but its three standard ones, and SIGTERM when the
 * thread that started it dies (PR_SET_PDEATHSIG): call runner_start from the
 * thread that will also wait for it.
 *
 * runner_signal() may be called from any thread, at any time before
 * runner_free(): once the child has exited it does nothing, so a recycled
 * pid is never signalled.
 */
#ifndef SYNCGATE_RUNNER_H
#define SYNCGATE_RUNNER_H

#include <stddef.h>
#include <sys/types.h>

/* Longest stderr line handed to the callback whole (syncgate's log lines are shorter). */
#define RUNNER_MAX_LINE (16 * 1024)

struct runner_spec {
    const char *exe;      /* the program to exec */
    char *const *argv;    /* NULL-terminated, argv[0] included */
    char *const *envp;    /* NULL-terminated */
    const char *out_path; /* stdout goes here (created, truncated; mode 0640) */
    const char *err_path; /* stderr goes here */
    size_t max_bytes;     /* kept of each stream */
};

/* A complete stderr line without its newline; longer lines are cut at RUNNER_MAX_LINE. */
typedef void (*runner_line_cb)(const char *line, size_t len, void *ud);

struct runner;

/*
 * Start the child. Returns 0 and *out, or negative errno: the files could
 * not be created, fork failed, or exec failed (its errno, e.g. -ENOENT); in
 * every failure case no child is left behind.
 */
int runner_start(struct runner **out, const struct runner_spec *spec, runner_line_cb cb,
                 void *ud);

pid_t runner_pid(const struct runner *r);

/* Send sig to the child unless it already exited. Returns 0 or -ESRCH. */
int runner_signal(struct runner *r, int sig);

/* How often runner_wait calls its tick while the child runs. */
#define RUNNER_TICK_MS 200

/*
 * Copy the child's output until it closes both streams, then reap it,
 * calling tick(ud) (when not NULL) about every RUNNER_TICK_MS meanwhile (to
 * enforce a deadline with runner_signal, say). Returns 0 with *status as
 * from waitpid(), or negative errno.
 */
int runner_wait(struct runner *r, int *status, void (*tick)(void *ud), void *ud);

/* Free; the child must have been waited for. NULL is a no-op. */
void runner_free(struct runner *r);

#endif
