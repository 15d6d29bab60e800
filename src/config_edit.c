/*
 * config_edit: the environment and the command line, applied as edits to the
 * document tree (defaults with the profile merged in) before it is converted.
 * Each edit records where it came from ("env NAME", "--set PATH=..."), so a
 * bad value is reported against its source; secret values are never echoed.
 */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "syncgate/config.h"
#include "syncgate/doc.h"

/* ---- environment ----------------------------------------------------------- */

#define MAX_ENV_VALUE 65536 /* STAGES and friends */

#define RW_PREFIX "K6_PROMETHEUS_RW_"

static const struct {
    const char *var, *path;
} env_paths[] = {
    {"GATEWAY_URL", "gateway.url"},
    {"SSL_CERT_FILE", "ca_file"},
    {"KONG_CONSUMER_HEADER", "gateway.consumer"},
    {"KONG_KEY_FILE", "gateway.key_file"},
    {"ENVIRONMENT", "environment"},
    {"TEST_TYPE", "test_type"},
    {"TESTID", "testid"},
    {"AUTH_TOKEN_URL", "auth.oauth2_client_credentials.token_url"},
    {"AUTH_CLIENT_ID", "auth.oauth2_client_credentials.client_id"},
    {"AUTH_CLIENT_SECRET_FILE", "auth.oauth2_client_credentials.client_secret_file"},
    {"AUTH_CLIENT_SECRET", "auth.oauth2_client_credentials.client_secret"},
    {"K6_SUMMARY_TREND_STATS", "output.summary_trend_stats"},
    {"K6_NO_THRESHOLDS", "no_thresholds"},
    {"ARGOCD_APP_REVISION", "revision"}, /* SYNCGATE_REVISION wins: see apply_env_var */
    {"SYNCGATE_REVISION", "revision"},
    {"SYNCGATE_WEBHOOK_URL", "notify.webhook_url"},
    {RW_PREFIX "SERVER_URL", "metrics.remote_write.server_url"},
    {RW_PREFIX "PUSH_INTERVAL", "metrics.remote_write.push_interval"},
    {RW_PREFIX "TREND_STATS", "metrics.remote_write.trend_stats"},
    {RW_PREFIX "TREND_AS_NATIVE_HISTOGRAM", "metrics.remote_write.trend_as_native_histogram"},
    {RW_PREFIX "STALE_MARKERS", "metrics.remote_write.stale_markers"},
    {RW_PREFIX "INSECURE_SKIP_TLS_VERIFY", "metrics.remote_write.insecure_skip_tls_verify"},
    {RW_PREFIX "USERNAME", "metrics.remote_write.username"},
    {RW_PREFIX "PASSWORD", "metrics.remote_write.password"},
    {RW_PREFIX "BEARER_TOKEN", "metrics.remote_write.bearer_token"},
    {RW_PREFIX "CLIENT_CERTIFICATE", "metrics.remote_write.client_certificate"},
    {RW_PREFIX "CLIENT_CERTIFICATE_KEY", "metrics.remote_write.client_certificate_key"},
};

const char *cfg_env_get(char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++)
        if (!strncmp(envp[i], name, len) && envp[i][len] == '=')
            return envp[i] + len + 1;
    return NULL;
}

/* d->key, a path inside a parsed value (or ""), made a path from the root under base. */
static void key_under(struct diag *d, const char *base)
{
    char rel[sizeof(d->key)];
    memcpy(rel, d->key, sizeof(rel));
    rel[sizeof(rel) - 1] = '\0';
    size_t len =
        (size_t)snprintf(d->key, sizeof(d->key), "%s%s", base, rel[0] && rel[0] != '[' ? "." : "");
    if (len < sizeof(d->key))
        snprintf(d->key + len, sizeof(d->key) - len, "%s", rel);
}

/* Put node at a dotted path; a bad path is reported against the edit's source. */
static int edit_node(struct edit *ed, const char *path, struct doc_node *v,
                     const struct doc_origin *at)
{
    int rc = doc_set_path(ed->doc, ed->root, path, v, at, ed->d);
    if (rc == -EINVAL) {
        char msg[sizeof(ed->d->msg)];
        snprintf(msg, sizeof(msg), "%s", ed->d->msg);
        return cfg_fail(ed->d, at, path, "%s", msg);
    }
    return rc;
}

