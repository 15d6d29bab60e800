/*
 * config: the one resolved configuration of a run.
 *
 * Built from, in increasing precedence: built-in defaults, the YAML profile,
 * the environment, and the command line (--set PATH=VALUE and the options).
 * Every value is validated here, before anything is sent: a bad value is
 * reported through struct diag naming where it came from (file:line:col and
 * key, or the environment variable, or the --set argument).
 *
 * The profile is read into a small document tree (libyaml; STAGES through
 * cJSON), environment and --set edits are applied to that tree, and the tree
 * is converted into struct config by one schema table, so every source gets
 * the same checks and the same messages.
 */
#ifndef SYNCGATE_CONFIG_H
#define SYNCGATE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/journey.h"
#include "syncgate/threshold.h"

#define CONFIG_MAX_SERVICES 64
#define CONFIG_MAX_STAGES 64
#define CONFIG_MAX_THRESHOLDS 64
#define CONFIG_MAX_LABELS 16
#define CONFIG_MAX_HEADERS 32
#define CONFIG_MAX_PROFILE_BYTES (1024 * 1024)
/* Bytes of any URL, and of a smoke or ready path: smoke requests gateway.url
 * + path, which therefore always fits CONFIG_MAX_URL + CONFIG_MAX_PATH + 1. */
#define CONFIG_MAX_URL 2048
#define CONFIG_MAX_PATH 2047

/* A diagnostic for user input: where and what. */
struct diag {
    char where[512]; /* "profiles/x.yaml:12:5", "env STAGES", "--set load.think_time=x" */
    char key[256];   /* "load.stages[1].duration" */
    char msg[512];   /* "invalid duration \"3x\"" */
};

/* "where: key: msg" in buf; returns buf. */
const char *diag_format(const struct diag *d, char *buf, size_t n);

struct kv {
    char *key;
    char *value;
};

struct service {
    char *name;       /* [a-z0-9_-]+, unique */
    char *smoke_path; /* appended to gateway.url for smoke; NULL: not smoke-checked */
    char *url;        /* direct load URL; NULL: not load-tested */
    char *method;     /* "GET" */
    int expect_status;
    int64_t max_latency; /* usec */
};

struct stage {
    int64_t duration; /* usec */
    int target;       /* VUs */
};

enum executor_kind {
    EX_CONSTANT_VUS,
    EX_RAMPING_VUS,
    EX_CONSTANT_ARRIVAL_RATE,
    EX_RAMPING_ARRIVAL_RATE,
    EX_PER_VU_ITERATIONS,
    EX_SHARED_ITERATIONS,
};

#define CONFIG_MAX_SCENARIOS 16
#define SCENARIO_JOURNEYS -1 /* the profile's journeys by weight (health without journeys) */
#define SCENARIO_HEALTH -2   /* the services' health requests */

/* One load scenario (k6's scenarios option); see executor.h for the executors. */
struct scenario {
    char *name; /* the `scenario` tag */
    enum executor_kind executor;
    int journey; /* index into journeys, SCENARIO_JOURNEYS or SCENARIO_HEALTH */
    int vus, start_vus, iterations, pre_allocated_vus, max_vus;
    int64_t duration, max_duration, start_time, graceful_stop, graceful_ramp_down; /* usec */
    int64_t rate, start_rate; /* iterations per time_unit */
    int64_t time_unit;        /* usec */
    size_t nstages;
    struct stage stages[CONFIG_MAX_STAGES]; /* targets: VUs, or a rate per time_unit */
    size_t ntags;
    struct kv tags[3]; /* extra tags on its series: with the tags every request carries, 3 fit */
};

struct threshold_set {
    size_t n;
    struct threshold t[CONFIG_MAX_THRESHOLDS];
};

struct rw_config {
    char *server_url; /* NULL: no push */
    int64_t push_interval;
    char *trend_stats; /* "p(95),p(99),min,max" */
    bool native_histogram;
    bool stale_markers;
    bool insecure_skip_tls_verify;
    char *username;
    char *password; /* secret */
    char *bearer_token; /* secret */
    char *client_cert, *client_key;
    size_t nheaders;
    struct kv headers[CONFIG_MAX_HEADERS]; /* values are secret in output */
};

