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

static bool diag_has(const struct diag *d, const char *text)
{
    return strstr(d->where, text) || strstr(d->key, text) || strstr(d->msg, text);
}

/* Letters rotated by 13, digits by 5: the same shape to every parser, other text. */
static void rotate(char *s)
{
    for (; *s; s++) {
        if (*s >= 'a' && *s <= 'z')
            *s = (char)('a' + (*s - 'a' + 13) % 26);
        else if (*s >= 'A' && *s <= 'Z')
            *s = (char)('A' + (*s - 'A' + 13) % 26);
        else if (*s >= '0' && *s <= '9')
            *s = (char)('0' + (*s - '0' + 5) % 10);
    }
}

/*
 * A secret given with --set (password, bearer token) must not come back in
 * the diagnostic. Its text may still be there by chance ("services" is also
 * a key name): it counts as echoed only if, with the value rotated, the
 * rotated text shows instead.
 */
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
    if (strlen(value) < 8 || memmem(arg, plen, value, strlen(value)) || !diag_has(d, value))
        return;
    for (size_t i = 0; i < n; i++)
        if (i != which && strstr(sets[i], value))
            return; /* another argument may show the same text */

    const char *other[MAX_SETS];
    char *rot = strdup(arg);
    if (!rot)
        return;
    rotate(rot + plen + 1);
    for (size_t i = 0; i < n; i++)
        other[i] = i == which ? rot : sets[i];
    struct config c = {0};
    struct diag d2;
    struct config_cli cli = {.nsets = n, .sets = other};
    char *const envp[] = {NULL};
    if (config_resolve(&c, &cli, envp, &d2) != 0)
        FUZZ_CHECK(strcmp(rot + plen + 1, value) == 0 || !diag_has(&d2, rot + plen + 1),
                   "secret value echoed: %s | %s | %s", d->where, d->key, d->msg);
    config_clear(&c);
    free(rot);
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
    fuzz_check_resolved(rc, &c, &d);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            check_secret(sets, n, i, &d);
    }
    config_clear(&c);
    free(text);
    return 0;
}
