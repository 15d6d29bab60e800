/*
 * Fuzz target: what `syncgate serve` reads from a client, through the pure
 * parsers of api.h. The whole input is a POST /api/tests/run body
 * (api_parse_run); its lines are also, in turn, a "METHOD PATH" request line
 * (api_route), a query string "k=v&k=v" (api_parse_list_arg), a time
 * (api_parse_time) and an Authorization value (api_bearer). Whatever the
 * input: an accepted body names a known test type, a valid profile name and
 * only whitelisted overrides as --set KEY=VALUE; a refusal is one printable
 * line; nothing leaks (ASan) or reads past the input.
 */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "syncgate/api.h"

static void check_message(const char *err)
{
    FUZZ_CHECK(err[0] != '\0', "a refusal without a reason");
    for (const unsigned char *p = (const unsigned char *)err; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f, "control byte 0x%02x in \"%s\"", *p, err);
}

static bool whitelisted(const char *set)
{
    for (size_t i = 0; api_override_keys[i]; i++) {
        size_t n = strlen(api_override_keys[i]);
        if (!strncmp(set, api_override_keys[i], n) && set[n] == '=')
            return true;
    }
    return false;
}

static void body(const uint8_t *data, size_t size)
{
    struct api_run_request r;
    char err[600] = "";
    int rc = api_parse_run((const char *)data, size, &r, err, sizeof(err));
    if (rc == -ENOMEM)
        return;
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL, "rc %d", rc);
        FUZZ_CHECK(r.nsets == 0 && !r.overrides, "a refused body left overrides");
        check_message(err);
        return;
    }
    FUZZ_CHECK(!strcmp(r.test_type, "smoke") || !strcmp(r.test_type, "load") ||
                   !strcmp(r.test_type, "run"),
               "test type \"%s\"", r.test_type);
    FUZZ_CHECK(!r.profile[0] || api_profile_name_ok(r.profile), "profile \"%s\"", r.profile);
    FUZZ_CHECK(r.nsets <= API_MAX_OVERRIDES, "%zu overrides", r.nsets);
    for (size_t i = 0; i < r.nsets; i++)
        FUZZ_CHECK(whitelisted(r.sets[i]), "override \"%s\" is not whitelisted", r.sets[i]);
    FUZZ_CHECK(r.overrides && r.overrides[0] == '{', "overrides \"%s\"",
               r.overrides ? r.overrides : "(null)");
    api_run_request_clear(&r);
}

static void route(char *line)
{
    char *sp = strchr(line, ' ');
    if (!sp)
        return;
    *sp = '\0';
    struct api_route r;
    int rc = api_route(line, sp + 1, &r);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EPERM, "rc %d", rc);
    if (rc == 0 && r.ep >= API_GET)
        FUZZ_CHECK(r.id > 0 && r.id <= (INT64_C(1) << 53), "id %lld", (long long)r.id);
    if (rc == -EPERM)
        FUZZ_CHECK(r.allow && r.allow[0], "405 without Allow");
    *sp = ' ';
}

static void query(char *line)
{
    struct rundb_filter f = {0};
    unsigned seen = 0;
    char err[512];
    for (char *save = NULL, *kv = strtok_r(line, "&", &save); kv;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq = '\0';
        err[0] = '\0';
        if (api_parse_list_arg(&f, &seen, kv, eq ? eq + 1 : NULL, err, sizeof(err)) < 0) {
            check_message(err);
            break;
        }
        FUZZ_CHECK(f.limit <= RUNDB_MAX_LIST, "limit %zu", f.limit);
        FUZZ_CHECK(!f.profile || api_profile_name_ok(f.profile), "profile filter");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    body(data, size);
    char *text = fuzz_strndup(data, size), *lines[4];
    if (!text)
        return 0;
    size_t n = fuzz_split_lines(text, lines, 4);
    if (n > 0)
        route(lines[0]);
    if (n > 1)
        query(lines[1]);
    if (n > 2) {
        int64_t ms = -1;
        if (api_parse_time(lines[2], &ms) == 0)
            FUZZ_CHECK(ms >= -86400000LL * 2, "time %lld before 1970", (long long)ms);
    }
    if (n > 3) {
        size_t len = 0;
        const char *tok = api_bearer(lines[3], &len);
        if (tok) {
            FUZZ_CHECK(tok >= lines[3] && tok + len <= lines[3] + strlen(lines[3]) && len > 0,
                       "token outside its header");
            FUZZ_CHECK(api_token_equal(tok, len, tok, len), "a token differs from itself");
        }
    }
    free(text);
    return 0;
}
