/*
 * cli: the command line of the CLI commands (see cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "utf8.h"

const char *const command_names[] = {"run",     "smoke", "load", "validate",
                                     "version", "help",  "serve"};

void cli_usage(FILE *out)
{
    fputs("usage: syncgate <command> [options]\n"
          "commands:\n"
          "  run        smoke, then load if smoke passed\n"
          "  smoke      smoke checks through the gateway only\n"
          "  load       ramping load against services directly only\n"
          "  validate   print the effective configuration, send nothing\n"
          "  serve      the test-runner service: an HTTP API that starts runs and keeps\n"
          "             their history (syncgate serve --help)\n"
          "  version    print the version\n"
          "options:\n"
          "  -p, --profile FILE        YAML profile (env SYNCGATE_PROFILE)\n"
          "      --summary-export FILE k6-compatible JSON summary\n"
          "      --junit FILE          JUnit XML report\n"
          "      --report FILE         self-contained HTML report with charts\n"
          "      --log-format json|text\n"
          "      --set PATH=VALUE      override one profile value (repeatable)\n"
          "  -q, --quiet               only warnings and errors in the log\n"
          "k6's options, with k6's meanings (they replace the profile's load.scenarios or\n"
          "load.stages as they replace a script's):\n"
          "  -u, --vus N               VUs of the shortcut scenario (K6_VUS)\n"
          "  -d, --duration D          constant VUs for D (K6_DURATION)\n"
          "  -i, --iterations N        N iterations shared by the VUs (K6_ITERATIONS)\n"
          "  -s, --stage D:T           a ramping stage, repeatable (K6_STAGES)\n"
          "      --tag NAME=VALUE      a label on every series, repeatable (K6_TAGS)\n"
          "      --summary-trend-stats LIST  trend columns of the summary (K6_SUMMARY_TREND_STATS)\n"
          "      --no-thresholds       judge no threshold (K6_NO_THRESHOLDS)\n"
          "a distributed run (the pods of an Indexed Job; see the README):\n"
          "      --instances N         how many instances run the load together\n"
          "                            (SYNCGATE_INSTANCES; the index is JOB_COMPLETION_INDEX)\n",
          out);
}

/* What each option with a value expects, as the usage text writes it. */
static const char *value_name(int val)
{
    switch (val) {
    case 'E': return "PATH=VALUE";
    case 'L': return "json|text";
    case 'u':
    case 'i':
    case 'X': return "N";
    case 'd': return "DURATION";
    case 's': return "DURATION:TARGET";
    case 'T': return "NAME=VALUE";
    case 'K': return "LIST";
    default: return "FILE";
    }
}

#define SEE_HELP " (see syncgate --help)"

/*
 * getopt_long's complaint in one "syncgate: " line: opterr is off, so its
 * own message (prefixed with argv[0]) and the usage text are never printed.
 * arg is the command-line element getopt_long stopped at.
 */
static void option_error(int c, const char *arg, const struct option *opts)
{
    char buf[400];
    const char *eq = strchr(arg, '=');
    size_t len = strncmp(arg, "--", 2) == 0 && eq ? (size_t)(eq - arg) : strlen(arg);
    const struct option *o = NULL;

    for (size_t i = 0; opts[i].name; i++)
        if (opts[i].val == optopt)
            o = &opts[i];
    if (c == ':') {
        /* a long option, perhaps abbreviated, is named in full; -p as typed */
        if (o && strncmp(arg, "--", 2) == 0)
            fprintf(stderr, "syncgate: --%s: needs %s" SEE_HELP "\n", o->name, value_name(optopt));
        else
            fprintf(stderr, "syncgate: -%c: needs %s" SEE_HELP "\n", optopt, value_name(optopt));
        return;
    }
    if (optopt && o && eq && strncmp(arg, "--", 2) == 0 &&
        strncmp(arg + 2, o->name, (size_t)(eq - arg - 2)) == 0) {
        fprintf(stderr, "syncgate: --%s: takes no value" SEE_HELP "\n", o->name);
        return;
    }
    if (optopt) {
        char ch[2] = {(char)optopt, '\0'};
        fprintf(stderr, "syncgate: -%s: unknown option" SEE_HELP "\n",
                utf8_escape(ch, 1, false, buf, sizeof(buf)));
        return;
    }
    /* an unknown long option, or a prefix of more than one */
    size_t nmatch = 0;
    char names[200] = "";
    for (size_t i = 0; opts[i].name && len > 2; i++)
        if (strncmp(opts[i].name, arg + 2, len - 2) == 0) {
            size_t k = strlen(names);
            snprintf(names + k, sizeof(names) - k, "%s--%s", nmatch ? ", " : "", opts[i].name);
            nmatch++;
        }
    utf8_escape(arg, len, false, buf, sizeof(buf));
    if (nmatch > 1)
        fprintf(stderr, "syncgate: %s: ambiguous option: %s?" SEE_HELP "\n", buf, names);
    else
        fprintf(stderr, "syncgate: %s: unknown option" SEE_HELP "\n", buf);
}

