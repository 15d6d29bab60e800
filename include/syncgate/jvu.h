/*
 * jvu: what one virtual user does inside a journey, apart from sending.
 *
 * A VU starts an iteration (jvu_start: picks the journey by weight, takes
 * the iteration's data row, forgets the last iteration's captures), then for
 * each step asks jvu_prepare() for the request (the URL, header lines and
 * body, expanded into the VU's own buffers), lets its transport send it
 * (libcurl's multi interface in load, the easy one in smoke), and hands the
 * response to jvu_judge(), which evaluates the step's expectations and keeps
 * its captures. A step whose templates need a value the iteration did not
 * capture is not sent: the rest of the iteration is skipped.
 *
 * Memory: a VU's buffers are made the first time it runs a step that needs
 * them, small, and grow (doubling) only as far as what they held needed,
 * each up to a cap (JVU_*): a VU's memory follows what its journeys send and
 * keep, and stays bounded whatever the server answers. Nothing here does I/O
 * or reads a clock; the token comes from a function of the caller's.
 */
#ifndef SYNCGATE_JVU_H
#define SYNCGATE_JVU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "syncgate/plan.h"

#define JVU_VARS_BYTES 4096      /* captured values of one iteration, all together */
#define JVU_VALUE_MAX 1024       /* one captured value */
#define JVU_URL_MAX 4096         /* an expanded URL */
#define JVU_HEADER_BYTES 8192    /* the expanded header lines of one request */
#define JVU_BODY_MAX 65536       /* an expanded request body */
#define JVU_RESPONSE_MAX (1 << 20) /* response body bytes kept for checks and captures */
#define JVU_RESP_HEADERS 4096    /* response header lines kept for checks and captures */
#define JVU_EXTRA_HEADERS 4      /* phase headers (the gateway's consumer and key) */

/* Read-only during a phase; shared by every VU of it. */
struct jvu_ctx {
    const struct plan *plan;
    /* The current token into buf (n bytes); returns its length or a negative errno. */
    int (*token)(void *ud, char *buf, size_t n);
    void *token_ud;
    _Atomic uint64_t *rows;     /* data rows handed out so far (shared by the phase) */
    /* a distributed run's instance i of n takes rows i, i + n, ...: the pods go round-robin
     * over the rows together (0 and 0 or 1: rows 0, 1, 2, ...) */
    unsigned row_offset, row_stride;
    const char *const *extra;   /* header lines every request carries ("Name: value") */
    size_t nextra;
};

struct jvu {
    uint32_t journey, step; /* the current journey (plan index) and step */
    uint64_t vu;            /* 1-based */
    uint64_t iteration;     /* this VU's current iteration, from 0 */
    uint64_t started;       /* iterations started */
    uint64_t row;           /* the data row of the iteration */
    uint64_t rng;           /* xorshift state, never 0 */
    int64_t *credit;        /* weighted pick state, one per plan journey */
    uint64_t have;          /* capture slots set in this iteration */
    uint16_t var_off[JOURNEY_MAX_CAPTURES], var_len[JOURNEY_MAX_CAPTURES];
    size_t vars_used;
    struct jvu_buf {
        char *p;
        size_t cap;
    } vars, url, hdr, body; /* up to JVU_VARS_BYTES, _URL_MAX, _HEADER_BYTES, _BODY_MAX */
    struct curl_slist hnode[STEP_MAX_HEADERS + JVU_EXTRA_HEADERS + 2];
    char *resp;     /* grows up to JVU_RESPONSE_MAX */
    size_t resp_len, resp_cap;
    bool resp_over; /* the body was longer than JVU_RESPONSE_MAX (or memory ran out) */
    struct jvu_buf rhdr; /* up to JVU_RESP_HEADERS: "name: value\n" lines the step reads */
    size_t rhdr_len;
    bool rhdr_over;
};

/*
 * Set up v for VU number vu (1-based) of plan; seed is mixed with vu for the VU's random
 * numbers. VU k starts (k - 1) picks into the weighted order, so VUs that start together
 * spread over the journeys. 0 or -ENOMEM.
 */
int jvu_init(struct jvu *v, uint64_t vu, const struct plan *plan, uint64_t seed);
void jvu_clear(struct jvu *v);

/* Start the next iteration: pick the journey (weighted), take a data row when the journey
 * uses data. Returns the journey's plan index. */
uint32_t jvu_start(struct jvu *v, const struct jvu_ctx *c);

/* Start an iteration of a given journey (smoke runs each once). */
void jvu_start_journey(struct jvu *v, const struct jvu_ctx *c, uint32_t journey);

/* The request of the current step. */
struct jreq {
    const char *url;            /* the full URL (the plan's static one when it has no placeholder) */
    bool static_url;            /* url is the plan's: a transport may keep it pre-parsed */
    struct curl_slist *headers; /* NULL when none; valid until the next jvu_prepare */
    const char *body;           /* NULL when none */
    size_t body_len;
};

enum jvu_outcome {
    JVU_SEND, /* *r is ready */
    JVU_SKIP, /* a capture this step needs was not made: end the iteration */
    JVU_FAIL, /* expansion failed (too long, a header value with a line break): why says so */
};

/* Expand the current step into *r. why (n bytes) gets the reason of JVU_SKIP and JVU_FAIL. */
enum jvu_outcome jvu_prepare(struct jvu *v, const struct jvu_ctx *c, struct jreq *r, char *why,
                             size_t n);

/* Response parts kept by the transport for jvu_judge. Call before sending. */
void jvu_reset_response(struct jvu *v);
/* Body bytes of the response (write callback): kept up to JVU_RESPONSE_MAX. */
void jvu_body_data(struct jvu *v, const char *p, size_t n);
/* One response header line (header callback): kept when the step reads that header. */
void jvu_header_line(struct jvu *v, const struct step *s, const char *line, size_t n);

/* The outcome of one step's response: one entry per check of the step. */
struct jvu_verdict {
    bool status;  /* transport fine and status expected */
    bool latency; /* under max_latency (meaningful when the step has a latency check) */
    size_t nexpects;
    bool expect[STEP_MAX_EXPECTS];
    size_t ncaptures;
    bool capture[JOURNEY_MAX_CAPTURES]; /* the capture found its value */
    size_t captures_failed;
};

/*
 * Judge the current step's response: got_response is false when the transport
 * failed (then every check fails and nothing is captured), duration is the
 * request's duration (usec). Captures that succeed are kept for later steps.
 * Moves to the next step. Returns true when the journey has more steps.
 */
bool jvu_judge(struct jvu *v, const struct jvu_ctx *c, bool got_response, int status,
               int64_t duration, struct jvu_verdict *out);

/* Whether the current step wants the response body or headers kept. */
bool jvu_wants_body(const struct jvu *v, const struct jvu_ctx *c);
bool jvu_wants_headers(const struct jvu *v, const struct jvu_ctx *c);

/* The current plan step. */
const struct plan_step *jvu_step(const struct jvu *v, const struct jvu_ctx *c);

#endif
