/*
 * Fuzz target: the STAGES environment variable (JSON, read with cJSON into
 * the document tree). The input is its value; it must be refused with a
 * message or give stages that validation promises.
 */
#include "fuzz_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *var = malloc(size + sizeof("STAGES="));
    if (!var)
        return 0;
    memcpy(var, "STAGES=", 7);
    memcpy(var + 7, data, size);
    var[7 + size] = '\0';

    struct config c = {0};
    struct diag d;
    char *const envp[] = {var, NULL};
    int rc = config_resolve(&c, NULL, envp, &d);
    fuzz_check_resolved(rc, &c, &d);
    config_clear(&c);
    free(var);
    return 0;
}