/* An empty name is a mistake (an unset shell variable), never "off": says so. */
static bool empty_file_name(const char *option, const char *value)
{
    if (*value)
        return false;
    fprintf(stderr, "syncgate: %s: empty file name\n", option);
    return true;
}

/* Returns 0, or EXIT_INVALID_CONFIG after printing why (or -1 after help). */
int cli_parse(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"profile", required_argument, NULL, 'p'},
        {"summary-export", required_argument, NULL, 'S'},
        {"junit", required_argument, NULL, 'J'},
        {"report", required_argument, NULL, 'R'},
        {"log-format", required_argument, NULL, 'L'},
        {"set", required_argument, NULL, 'E'},
        {"quiet", no_argument, NULL, 'q'},
        {"vus", required_argument, NULL, 'u'},
        {"duration", required_argument, NULL, 'd'},
        {"iterations", required_argument, NULL, 'i'},
        {"stage", required_argument, NULL, 's'},
        {"tag", required_argument, NULL, 'T'},
        {"summary-trend-stats", required_argument, NULL, 'K'},
        {"no-thresholds", no_argument, NULL, 'N'},
        {"instances", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    char buf[400];
    int c, have_cmd = 0;

    memset(a, 0, sizeof(*a));
    a->cli.sets = a->sets;
    a->cli.stages = a->stages;
    a->cli.tags = a->tags;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:qhu:d:i:s:", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (empty_file_name("--profile", optarg))
                return EXIT_INVALID_CONFIG;
            a->cli.profile = optarg;
            break;
        case 'S':
            if (empty_file_name("--summary-export", optarg))
                return EXIT_INVALID_CONFIG;
            a->cli.summary_export = optarg;
            break;
        case 'J':
            if (empty_file_name("--junit", optarg))
                return EXIT_INVALID_CONFIG;
            a->cli.junit = optarg;
            break;
        case 'R':
            if (empty_file_name("--report", optarg))
                return EXIT_INVALID_CONFIG;
            a->cli.report = optarg;
            break;
        case 'L': a->cli.log_format = optarg; break;
        case 'q': a->cli.quiet = true; break;
        case 'E':
            if (a->cli.nsets == sizeof(a->sets) / sizeof(a->sets[0])) {
                fputs("syncgate: --set: too many overrides\n", stderr);
                return EXIT_INVALID_CONFIG;
            }
            a->sets[a->cli.nsets++] = optarg;
            break;
        case 'u': a->cli.vus = optarg; break;
        case 'd': a->cli.duration = optarg; break;
        case 'i': a->cli.iterations = optarg; break;
        case 's':
            if (a->cli.nstages == sizeof(a->stages) / sizeof(a->stages[0])) {
                fputs("syncgate: --stage: too many stages\n", stderr);
                return EXIT_INVALID_CONFIG;
            }
            a->stages[a->cli.nstages++] = optarg;
            break;
        case 'T':
            if (a->cli.ntags == sizeof(a->tags) / sizeof(a->tags[0])) {
                fputs("syncgate: --tag: too many tags\n", stderr);
                return EXIT_INVALID_CONFIG;
            }
            a->tags[a->cli.ntags++] = optarg;
            break;
        case 'K': a->cli.summary_trend_stats = optarg; break;
        case 'N': a->cli.no_thresholds = true; break;
        case 'X': a->cli.instances = optarg; break;
        case 'V': a->cmd = CMD_VERSION; have_cmd = 1; break;
        case 'h': cli_usage(stdout); return -1;
        default:
            /* '?' or ':'; for an error inside a group like -qx, optind has not moved on */
            option_error(c, optind > 1 ? argv[optind - 1] : "", opts);
            return EXIT_INVALID_CONFIG;
        }
    }
    if (optind < argc && !have_cmd) {
        const char *name = argv[optind++];
        for (size_t i = 0; i < sizeof(command_names) / sizeof(command_names[0]); i++)
            if (strcmp(name, command_names[i]) == 0) {
                a->cmd = (enum command)i;
                have_cmd = 1;
            }
        if (!have_cmd) {
            fprintf(stderr,
                    "syncgate: unknown command \"%s\"; commands: run, smoke, load, validate, "
                    "serve, version" SEE_HELP "\n",
                    utf8_escape(name, strlen(name), false, buf, sizeof(buf)));
            return EXIT_INVALID_CONFIG;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "syncgate: extra argument \"%s\": one command at a time" SEE_HELP "\n",
                utf8_escape(argv[optind], strlen(argv[optind]), false, buf, sizeof(buf)));
        return EXIT_INVALID_CONFIG;
    }
    if (!have_cmd) {
        fputs("syncgate: no command: run, smoke, load, validate or version" SEE_HELP "\n",
              stderr);
        return EXIT_INVALID_CONFIG;
    }
    if (a->cmd == CMD_HELP) {
        cli_usage(stdout);
        return -1;
    }
    if (a->cmd == CMD_SERVE) {
        /* main() hands "syncgate serve ..." to serve_main before this parser runs */
        fputs("syncgate: serve takes its options after the command: syncgate serve [options]"
              " (see syncgate serve --help)\n", stderr);
        return EXIT_INVALID_CONFIG;
    }
    return 0;
}

