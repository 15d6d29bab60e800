/*
 * Fuzz target: the YAML profile. The input is a profile, applied in memory
 * over the defaults (config_apply_profile) and resolved from a file the way
 * the program reads it (config_resolve). Either it is refused with a
 * message, or it yields a valid configuration whose dump resolves again to
 * the same text.
 */
#include "fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    struct diag d;
    int rc;

    if (config_init(&c) != 0)
        return 0;
    rc = config_apply_profile(&c, (const char *)data, size, "fuzz.yaml", &d);
    if (rc != 0)
        fuzz_check_diag(rc, &d);
    config_clear(&c);

    char path[64];
    int fd = fuzz_memfd(data, size, path, sizeof(path));
    FUZZ_CHECK(fd >= 0, "memfd: %s", strerror(errno));
    struct config_cli cli = {.profile = path};
    char *const envp[] = {NULL};
    rc = config_resolve(&c, &cli, envp, &d);
    close(fd);
    fuzz_check_resolved(rc, &c, &d);
    config_clear(&c);
    return 0;
}