static int edit_scalar(struct edit *ed, const char *path, const char *value, bool plain,
                       const struct doc_origin *at)
{
    struct doc_node *v = doc_new_scalar(ed->doc, at, value, strlen(value), plain);
    if (!v)
        return -ENOMEM;
    return edit_node(ed, path, v, at);
}

/* The remote-write headers map, made if missing. */
static int rw_headers_map(struct edit *ed, const struct doc_origin *at, struct doc_node **out)
{
    struct doc_node *rw = doc_map_get(doc_map_get(ed->root, "metrics"), "remote_write");
    struct doc_node *h = doc_map_get(rw, "headers");
    if (h && h->kind == DOC_MAP) {
        *out = h;
        return 0;
    }
    h = doc_new_map(ed->doc, at);
    if (!h)
        return -ENOMEM;
    *out = h;
    return edit_node(ed, "metrics.remote_write.headers", h, at);
}

/* Add one header, replacing any of the same name in another case. */
static int put_header(struct edit *ed, const struct doc_origin *at, const char *name, size_t nlen,
                      const char *value, size_t vlen)
{
    struct doc_node *h;
    int rc = rw_headers_map(ed, at, &h);
    if (rc)
        return rc;
    char *key = doc_strndup(ed->doc, name, nlen);
    struct doc_node *v = doc_new_scalar(ed->doc, at, value, vlen, false);
    if (!key || !v)
        return -ENOMEM;
    if (!*key)
        return cfg_fail(ed->d, at, "metrics.remote_write.headers", "empty header name");
    for (struct doc_node *e = h->head; e; e = e->next) {
        if (!strcasecmp(e->key, key)) {
            doc_map_del(h, e->key);
            break;
        }
    }
    return doc_map_put(ed->doc, h, key, at, v);
}