/*
 * Whether an output file can be written at the end, checked before anything
 * is sent: finding out after a ten-minute run loses its report. Creates
 * nothing. Returns 0, or -errno with why in msg.
 */
int cli_check_output(const char *option, const char *key, const char *path, char *msg,
                        size_t n)
{
    struct stat st;
    char dir[4096];
    int err = 0;

    if (!path)
        return 0;
    if (stat(path, &st) == 0)
        err = S_ISDIR(st.st_mode) ? EISDIR : access(path, W_OK) < 0 ? errno : 0;
    else if (errno != ENOENT)
        err = errno;
    else {
        /* a new file: its directory must exist and take it */
        const char *slash = strrchr(path, '/');
        size_t len = slash ? (size_t)(slash - path) : 1;
        if (slash == path)
            len = 1;
        if (len >= sizeof(dir))
            err = ENAMETOOLONG;
        else {
            memcpy(dir, slash ? path : ".", len);
            dir[len] = '\0';
            if (access(dir, W_OK | X_OK) < 0)
                err = errno;
        }
    }
    if (err)
        snprintf(msg, n, "%s (%s): cannot write \"%s\": %s", option, key, path, strerror(err));
    return -err;
}

/*
 * Where a path leads, for comparing two output paths: realpath() of the file,
 * or of its directory plus the last name for a file not made yet. False when
 * neither resolves.
 */
static bool output_place(const char *path, char *out, size_t n)
{
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t len = slash ? (size_t)(slash - path) : 0;

    if (realpath(path, real))
        return snprintf(out, n, "%s", real) < (int)n;
    if (errno != ENOENT || len >= sizeof(dir))
        return false;
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    if (!realpath(dir, real))
        return false;
    return snprintf(out, n, "%s/%s", strcmp(real, "/") ? real : "", slash ? slash + 1 : path) <
           (int)n;
}

/*
 * Whether the JUnit file would overwrite the summary export: the same text,
 * the same place once resolved, or the same regular file by another name (a
 * hard link). A device such as /dev/null can take both.
 */
bool cli_same_output(const char *a, const char *b)
{
    struct stat sa, sb;
    char pa[PATH_MAX], pb[PATH_MAX];

    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino && S_ISREG(sa.st_mode);
    if (strcmp(a, b) == 0)
        return true;
    return output_place(a, pa, sizeof(pa)) && output_place(b, pb, sizeof(pb)) &&
           strcmp(pa, pb) == 0;
}