enum log_format { LOG_FORMAT_AUTO, LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

/* How the baseline of a baseline threshold is made from the runs found (baseline.aggregate). */
enum baseline_aggregate { BASELINE_MEDIAN, BASELINE_MEAN, BASELINE_MIN, BASELINE_MAX };
/* What a baseline threshold is when fewer than baseline.min_runs runs exist (baseline.missing). */
enum baseline_missing { BASELINE_MISSING_PASS, BASELINE_MISSING_FAIL, BASELINE_MISSING_INCONCLUSIVE };
/* The webhook body (notify.format). */
enum notify_format { NOTIFY_JSON, NOTIFY_SLACK };

/* Names of the enums above, indexed by value, NULL-terminated. */
extern const char *const config_aggregate_names[];
extern const char *const config_missing_names[];
extern const char *const config_notify_format_names[];

struct config {
    char *profile_path; /* NULL: built-in defaults only */
    char *environment;  /* label value */
    char *test_type;    /* NULL: the phase ("smoke"/"load") */
    char *testid;       /* generated when not given */
    char *instance;     /* host name by default */
    char *ca_file;      /* CA bundle for every HTTPS request (env SSL_CERT_FILE); NULL: system's */
    char *revision;     /* deployed revision (env SYNCGATE_REVISION, ARGOCD_APP_REVISION); NULL */

    struct {
        char *url;
        char *consumer_header; /* "X-Consumer-Username" */
        char *consumer;        /* "test-runner" */
        char *key_file;
        char *key_header; /* "apikey" */
        char *key;        /* secret read from key_file at resolve time */
        char *ca_file;    /* CA bundle for the gateway; NULL: the top-level ca_file */
        char *ready_path; /* "/health"; NULL disables the readiness wait */
        int64_t ready_timeout;
        int ready_status; /* 200 */
    } gateway;

    size_t nservices;
    struct service services[CONFIG_MAX_SERVICES];
    char services_where[256]; /* where the services list came from, for config_check_load */

    struct {
        int64_t duration;
        int iterations; /* 0: run for duration; else exactly this many */
        int retries;
        int64_t think_time;
        int64_t request_timeout;
        struct threshold_set thresholds;
    } smoke;

    struct {
        size_t nstages;
        struct stage stages[CONFIG_MAX_STAGES];
        int start_vus; /* VUs before the first stage (k6 startVUs; 1 like its stages shortcut) */
        int64_t think_time;
        int64_t graceful_ramp_down;
        int64_t request_timeout;
        int threads; /* 0: one per available CPU */
        struct threshold_set thresholds;
        /* What load runs: load.scenarios, or one ramping-vus scenario "load" made of the
         * stages above (the shorthand); never empty once resolved. */
        size_t nscenarios;
        struct scenario *scenarios;
        bool scenarios_given; /* load.scenarios (or a k6 shortcut option) set them */
    } load;

    struct {
        size_t nlabels;
        struct kv labels[CONFIG_MAX_LABELS];
        bool require_delivery;
        struct rw_config rw;
    } metrics;

    /* user flows: journeys, and the auth, data and env_allow they use */
    struct journey_set journeys;

    /* things worth saying that are not errors (a K6_* variable syncgate does not read, a
     * shortcut that replaced the profile's scenarios); main prints them */
#define CONFIG_MAX_WARNINGS 16
    size_t nwarnings;
    char *warnings[CONFIG_MAX_WARNINGS];

    bool no_thresholds;        /* --no-thresholds (K6_NO_THRESHOLDS): nothing is judged */
    char *summary_trend_stats; /* --summary-trend-stats: the trend columns of the summary */

    /* Baseline thresholds: where and how earlier runs are read back (see baseline.h). */
    struct {
        char *source; /* Prometheus base URL; NULL: the remote-write server's origin */
        int runs;     /* newest passing runs the baseline is made of (5) */
        int min_runs; /* fewer than this: `missing` decides (1) */
        int aggregate; /* enum baseline_aggregate */
        int64_t max_age; /* usec: runs older than this are not history */
        char *pin_testid; /* compare with this one run instead; NULL: the newest runs */
        int missing;      /* enum baseline_missing */
        int min_count;    /* fewer samples in this run: inconclusive (baseline thresholds) */
        int64_t timeout;  /* usec, every query of a run together */
    } baseline;

    /* Where the verdict goes besides the outputs: termination message, webhook. */
    struct {
        char *termination_log;  /* "/dev/termination-log"; NULL: none */
        char *webhook_url;      /* secret (env SYNCGATE_WEBHOOK_URL or webhook_url_file) */
        char *webhook_url_file; /* where webhook_url was read from, or NULL */
        int format;             /* enum notify_format */
        int64_t timeout;        /* usec the webhook may add before the exit, retries included */
        char *dashboard_url;    /* link in the digest, "{testid}" replaced; NULL: none */
    } notify;

