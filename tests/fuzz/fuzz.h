/*
 * Shared helpers of the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Every target defines LLVMFuzzerTestOneInput. It is linked either with
 * libFuzzer (meson -Dfuzzing=true, clang) or with driver.c, which replays a
 * corpus directory as a plain program under `meson test`. A target states
 * what must hold of any input with FUZZ_CHECK: a false check aborts, which
 * both libFuzzer and the replay driver report as a crash.
 */
#ifndef SYNCGATE_FUZZ_H
#define SYNCGATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated copy of the input (it stops at an embedded NUL); NULL on ENOMEM. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

/*
 * Split text (modified in place) into at most max lines at '\n'; returns how
 * many were stored in lines. A target reads one line per argument or
 * environment variable, so inputs stay readable in the corpus.
 */
static inline size_t fuzz_split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    char *p = text;
    while (n < max && p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        lines[n++] = p;
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

#endif