static int env_http_headers(struct edit *ed, const struct doc_origin *at, const char *value)
{
    const char *p = value;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *a = p, *b = end;
        while (a < b && *a == ' ')
            a++;
        if (a < b) {
            if (!colon)
                return cfg_fail(ed->d, at, "metrics.remote_write.headers",
                            "expected Name:value pairs separated by commas, like "
                            "\"X-Scope-OrgID:team1,X-Env:staging\"");
            const char *ne = colon;
            while (ne > a && ne[-1] == ' ')
                ne--;
            const char *vs = colon + 1;
            while (vs < b && *vs == ' ')
                vs++;
            while (b > vs && b[-1] == ' ')
                b--;
            int rc = put_header(ed, at, a, (size_t)(ne - a), vs, (size_t)(b - vs));
            if (rc)
                return rc;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* k6's tags ("a=b,c=d", K6_TAGS; or one --tag a=b): static labels on every series. */
static int put_tags(struct edit *ed, const struct doc_origin *at, const char *value)
{
    char path[300];
    const char *p = value;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p)
            return cfg_fail(ed->d, at, "metrics.labels",
                            "expected NAME=VALUE tags separated by commas, like "
                            "\"team=checkout,region=eu\"");
        size_t nl = (size_t)(eq - p);
        if (nl > 200)
            return cfg_fail(ed->d, at, "metrics.labels", "tag name too long");
        /* the name becomes a path segment: only what a label name may hold gets through */
        snprintf(path, sizeof(path), "metrics.labels.%.*s", (int)nl, p);
        for (size_t i = 0; i < nl; i++)
            if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
                  (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
                return cfg_fail(ed->d, at, "metrics.labels",
                                "tag name \"%.*s\" is not a label name; allowed: "
                                "[a-zA-Z_][a-zA-Z0-9_]*",
                                (int)(nl > 64 ? 64 : nl), p);
        struct doc_node *v = doc_new_scalar(ed->doc, at, eq + 1, len - nl - 1, false);
        if (!v)
            return -ENOMEM;
        int rc = edit_node(ed, path, v, at);
        if (rc)
            return rc;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* NAME_SERVICE_URL: the url of the service whose upper-cased name is NAME. */
static int env_service_url(struct edit *ed, const struct doc_origin *at, const char *var,
                           size_t namelen, const char *value)
{
    struct doc_node *svcs = doc_map_get(ed->root, "services");
    struct doc_node *match = NULL;
    char known[400] = "", envname[128];
    int nmatch = 0;
    for (struct doc_node *e = svcs && svcs->kind == DOC_SEQ ? svcs->head : NULL; e; e = e->next) {
        struct doc_node *nm = doc_map_get(e, "name");
        if (!nm || nm->kind != DOC_SCALAR || strlen(nm->str) > 64)
            continue;
        size_t i = 0;
        for (; nm->str[i]; i++)
            envname[i] = nm->str[i] == '-' ? '_' : (char)toupper((unsigned char)nm->str[i]);
        envname[i] = '\0';
        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s_SERVICE_URL",
                 known[0] ? ", " : "", envname);
        if (i == namelen && !strncmp(var, envname, namelen)) {
            match = e;
            nmatch++;
        }
    }
    if (!match)
        return cfg_fail(ed->d, at, "services",
                        "no service is called %.*s (NAME in NAME_SERVICE_URL is the service name "
                        "in upper case, '_' for '-'; case matters); known: %s",
                        (int)namelen, var, known[0] ? known : "none");
    if (nmatch > 1)
        return cfg_fail(ed->d, at, "services", "more than one service matches %.*s", (int)namelen, var);
    struct doc_node *v = doc_new_scalar(ed->doc, at, value, strlen(value), false);
    if (!v)
        return -ENOMEM;
    return doc_map_put(ed->doc, match, "url", at, v);
}

static int apply_env_var(struct edit *ed, const char *name, size_t nlen, const char *value,
                         int pass)
{
    char var[256];
    if (nlen >= sizeof(var)) {
        /* Too long to be one of ours, but a name in our namespace is a mistake to report. */
        bool ours = !strncmp(name, RW_PREFIX, strlen(RW_PREFIX)) ||
                    !strncmp(name + nlen - 12, "_SERVICE_URL", 12);
        if (!ours || pass)
            return 0;
        char oname[300];
        snprintf(oname, sizeof(oname), "env %.64s...%.*s", name, 24, name + nlen - 24);
        struct doc_origin at = doc_origin(ed->doc, DOC_SRC_ENV, oname);
        if (!at.name)
            return -ENOMEM;
        return cfg_fail(ed->d, &at, "", "variable name is too long (%zu bytes, at most %zu)", nlen,
                        sizeof(var) - 1);
    }
    memcpy(var, name, nlen);
    var[nlen] = '\0';

    bool header = !strncmp(var, RW_PREFIX "HEADERS_", strlen(RW_PREFIX "HEADERS_"));
    /* Pass 0 sets everything but single headers, which pass 1 lays on top of
     * HTTP_HEADERS so the more specific variable wins; so does our revision
     * variable over ArgoCD's. */
    if ((header || !strcmp(var, "SYNCGATE_REVISION")) != (pass == 1))
        return 0;

    bool known = header || !strcmp(var, "STAGES") || !strcmp(var, RW_PREFIX "HTTP_HEADERS") ||
                 !strcmp(var, "K6_TAGS") ||
                 (nlen > 12 && !strcmp(var + nlen - 12, "_SERVICE_URL"));
    const char *path = NULL;
    for (size_t i = 0; i < sizeof(env_paths) / sizeof(env_paths[0]); i++)
        if (!strcmp(var, env_paths[i].var))
            path = env_paths[i].path;
    bool rw = !strncmp(var, RW_PREFIX, strlen(RW_PREFIX));
    if (!known && !path && !rw)
        return 0;

    char oname[300];
    snprintf(oname, sizeof(oname), "env %s", var);
    struct doc_origin at = doc_origin(ed->doc, DOC_SRC_ENV, oname);
    if (!at.name)
        return -ENOMEM;
    if (!*value)
        return 0; /* set but empty: treated as unset, like k6's scripts do */
    if (strlen(value) > MAX_ENV_VALUE)
        return cfg_fail(ed->d, &at, "", "value is too long (at most %d bytes)", MAX_ENV_VALUE);

    if (path)
        return edit_scalar(ed, path, value, false, &at);
    if (!strcmp(var, "K6_TAGS"))
        return put_tags(ed, &at, value);
    if (!strcmp(var, "STAGES")) {
        struct doc_node *stages;
        /* cJSON takes any bytes: without this they would reach messages and labels raw */
        if (!cfg_utf8_valid(value))
            return cfg_fail(ed->d, &at, "load.stages", "value is not valid UTF-8");
        int rc = doc_parse_json(ed->doc, value, DOC_SRC_ENV, oname, &stages, ed->d);
        if (rc == -EINVAL) {
            key_under(ed->d, "load.stages");
            size_t ml = strlen(ed->d->msg);
            if (!strncmp(ed->d->msg, "invalid JSON", 12))
                snprintf(ed->d->msg + ml, sizeof(ed->d->msg) - ml,
                         "; expected [{\"duration\":\"30s\",\"target\":10}, ...]");
        }
        if (rc)
            return rc;
        if (stages->kind != DOC_SEQ)
            return cfg_fail(ed->d, &at, "load.stages",
                        "expected a JSON array like [{\"duration\":\"30s\",\"target\":10}]");
        return edit_node(ed, "load.stages", stages, &at);
    }
    if (!strcmp(var, RW_PREFIX "HTTP_HEADERS"))
        return env_http_headers(ed, &at, value);
    if (header) {
        const char *hn = var + strlen(RW_PREFIX "HEADERS_");
        return put_header(ed, &at, hn, strlen(hn), value, strlen(value));
    }
    if (rw)
        return cfg_fail(ed->d, &at, "",
                    "unknown %s* variable; known: SERVER_URL, PUSH_INTERVAL, TREND_STATS, "
                    "TREND_AS_NATIVE_HISTOGRAM, STALE_MARKERS, INSECURE_SKIP_TLS_VERIFY, "
                    "USERNAME, PASSWORD, BEARER_TOKEN, CLIENT_CERTIFICATE, "
                    "CLIENT_CERTIFICATE_KEY, HEADERS_<Name>, HTTP_HEADERS",
                    RW_PREFIX);
    return env_service_url(ed, &at, var, nlen - 12, value);
}

int cfg_apply_env(struct edit *ed, char *const *envp)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; envp && envp[i]; i++) {
            const char *eq = strchr(envp[i], '=');
            if (!eq)
                continue;
            int rc = apply_env_var(ed, envp[i], (size_t)(eq - envp[i]), eq + 1, pass);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- command line ------------------------------------------------------------ */

/*
 * Does a --set of path carry a secret, so its value must not be echoed? A
 * secret's own path, anything below it, and a section a secret lives in
 * (a mapping value for "metrics" may hold the remote-write password), also
 * when a bad index or selector follows it ("metrics[0]").
 */
static bool secret_path(const char *path, size_t len)
{
    static const char *const holders[] = {"metrics", "metrics.remote_write"};
    for (size_t i = 0; i < sizeof(holders) / sizeof(holders[0]); i++) {
        size_t hl = strlen(holders[i]);
        if (len >= hl && !memcmp(path, holders[i], hl) &&
            (len == hl || path[hl] == '[' || path[hl] == '{'))
            return true;
    }
    static const char *const secrets[] = {"password", "bearer_token", "headers", "client_secret",
                                          "oauth2_client_credentials", "auth"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        const char *p = path;
        size_t sl = strlen(secrets[i]);
        while ((p = memmem(p, len - (size_t)(p - path), secrets[i], sl))) {
            bool starts = p == path || p[-1] == '.';
            bool ends =
                (size_t)(p - path) + sl == len || p[sl] == '.' || p[sl] == '[' || p[sl] == '{';
            if (starts && ends)
                return true;
            p += sl;
        }
    }
    return false;
}

static int apply_set(struct edit *ed, const char *arg)
{
    char oname[600], red[MAX_STRING + 16];
    /* The path ends at the first '=' outside {...} (sub-metric selectors). */
    const char *eq = NULL;
    int braces = 0;
    for (const char *p = arg; *p && !eq; p++) {
        if (*p == '{')
            braces++;
        else if (*p == '}' && braces)
            braces--;
        else if (*p == '=' && !braces)
            eq = p;
    }
    /* Without a path end (an unclosed '{'), judge secrecy by the first '=' anywhere. */
    const char *cut = eq ? eq : strchr(arg, '=');
    /* config_redact_url hides the password of one URL: a value with more is hidden whole,
     * and so is one that names a secret key (whatever path it was aimed at). */
    const char *url = cut ? strstr(cut, "://") : NULL;
    bool hide = cut && (secret_path(arg, (size_t)(cut - arg)) || (url && strstr(url + 3, "://")));
    static const char *const words[] = {"password", "bearer_token", "authorization", "headers",
                                        "client_secret"};
    for (size_t i = 0; cut && i < sizeof(words) / sizeof(words[0]); i++)
        hide = hide || strcasestr(cut, words[i]);
    if (hide)
        snprintf(oname, sizeof(oname), "--set %.*s=<redacted>", (int)(cut - arg), arg);
    else
        snprintf(oname, sizeof(oname), "--set %s", config_redact_url(arg, red, sizeof(red)));
    struct doc_origin at = doc_origin(ed->doc, DOC_SRC_SET, oname);
    if (!at.name)
        return -ENOMEM;
    if (!eq && braces)
        return cfg_fail(ed->d, &at, "", "'{' without a matching '}' in the path");
    if (!eq || eq == arg)
        return cfg_fail(ed->d, &at, "", "expected PATH=VALUE, like load.think_time=500ms");
    const char *value = eq + 1;
    if (strlen(value) > MAX_ENV_VALUE)
        return cfg_fail(ed->d, &at, "", "value is too long (at most %d bytes)", MAX_ENV_VALUE);
    char *path = doc_strndup(ed->doc, arg, (size_t)(eq - arg));
    if (!path)
        return -ENOMEM;
    /* Path segments become keys (threshold selectors, labels) and are printed back. */
    if (!cfg_utf8_valid(path) || cfg_has_control(path))
        return cfg_fail(ed->d, &at, "", "the path must be UTF-8 text without control characters");
    struct doc_node *v;
    int rc = doc_parse_yaml(ed->doc, value, strlen(value), DOC_SRC_SET, oname, &v, ed->d);
    if (rc == -EINVAL) {
        key_under(ed->d, path);
        return rc;
    }
    if (rc)
        return rc;
    return edit_node(ed, path, v, &at);
}

int cfg_apply_cli(struct edit *ed, const struct config_cli *cli)
{
    static const struct {
        size_t off;
        const char *opt, *path;
    } opts[] = {
        {offsetof(struct config_cli, summary_export), "--summary-export", "output.summary_export"},
        {offsetof(struct config_cli, junit), "--junit", "output.junit"},
        {offsetof(struct config_cli, report), "--report", "output.report"},
        {offsetof(struct config_cli, log_format), "--log-format", "output.log_format"},
    };
    for (size_t i = 0; i < cli->nsets; i++) {
        int rc = apply_set(ed, cli->sets[i]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        const char *v = *(const char *const *)((const unsigned char *)cli + opts[i].off);
        if (!v)
            continue;
        struct doc_origin at = doc_origin(ed->doc, DOC_SRC_CLI, opts[i].opt);
        if (!at.name)
            return -ENOMEM;
        int rc = edit_scalar(ed, opts[i].path, v, false, &at);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < cli->ntags; i++) {
        char name[300];
        snprintf(name, sizeof(name), "--tag %.200s", cli->tags[i]);
        struct doc_origin at = doc_origin(ed->doc, DOC_SRC_CLI, name);
        if (!at.name)
            return -ENOMEM;
        if (strchr(cli->tags[i], ','))
            return cfg_fail(ed->d, &at, "metrics.labels", "one NAME=VALUE per --tag");
        int rc = put_tags(ed, &at, cli->tags[i]);
        if (rc)
            return rc;
    }
    if (cli->summary_trend_stats) {
        struct doc_origin at = doc_origin(ed->doc, DOC_SRC_CLI, "--summary-trend-stats");
        int rc = at.name ? edit_scalar(ed, "output.summary_trend_stats", cli->summary_trend_stats,
                                       false, &at)
                         : -ENOMEM;
        if (rc)
            return rc;
    }
    if (cli->no_thresholds) {
        struct doc_origin at = doc_origin(ed->doc, DOC_SRC_CLI, "--no-thresholds");
        int rc = at.name ? edit_scalar(ed, "no_thresholds", "true", true, &at) : -ENOMEM;
        if (rc)
            return rc;
    }
    if (cli->quiet) {
        struct doc_origin at = doc_origin(ed->doc, DOC_SRC_CLI, "--quiet");
        if (!at.name)
            return -ENOMEM;
        return edit_scalar(ed, "output.quiet", "true", true, &at);
    }
    return 0;
}
