/* Unit tests for runner: a real child (/bin/sh), its output kept and capped, lines, signals. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "syncgate/runner.h"
#include "tap.h"

static char dir[] = "/tmp/syncgate-runner-XXXXXX";
static char out_path[256], err_path[256];
static char got[64][256];
static size_t ngot;

static void line_cb(const char *line, size_t len, void *ud)
{
    (*(size_t *)ud)++;
    if (ngot < 64)
        snprintf(got[ngot++], sizeof(got[0]), "%.*s", (int)(len < 200 ? len : 200), line);
}

static int ticks;

static void tick(void *ud)
{
    (*(int *)ud)++;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    static char buf[1 << 20];
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}

static int sh(const char *script, size_t max, int *status, size_t *nlines)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", "RUNNER_TEST=yes", NULL};
    struct runner_spec spec = {"/bin/sh", argv, envp, out_path, err_path, max};
    struct runner *r;
    ngot = 0;
    *nlines = 0;
    int rc = runner_start(&r, &spec, line_cb, nlines);
    if (rc < 0)
        return rc;
    rc = runner_wait(r, status, NULL, NULL);
    runner_free(r);
    return rc;
}

int main(void)
{
    int status;
    size_t n;

    if (!mkdtemp(dir))
        return 1;
    snprintf(out_path, sizeof(out_path), "%s/stdout.log", dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr.log", dir);

    ok(sh("echo out; echo '{\"event\":\"a\"}' >&2; printf 'b\\nlast' >&2; exit 3", 4096, &status,
          &n) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 3,
       "exit code 3 comes back");
    ok(n == 3 && !strcmp(got[0], "{\"event\":\"a\"}") && !strcmp(got[1], "b") &&
           !strcmp(got[2], "last"),
       "stderr lines to the callback, the last one without a newline too (%zu)", n);
    ok(!strcmp(slurp(out_path), "out\n"), "stdout kept in its file");
    ok(!strcmp(slurp(err_path), "{\"event\":\"a\"}\nb\nlast"), "stderr kept in its file");

    ok(sh("echo $RUNNER_TEST; read x; echo \"stdin:$x\"; ls /proc/self/fd | wc -l", 4096, &status,
          &n) == 0,
       "environment and descriptors");
    char *o = slurp(out_path);
    ok(!strncmp(o, "yes\nstdin:\n", 11), "the given environment; stdin is at end of file");
    ok(atoi(o + 11) == 4, "the child has only 0, 1, 2 (and ls's own) open (%d)", atoi(o + 11));

    ok(sh("i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789; "
          "i=$((i+1)); done; echo x >&2",
          1000, &status, &n) == 0 && WEXITSTATUS(status) == 0,
       "80 kB of output with a 1000-byte cap");
    o = slurp(out_path);
    ok(!strncmp(o, "0123456789", 10) && strstr(o, "[syncgate serve: 81000 more bytes of this "
                                                  "stream were not kept]") &&
           strlen(o) < 1100,
       "the file holds the first 1000 bytes and a note of what was dropped (%zu bytes)",
       strlen(o));

    char longline[RUNNER_MAX_LINE + 200];
    memset(longline, 'x', sizeof(longline) - 1);
    longline[sizeof(longline) - 1] = '\0';
    char script[RUNNER_MAX_LINE + 300];
    snprintf(script, sizeof(script), "echo %s >&2; echo short >&2", longline);
    ok(sh(script, 1 << 20, &status, &n) == 0 && n == 2 && !strcmp(got[1], "short"),
       "a line over the limit is cut, the next one is whole");

    /* a signal: the child dies of it */
    char *argv[] = {"sh", "-c", "echo started >&2; exec sleep 30", NULL};
    char *envp[] = {NULL};
    struct runner_spec spec = {"/bin/sh", argv, envp, out_path, err_path, 4096};
    struct runner *r;
    size_t lines = 0;
    ok(runner_start(&r, &spec, line_cb, &lines) == 0 && runner_pid(r) > 0, "a sleeping child");
    usleep(100000);
    ok(runner_signal(r, SIGTERM) == 0, "SIGTERM sent");
    ok(runner_wait(r, &status, tick, &ticks) == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
       "it died of SIGTERM");
    ok(ticks >= 1, "the tick was called while waiting (%d)", ticks);
    ok(runner_signal(r, SIGTERM) == -ESRCH, "after it was reaped, no signal is sent");
    runner_free(r);
    runner_free(NULL);

    char *argv2[] = {"nope", NULL};
    struct runner_spec bad = {"/nonexistent/syncgate", argv2, envp, out_path, err_path, 4096};
    ok(runner_start(&r, &bad, NULL, NULL) == -ENOENT && r == NULL,
       "exec of a missing program: -ENOENT, no child left");
    ok(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD, "no zombie left behind");
    struct runner_spec nodir = {"/bin/sh", argv, envp, "/nonexistent/dir/out", err_path, 4096};
    ok(runner_start(&r, &nodir, NULL, NULL) == -ENOENT && r == NULL,
       "an output file that cannot be made: -ENOENT");

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        ok(0, "cleanup");
    return tap_done();
}
