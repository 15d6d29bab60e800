/*
 * Fuzz target: K6_PROMETHEUS_RW_* environment values. Each input line is
 * one variable: "SUFFIX=value" becomes K6_PROMETHEUS_RW_SUFFIX=value; a line
 * starting with '+' is taken whole ("+GATEWAY_URL=...", "+X_SERVICE_URL=..."),
 * so the other variables get fuzzed too. What config_resolve accepts must
 * also be accepted by the remote-write encoder (the trend stats especially).
 */
#include "fuzz_config.h"
#include "syncgate/metrics.h"
#include "syncgate/rw.h"

#define MAX_VARS 16
#define RW_PREFIX "K6_PROMETHEUS_RW_"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    if (!text)
        return 0;
    char *lines[MAX_VARS], *envp[MAX_VARS + 1];
    size_t n = fuzz_split_lines(text, lines, MAX_VARS), ne = 0;
    for (size_t i = 0; i < n; i++) {
        const char *l = lines[i];
        bool whole = l[0] == '+';
        size_t len = strlen(l) + sizeof(RW_PREFIX);
        char *v = malloc(len);
        if (!v)
            break;
        snprintf(v, len, "%s%s", whole ? "" : RW_PREFIX, whole ? l + 1 : l);
        envp[ne++] = v;
    }
    envp[ne] = NULL;

    struct config c = {0};
    struct diag d;
    int rc = config_resolve(&c, NULL, envp, &d);
    if (rc == 0) {
        fuzz_check_config(&c);
        char err[256] = "";
        struct rw_encoder *e = rw_encoder_new(&c, err, sizeof(err));
        FUZZ_CHECK(e != NULL, "resolved trend stats %s refused by the encoder: %s",
                   c.metrics.rw.trend_stats ? c.metrics.rw.trend_stats : "(default)", err);
        struct metrics *m = metrics_new();
        struct series *s = m ? metrics_series(m, M_HTTP_REQ_DURATION, NULL) : NULL;
        if (s) {
            series_trend(s, 1500);
            struct rw_batch b;
            FUZZ_CHECK(rw_encode(e, m, 1700000000000, RW_ALL, &b) == 0, "encode failed");
            FUZZ_CHECK(b.len > 0 && b.nseries >= 1, "nothing encoded");
            rw_batch_clear(&b);
        }
        metrics_free(m);
        rw_encoder_free(e);
    } else {
        fuzz_check_diag(rc, &d);
    }
    config_clear(&c);
    for (size_t i = 0; i < ne; i++)
        free(envp[i]);
    free(text);
    return 0;
}
