/* runner: fork/exec a child, keep its output in bounded files, reap it. */
#include "syncgate/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/close_range.h>

struct stream {
    int pipe;   /* read end; -1 once closed */
    int file;   /* where the bytes are kept */
    size_t kept, dropped;
};

struct runner {
    pid_t pid;
    struct stream s[2]; /* stdout, stderr */
    size_t max_bytes;
    runner_line_cb cb;
    void *ud;
    char *line; /* RUNNER_MAX_LINE + 1 */
    size_t line_len;
    bool line_cut; /* the current line was longer than the buffer */
    pthread_mutex_t lock;
    bool exited; /* guarded by lock: the pid is no longer ours to signal */
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Only async-signal-safe calls between fork and exec. */
static void child(const struct runner_spec *spec, int in_r, int out_w, int err_w, int status_w,
                  pid_t parent, int maxfd)
{
    sigset_t none;
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    int e;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127); /* the parent died before the line above took effect */
    if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
        goto fail;
    /* every other descriptor closes at exec; the status pipe tells the parent exec failed */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) /* Linux before 5.11: one by one */
        for (int fd = 3; fd < maxfd; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
    execve(spec->exe, spec->argv, spec->envp);
fail:
    e = errno;
    if (write(status_w, &e, sizeof(e)) < 0)
        _exit(127);
    _exit(127);
}

int runner_start(struct runner **out, const struct runner_spec *spec, runner_line_cb cb,
                 void *ud)
{
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
    struct rlimit rl;
    int rc = 0;

    *out = NULL;
    struct runner *r = calloc(1, sizeof(*r));
    if (!r || !(r->line = malloc(RUNNER_MAX_LINE + 1))) {
        if (r)
            free(r);
        return -ENOMEM;
    }
    r->pid = -1;
    r->max_bytes = spec->max_bytes;
    r->cb = cb;
    r->ud = ud;
    pthread_mutex_init(&r->lock, NULL);
    for (int i = 0; i < 2; i++)
        r->s[i].pipe = r->s[i].file = -1;
    int maxfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur
                                                                           : 65536;

    const char *paths[2] = {spec->out_path, spec->err_path};
    for (int i = 0; i < 2; i++)
        if ((r->s[i].file = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
            rc = -errno;
            goto fail;
        }
    /* stdin: a pipe nobody writes to (reads see end of file at once); no /dev/null
     * needed, which an empty root does not have */
    if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 ||
        pipe2(err_p, O_CLOEXEC) < 0 || pipe2(st_p, O_CLOEXEC) < 0) {
        rc = -errno;
        goto fail;
    }
    close_fd(&in_p[1]);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        goto fail;
    }
    if (pid == 0)
        child(spec, in_p[0], out_p[1], err_p[1], st_p[1], parent, maxfd);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&st_p[1]);
    close_fd(&in_p[0]);
    r->pid = pid;
    r->s[0].pipe = out_p[0];
    r->s[1].pipe = err_p[0];
    /* exec closes the status pipe: EOF means it worked, an int is its errno */
    int e = 0;
    ssize_t n;
    while ((n = read(st_p[0], &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    close_fd(&st_p[0]);
    if (n > 0) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        r->pid = -1;
        rc = e ? -e : -EIO;
        goto fail;
    }
    *out = r;
    return 0;
fail:
    close_fd(&out_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[0]);
    close_fd(&err_p[1]);
    close_fd(&st_p[0]);
    close_fd(&st_p[1]);
    close_fd(&in_p[0]);
    close_fd(&in_p[1]);
    r->exited = true;
    runner_free(r);
    return rc;
}

pid_t runner_pid(const struct runner *r)
{
    return r->pid;
}

int runner_signal(struct runner *r, int sig)
{
    int rc = -ESRCH;
    pthread_mutex_lock(&r->lock);
    if (!r->exited && r->pid > 0)
        rc = kill(r->pid, sig) == 0 ? 0 : -errno;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void keep(struct runner *r, struct stream *s, const char *buf, size_t n)
{
    size_t room = s->kept < r->max_bytes ? r->max_bytes - s->kept : 0;
    size_t k = n < room ? n : room;
    for (size_t off = 0; off < k;) {
        ssize_t w = write(s->file, buf + off, k - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            s->dropped += k - off; /* a full disk: count it as not kept */
            break;
        }
        off += (size_t)w;
        s->kept += (size_t)w;
    }
    s->dropped += n - k;
}

static void lines(struct runner *r, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            if (r->cb)
                r->cb(r->line, r->line_len, r->ud);
            r->line_len = 0;
            r->line_cut = false;
        } else if (r->line_len < RUNNER_MAX_LINE) {
            r->line[r->line_len++] = buf[i];
            r->line[r->line_len] = '\0';
        } else {
            r->line_cut = true;
        }
    }
}

int runner_wait(struct runner *r, int *status, void (*tick)(void *ud), void *ud)
{
    char buf[65536];
    int rc = 0;

    while (r->s[0].pipe >= 0 || r->s[1].pipe >= 0) {
        struct pollfd p[2] = {{r->s[0].pipe, POLLIN, 0}, {r->s[1].pipe, POLLIN, 0}};
        int ready = poll(p, 2, RUNNER_TICK_MS);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (tick)
            tick(ud); /* every wake-up: at most a tick apart, more often with output */
        if (ready == 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (r->s[i].pipe < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(r->s[i].pipe, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close_fd(&r->s[i].pipe);
                continue;
            }
            keep(r, &r->s[i], buf, (size_t)n);
            if (i == 1)
                lines(r, buf, (size_t)n);
        }
    }
    if (r->line_len && r->cb) /* a last line without a newline */
        r->cb(r->line, r->line_len, r->ud);
    r->line_len = 0;
    for (int i = 0; i < 2; i++)
        if (r->s[i].dropped) {
            char note[128];
            int len = snprintf(note, sizeof(note),
                               "\n[syncgate serve: %zu more bytes of this stream were not kept]\n",
                               r->s[i].dropped);
            if (write(r->s[i].file, note, (size_t)len) < 0)
                rc = rc ? rc : -errno;
        }
    /* know it exited before reaping it: the pid stays ours until waitpid below */
    siginfo_t si;
    while (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&r->lock);
    r->exited = true;
    pthread_mutex_unlock(&r->lock);
    int st = 0;
    pid_t w;
    while ((w = waitpid(r->pid, &st, 0)) < 0 && errno == EINTR)
        ;
    if (w < 0)
        return -errno;
    *status = st;
    return rc;
}

void runner_free(struct runner *r)
{
    if (!r)
        return;
    for (int i = 0; i < 2; i++) {
        close_fd(&r->s[i].pipe);
        close_fd(&r->s[i].file);
    }
    pthread_mutex_destroy(&r->lock);
    free(r->line);
    free(r);
}