    /*
     * A distributed run (scale-out, fleet.h): this process is instance `index` of
     * `instances`, the pods of a Kubernetes Indexed Job, and runs its slice of the load
     * (split.h); instance 0 coordinates. Set by the environment and --instances only (never
     * a profile: every pod reads the same profile). instances 1: a run of its own.
     */
    struct {
        int index;           /* JOB_COMPLETION_INDEX (0) */
        int instances;       /* SYNCGATE_INSTANCES, --instances (1) */
        char *coordinator;   /* SYNCGATE_COORDINATOR "host:port"; NULL when alone */
        char *host;          /* its host (brackets of an IPv6 address removed) */
        int port;
        char *token_file;    /* SYNCGATE_PEER_TOKEN_FILE */
        char *token;         /* secret: the shared token read from token_file */
        int64_t register_timeout; /* usec: SYNCGATE_REGISTER_TIMEOUT (2m) */
        bool testid_generated;    /* no TESTID: the peers take the coordinator's */
    } scaleout;

    /* outputs (command line, or profile "output:" section) */
    char *summary_export;
    char *junit;
    char *report; /* self-contained HTML report */
    enum log_format log_format;
    bool quiet;
};

/* Command-line inputs that take part in resolution (main.c parses argv). */
struct config_cli {
    const char *profile;
    const char *summary_export;
    const char *junit;
    const char *report;
    const char *log_format;
    bool quiet;
    size_t nsets;
    const char *const *sets; /* "PATH=VALUE" strings */
    /* k6's execution shortcuts and habits (NULL/0: not given) */
    const char *vus, *duration, *iterations;
    size_t nstages;
    const char *const *stages; /* --stage DURATION:TARGET, in order */
    size_t ntags;
    const char *const *tags; /* --tag NAME=VALUE */
    const char *summary_trend_stats;
    bool no_thresholds;
    const char *instances; /* --instances N (a distributed run's size) */
};

/* Built-in defaults (the KubeStock services). Returns 0 or -ENOMEM. */
int config_init(struct config *c);
/* Free everything; safe on a zeroed or half-built config. */
void config_clear(struct config *c);

/*
 * Resolve the whole configuration: defaults, the profile (cli->profile, else
 * SYNCGATE_PROFILE in envp, else none), environment, command line. envp is a
 * NULL-terminated "NAME=value" array (the process environment in main, a
 * literal in tests). Reads the profile and gateway.key_file from disk. Returns
 * 0, or a negative errno with d filled.
 * c must be zeroed or hold a configuration (config_init, an earlier resolve):
 * what it held is freed first. On failure it is left safe to config_clear().
 * Empty environment variables count as unset.
 */
int config_resolve(struct config *c, const struct config_cli *cli, char *const *envp,
                   struct diag *d);

/*
 * Apply a profile held in memory (name is used in diagnostics only) on top of
 * what c holds. For unit tests and config_resolve. Returns 0 or -EINVAL with d.
 * Sections merge into c key by key; lists, label/header maps and threshold
 * sets the profile names replace c's whole. On failure c may be partly
 * updated but is always safe to config_clear().
 */
int config_apply_profile(struct config *c, const char *buf, size_t len, const char *name,
                         struct diag *d);

/*
 * What only load needs, for the commands that run it (load, run), before anything is
 * sent: a service with a url. A profile without any url is valid for `smoke` only.
 * Returns 0, or -EINVAL with d filled (where the services list came from).
 */
int config_check_load(const struct config *c, struct diag *d);

/*
 * A URL or a path as anything shown to people shows it (validate, messages,
 * log lines): the password of any user info and the value of every query
 * parameter replaced by "<redacted>" (either may carry a key:
 * http://u:pw@host, /health?apikey=...), the rest as it is. Into buf (n > 0
 * bytes, cut to n - 1); returns buf. The one place URLs and paths from the
 * configuration are made safe to show.
 */
const char *config_redact_url(const char *url, char *buf, size_t n);

/*
 * Write the effective configuration as YAML to buf (secrets as "<redacted>",
 * URLs and paths through config_redact_url).
 * Returns the length that the full text needs (like snprintf).
 */
size_t config_dump(const struct config *c, char *buf, size_t n);

#endif
