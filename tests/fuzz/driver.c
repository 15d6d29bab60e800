/*
 * Replay driver for the fuzz targets when they are not built with libFuzzer:
 * feeds every file named on the command line (every regular file of a named
 * directory, in name order) to LLVMFuzzerTestOneInput once, and reports each
 * as a TAP line. A crash or a failed check inside a target aborts, which the
 * test runner reports as a failure naming the last input started.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Corpus files are small seeds; anything larger is a mistake, not an input. */
#define DRIVER_MAX_INPUT (4 * 1024 * 1024)

static int ninputs;

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("not ok %d - %s: %s\n", ++ninputs, path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(DRIVER_MAX_INPUT + 1);
    size_t len = buf ? fread(buf, 1, DRIVER_MAX_INPUT + 1, f) : 0;
    int err = !buf || ferror(f) || len > DRIVER_MAX_INPUT;
    fclose(f);
    if (err) {
        printf("not ok %d - %s: unreadable or larger than %d bytes\n", ++ninputs, path,
               DRIVER_MAX_INPUT);
        free(buf);
        return -1;
    }
    fprintf(stderr, "replaying %s\n", path);
    /* An exact-size copy, so a read past the input is caught by ASan and valgrind. */
    uint8_t *in = malloc(len ? len : 1);
    if (!in) {
        free(buf);
        return -1;
    }
    memcpy(in, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(in, len);
    free(in);
    printf("ok %d - %s\n", ++ninputs, path);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("not ok %d - %s: %s\n", ++ninputs, dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof(*names));
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (rc == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) && replay_file(path) < 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR|FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            rc |= replay_dir(argv[i]);
        else
            rc |= replay_file(argv[i]);
    }
    if (ninputs == 0) {
        /* An empty corpus would make this test pass without testing anything. */
        printf("not ok 1 - no inputs found\n");
        ninputs = 1;
        rc = -1;
    }
    printf("1..%d\n", ninputs);
    return rc ? 1 : 0;
}
