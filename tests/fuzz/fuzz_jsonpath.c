/*
 * Fuzz target: JSON paths and the validating JSON scanner. The first line
 * is a path, the rest a document. A path that parses has at most
 * JP_MAX_STEPS steps; json_valid agrees with cJSON on what is JSON (up to
 * nesting depth and cJSON's leniency, so only "we accept => cJSON accepts" is
 * checked), and a value found inside a valid document lies inside it, is
 * itself valid JSON, and its text fits the buffer sizes given or says so.
 */
#include <cjson/cJSON.h>
#include <errno.h>

#include "fuzz.h"
#include "syncgate/jsonpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    if (!text)
        return 0;
    char *nl = strchr(text, '\n');
    const char *doc = nl ? nl + 1 : "";
    if (nl)
        *nl = '\0';
    size_t len = strlen(doc);
    struct jpath p;
    char err[256];

    bool valid = json_valid(doc, len);
    if (valid) {
        cJSON *c = cJSON_ParseWithLength(doc, len);
        FUZZ_CHECK(c != NULL, "valid for us, not for cJSON: %s", doc);
        cJSON_Delete(c);
    }
    int rc = jp_parse(&p, text, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -EINVAL, "jp_parse rc %d", rc);
    if (rc == 0) {
        FUZZ_CHECK(p.n <= JP_MAX_STEPS, "%zu steps", p.n);
        struct json_span v;
        if (valid && jp_find(&p, doc, len, &v) == 0) {
            FUZZ_CHECK(v.p >= doc && v.p + v.len <= doc + len && v.len > 0, "value outside");
            FUZZ_CHECK(json_valid(v.p, v.len), "found value is not JSON");
            for (size_t cap = 1; cap < 64; cap += 7) {
                char *out = malloc(cap);
                ssize_t n = json_text(&v, out, cap);
                FUZZ_CHECK(n == -ENOSPC || (n >= 0 && (size_t)n < cap && out[n] == '\0'),
                           "json_text %zd for cap %zu", n, cap);
                free(out);
            }
        }
        struct jpath q;
        FUZZ_CHECK(jp_copy(&q, &p) == 0 && q.n == p.n, "copy differs");
        jp_clear(&q);
        jp_clear(&p);
    } else {
        FUZZ_CHECK(err[0], "no message");
    }
    free(text);
    return 0;
}
