/*
 * Fuzz target: --set PATH=VALUE arguments. Each input line is one argument
 * (at most 16), applied over the defaults by config_resolve. The paths reach
 * doc_set_path, the values the YAML scalar reader and every field's checks.
 */
#include <stdbool.h>

#include "fuzz_config.h"

#define MAX_SETS 16

/* The path of a --set ends at the first '=' outside {...}, as config.c reads it. */
static const char *set_eq(const char *arg)
{
    int braces = 0;
    for (const char *p = arg; *p; p++) {
        if (*p == '{')
            braces++;
        else if (*p == '}' && braces)
            braces--;
        else if (*p == '=' && !braces)
            return p;
    }
    return NULL;
}

static bool ends_with(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    return len >= wl && !memcmp(s + len - wl, word, wl) && (len == wl || s[len - wl - 1] == '.');
}

/* A secret given with --set (password, bearer token) must not come back in the diagnostic. */
static void check_secret(const char *const *sets, size_t n, size_t which, const struct diag *d)
{
    const char *arg = sets[which];
    const char *eq = set_eq(arg);
    if (!eq)
        return;
    size_t plen = (size_t)(eq - arg);
    const char *value = eq + 1;
    if (!ends_with(arg, plen, "password") && !ends_with(arg, plen, "bearer_token"))
        return;
    if (strlen(value) < 8 || memmem(arg, plen, value, strlen(value)))
        return; /* too short to tell apart from the message's own words */
    for (size_t i = 0; i < n; i++)
        if (i != which && strstr(sets[i], value))
            return; /* another argument may show the same text */
    FUZZ_CHECK(!strstr(d->where, value) && !strstr(d->key, value) && !strstr(d->msg, value),
               "secret value echoed: %s | %s | %s", d->where, d->key, d->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    if (!text)
        return 0;
    const char *sets[MAX_SETS];
    char *lines[MAX_SETS];
    size_t n = fuzz_split_lines(text, lines, MAX_SETS);
    for (size_t i = 0; i < n; i++)
        sets[i] = lines[i];

    struct config c = {0};
    struct diag d;
    struct config_cli cli = {.nsets = n, .sets = sets};
    char *const envp[] = {NULL};
    int rc = config_resolve(&c, &cli, envp, &d);
    if (rc == 0) {
        fuzz_check_config(&c);
        fuzz_check_roundtrip(&c);
    } else {
        fuzz_check_diag(rc, &d);
        for (size_t i = 0; i < n; i++)
            check_secret(sets, n, i, &d);
    }
    config_clear(&c);
    free(text);
    return 0;
}
