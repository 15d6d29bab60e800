/* serve: start-up, signals and shutdown of `syncgate serve`. */
#include "syncgate/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syncgate/units.h"

/* The token from its file: one line of visible ASCII, trailing white space dropped. */
static int read_token(const char *path, char **out, size_t *len, char *err, size_t n)
{
    char buf[SERVE_MAX_TOKEN + 2];
    size_t got = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, n, "--token-file: cannot read \"%s\": %s", path,
                 fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return -EINVAL;
    }
    for (ssize_t r; got < sizeof(buf) - 1 && (r = read(fd, buf + got, sizeof(buf) - 1 - got));) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, n, "--token-file: cannot read \"%s\": %s", path, strerror(errno));
            close(fd);
            return -EINVAL;
        }
        got += (size_t)r;
    }
    close(fd);
    while (got && strchr(" \t\r\n", buf[got - 1]))
        got--;
    const char *why = got == 0 ? "is empty" : got > SERVE_MAX_TOKEN ? "holds more than 4096 bytes"
                                                                     : NULL;
    for (size_t i = 0; !why && i < got; i++)
        if (buf[i] < 0x21 || buf[i] > 0x7e)
            why = "holds something other than one word of printable ASCII";
    if (why) {
        explicit_bzero(buf, sizeof(buf));
        snprintf(err, n, "--token-file: \"%s\" %s", path, why);
        return -EINVAL;
    }
    if (!(*out = malloc(got + 1))) {
        explicit_bzero(buf, sizeof(buf));
        return -ENOMEM;
    }
    memcpy(*out, buf, got);
    (*out)[got] = '\0';
    *len = got;
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

/* A directory that exists (made when missing) and that we may write. */
static int writable_dir(const char *dir, const char *opt, char *err, size_t n)
{
    struct stat st;
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, n, "%s: cannot create \"%s\": %s", opt, dir, strerror(errno));
        return -EINVAL;
    }
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) < 0) {
        snprintf(err, n, "%s: \"%s\" is not a directory this process can write", opt, dir);
        return -EINVAL;
    }
    return 0;
}

static int setup(struct serve *s, int *lock_fd, const char *self, char *err, size_t n)
{
    char path[PATH_MAX];
    struct stat st;
    int rc;

    if ((rc = read_token(s->o.token_file, &s->token, &s->token_len, err, n)) < 0)
        return rc;
    if ((rc = writable_dir(s->o.data_dir, "--data-dir", err, n)) < 0)
        return rc;
    snprintf(s->runs_dir, sizeof(s->runs_dir), "%s/runs", s->o.data_dir);
    if ((rc = writable_dir(s->runs_dir, "--data-dir", err, n)) < 0)
        return rc;
    /* two servers on one history would each mark the other's runs lost */
    snprintf(path, sizeof(path), "%s/serve.lock", s->o.data_dir);
    *lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (*lock_fd < 0 || flock(*lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, n, "--data-dir: %s: %s", s->o.data_dir,
                 errno == EWOULDBLOCK ? "another syncgate serve is using it" : strerror(errno));
        return -EINVAL;
    }
    snprintf(path, sizeof(path), "%s/history.db", s->o.data_dir);
    char why[512];
    if ((rc = rundb_open(&s->h, path, why, sizeof(why))) < 0) {
        snprintf(err, n, "history %.400s: %s", path, why);
        return rc == -EPROTO ? -EINVAL : rc;
    }
    if (stat(s->o.profiles_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, n, "--profiles-dir: \"%s\" is not a directory", s->o.profiles_dir);
        return -EINVAL;
    }
    if (s->o.default_profile) {
        snprintf(path, sizeof(path), "%s/%s.yaml", s->o.profiles_dir, s->o.default_profile);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
            snprintf(err, n, "--default-profile: no profile \"%s\" (%.900s)",
                     s->o.default_profile, path);
            return -EINVAL;
        }
    }
    /* runs execute this very binary: /proc/self/exe (read, not exec'd, so that valgrind
     * reports the program and not itself), or where it was started from by absolute path
     * when there is no /proc (an empty chroot) */
    ssize_t len = readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1);
    if (len > 0)
        s->exe[len] = '\0';
    else if (self && self[0] == '/' && access(self, X_OK) == 0 && strlen(self) < sizeof(s->exe))
        strcpy(s->exe, self);
    else {
        snprintf(err, n, "cannot find this program: /proc/self/exe: %s", strerror(errno));
        return -EIO;
    }
    return 0;
}

