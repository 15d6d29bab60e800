/*
 * journey: user flows as small compiled programs.
 *
 * A journey is a list of steps; a step is one HTTP request (method, path
 * template, header templates, optional body template) with expectations
 * (status, latency, JSON path values, header substrings, body substring),
 * each of which is a named check, and captures (a JSON path or a response
 * header) that later steps of the same iteration use as ${name}. The profile
 * keys journeys/auth/data/env_allow are converted into these structures by
 * config_journey.c, which also checks every template against what exists
 * (captures made by earlier steps, data columns, allowed variables), so
 * nothing is looked up by name while requests run.
 *
 * A plan is one phase's view of the journeys: which ones run (smoke: those
 * with smoke: true, through gateway.url; load: all, each step at its
 * service's origin) and, when the profile has none, the implicit one-step
 * health journeys built from services[] (one per service, the same requests,
 * checks and series as before journeys existed). Pure module: no I/O.
 */
#ifndef SYNCGATE_JOURNEY_H
#define SYNCGATE_JOURNEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/data.h"
#include "syncgate/jsonpath.h"
#include "syncgate/template.h"

#define JOURNEY_MAX 32
#define JOURNEY_MAX_STEPS 32
#define JOURNEY_MAX_CAPTURES 32 /* named values per journey */
#define JOURNEY_MAX_DATA 16     /* data sets */
#define JOURNEY_MAX_ENV 64      /* env_allow entries */
#define STEP_MAX_HEADERS 16
#define STEP_MAX_EXPECTS 16 /* json, header and body expectations of one step */
#define STEP_MAX_STATUS 8
#define JOURNEY_MAX_WEIGHT 1000

enum expect_kind { EXPECT_JSON, EXPECT_HEADER, EXPECT_BODY };

/* What a JSON expectation wants; a string can hold placeholders. */
enum expect_type { EXPECT_STRING, EXPECT_NUMBER, EXPECT_TRUE, EXPECT_FALSE, EXPECT_NULL };

struct step_expect {
    enum expect_kind kind;
    char *check;       /* check name: "<step> json $.status", "<step> header Location" */
    struct jpath path; /* EXPECT_JSON */
    char *header;      /* EXPECT_HEADER: the header name */
    enum expect_type type;
    struct tpl text; /* EXPECT_STRING value; HEADER and BODY: the substring */
    double number;   /* EXPECT_NUMBER */
};

struct step_capture {
    int slot;          /* index into the journey's capture names */
    char *check;       /* "<step> captures <name>": a capture that finds nothing fails it */
    char *header;      /* from this response header (whole value), else: */
    struct jpath path; /* from this JSON path */
};

struct step_header {
    char *name;
    struct tpl value;
    bool secret; /* never shown (validate prints <redacted>) */
};

struct step {
    char *name;  /* the requests' `name` tag: bounded, never the URL */
    int service; /* index into the configuration's services; -1: path is a full URL */
    char *method;
    struct tpl path; /* appended to the base URL; query allowed */
    size_t nheaders;
    struct step_header headers[STEP_MAX_HEADERS];
    bool has_body;
    struct tpl body;
    enum tpl_enc body_enc; /* JSON for a JSON body, else raw */
    size_t nstatus;
    int status[STEP_MAX_STATUS]; /* expected statuses; the first is the check's name */
    int64_t max_latency;         /* usec; 0: no latency check */
    char *status_check;          /* "<step> status 201" */
    char *latency_check;         /* "<step> latency < 500ms", or NULL */
    size_t nexpects;
    struct step_expect expects[STEP_MAX_EXPECTS];
    size_t ncaptures;
    struct step_capture captures[JOURNEY_MAX_CAPTURES];
    uint64_t needs;     /* capture slots its templates use (bit i: slot i) */
    bool wants_body;    /* some expectation or capture reads the body */
    bool wants_headers; /* some expectation or capture reads a header */
};

struct journey {
    char *name;  /* [a-z][a-z0-9_-]* */
    char *group; /* "::<name>", k6's group tag; "" for the implicit health journeys */
    int weight;
    bool smoke;
    int64_t think_time; /* usec; -1: the phase's think time */
    size_t nsteps;
    struct step *steps;
    size_t ncaptures;
    char *captures[JOURNEY_MAX_CAPTURES]; /* slot names */
    bool uses_auth, uses_data;
};

struct auth_config {
    bool enabled;
    char *token_url;
    char *client_id;
    char *client_secret_file;
    char *client_secret; /* secret: read from the file (or env AUTH_CLIENT_SECRET) */
    char *scope;         /* NULL: none asked */
};

struct data_source {
    char *name;
    char *file;
    struct dataset ds;
};

struct journey_set {
    size_t n;
    struct journey *j; /* owned array of n */
    size_t ndata;
    struct data_source data[JOURNEY_MAX_DATA];
    struct auth_config auth;
    size_t nenv;
    char *env_name[JOURNEY_MAX_ENV];
    char *env_value[JOURNEY_MAX_ENV]; /* read at resolve time; never printed */
};

void journey_clear(struct journey *j);
void step_clear(struct step *s);
void journey_set_clear(struct journey_set *js);

/* Whether status is one the step expects. */
bool step_status_ok(const struct step *s, int status);

/* Pick the next journey by smooth weighted round-robin: credit[] (n entries, zeroed at
 * first) is the caller's state; weights are the journeys' weights. Returns an index. */
size_t journey_pick(const int *weights, int64_t *credit, size_t n);

#endif