int serve_main(int argc, char **argv, const char *self)
{
    extern char **environ;
    struct serve s;
    char err[1024];
    int lock_fd = -1, port = 0, sig = 0;
    struct serve_http *http = NULL;
    sigset_t set;

    memset(&s, 0, sizeof(s));
    int rc = serve_parse_args(argc, argv, environ, &s.o, err, sizeof(err));
    if (rc == 1) {
        fputs(serve_usage, stdout);
        serve_opts_clear(&s.o);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "syncgate: %s\n", err);
        serve_opts_clear(&s.o);
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    /* SIGTERM and SIGINT are taken by sigwait below, so every thread made from here on
     * blocks them; runs get an empty mask back (runner.c) */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.envp = environ;
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    const char *env = getenv("ENVIRONMENT");
    if (!(s.log = log_new(stderr, s.o.log_format, s.o.quiet, env ? env : "", ""))) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = setup(&s, &lock_fd, self, err, sizeof(err))) < 0) {
        fprintf(stderr, "syncgate: serve: %s\n", err);
        goto out;
    }
    /* the token never appears in a line of this log, even quoted back by a client */
    if ((rc = log_add_secret(s.log, s.token)) < 0) {
        fprintf(stderr, "syncgate: serve: cannot register the token with the log: %s\n",
                strerror(-rc));
        goto out;
    }
    int lost = rundb_mark_lost(s.h, units_now_wall() / 1000,
                                 "the server stopped while the run was in progress (found still "
                                 "running at start-up)");
    if (lost > 0) {
        cJSON *ev = log_begin(s.log, "runs_lost");
        cJSON_AddNumberToObject(ev, "runs", lost);
        cJSON_AddStringToObject(ev, "message", "runs left running by a previous server are "
                                               "recorded as interrupted");
        log_emit(s.log, LOG_WARN, ev);
    }
    serve_runs_prune(&s);

    struct sockaddr_storage ss;
    size_t sslen;
    serve_parse_listen(s.o.listen, &ss, &sslen);
    http = serve_http_start((struct sockaddr *)&ss, sslen, s.token, s.token_len, s.log,
                            serve_api_handle, &s, &port, &rc);
    if (!http) {
        fprintf(stderr, "syncgate: serve: cannot listen on %s: %s\n", s.o.listen,
                strerror(-rc));
        goto out;
    }
    cJSON *ev = log_begin(s.log, "serve_start");
    cJSON_AddStringToObject(ev, "version", SYNCGATE_VERSION);
    cJSON_AddStringToObject(ev, "listen", s.o.listen);
    cJSON_AddNumberToObject(ev, "port", port);
    cJSON_AddStringToObject(ev, "data_dir", s.o.data_dir);
    cJSON_AddStringToObject(ev, "profiles_dir", s.o.profiles_dir);
    if (s.o.default_profile)
        cJSON_AddStringToObject(ev, "default_profile", s.o.default_profile);
    cJSON_AddNumberToObject(ev, "schema_version", rundb_schema_version());
    log_emit(s.log, LOG_INFO, ev);

    while (sigwait(&set, &sig) != 0)
        ;
    ev = log_begin(s.log, "serve_stopping");
    cJSON_AddStringToObject(ev, "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
    log_emit(s.log, LOG_INFO, ev);
    serve_runs_stop(&s);
    serve_http_stop(http);
    http = NULL;
    log_msg(s.log, LOG_INFO, "serve_stop", "stopped");
    rc = 0;
out:
    serve_http_stop(http);
    if (s.token) {
        explicit_bzero(s.token, s.token_len);
        free(s.token);
    }
    rundb_close(s.h);
    if (lock_fd >= 0)
        close(lock_fd);
    log_free(s.log);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.lock);
    serve_opts_clear(&s.o);
    return rc;
}
