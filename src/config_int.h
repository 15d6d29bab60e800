/*
 * config internals shared by config.c (schema, conversion, orchestration),
 * config_edit.c (environment and command-line edits of the document tree)
 * and config_dump.c (the dump). Private to src/: not part of the API.
 */
#ifndef SYNCGATE_CONFIG_INT_H
#define SYNCGATE_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "syncgate/config.h"
#include "syncgate/doc.h"

#define MAX_STRING 4096 /* any one string value */

/* The tree being edited (defaults with the profile merged in); d gets errors. */
struct edit {
    struct doc *doc;
    struct doc_node *root;
    struct diag *d;
};

/* ---- config.c ------------------------------------------------------------ */

/* Fill d with a message at `at` (may be NULL) about key (may be NULL); returns -EINVAL. */
__attribute__((format(printf, 4, 5))) int cfg_fail(struct diag *d, const struct doc_origin *at,
                                               const char *key, const char *fmt, ...);

/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
bool cfg_utf8_valid(const char *s);

/* Whether s holds an ASCII control character (below 0x20, or 0x7f). */
bool cfg_has_control(const char *s);
/* Read fd into buf until end of file or cap - 1 bytes (a longer file fills buf: the caller
 * tells "too large" from len == cap - 1); retries EINTR. Returns 0 or an errno value. */
int cfg_read_fd(int fd, char *buf, size_t cap, size_t *len);

/* The variable that overrides the url of the service called name ("a-b" -> "A_B_SERVICE_URL")
 * into buf (n bytes; 128 holds any valid name). */
void cfg_service_env_name(const char *name, char *buf, size_t n);

/* Names of enum log_format, indexed by value, NULL-terminated. */
extern const char *const cfg_log_format_names[];

/* Helpers of config.c's converter for config_journey.c: as their config.c names. */
const char *cfg_quote(const char *s, bool secret, char *buf, size_t n);
const char *cfg_kind_name(const struct doc_node *n);
int cfg_check_string(struct diag *d, const struct doc_node *n, const char *key, bool secret);
int cfg_parse_int(struct diag *d, const struct doc_node *n, const char *key, int64_t min,
                  int64_t max, int64_t *out);
int cfg_parse_bool(struct diag *d, const struct doc_node *n, const char *key, bool *out);
int cfg_parse_dur(struct diag *d, const struct doc_node *n, const char *key, int64_t min,
                  int64_t max, int64_t *out);
/* A http(s) URL with a host (n is a scalar). */
int cfg_check_url(struct diag *d, const struct doc_node *n, const char *key);
/* NULL when s is a method syncgate sends, else what is allowed. */
const char *cfg_check_method(const char *s);
bool cfg_header_name_ok(const char *s);
/* Headers syncgate or libcurl set (Host, Content-Length, ...): not for a profile. */
bool cfg_header_reserved(const char *name);

/* ---- config_journey.c ---------------------------------------------------- */

/*
 * Convert the journeys, auth, data and env_allow sections of the tree under
 * root into c->journeys, once every other section is converted (templates
 * are checked against services, data columns, auth and env_allow). envp gives
 * the values of env_allow's variables (NULL: none set). 0, -EINVAL with d, or
 * -ENOMEM.
 */
int cfg_convert_journeys(struct diag *d, struct config *c, const struct doc_node *root,
                         char *const *envp);

/* NULL when name may be a label of a series (a static label, a scenario tag), else why not. */
const char *cfg_check_label(const char *name);
/* NULL when s may be a label value, else why not. */
const char *cfg_check_label_value(const char *s);

/* ---- config_scenario.c --------------------------------------------------- */

/*
 * Decide what load runs (c->load.scenarios) from the tree's load.scenarios and
 * load.stages, and the k6 shortcuts of cli and envp, layered as k6 layers
 * them; warnings go to c->warnings. Call after the journeys are converted.
 * 0, -EINVAL with d, or -ENOMEM.
 */
int cfg_convert_scenarios(struct diag *d, struct config *c, const struct doc_node *root,
                          const struct config_cli *cli, char *const *envp);
void cfg_scenario_clear(struct scenario *sc);

/* ---- config_scaleout.c --------------------------------------------------- */

/*
 * The options of a distributed run from cli and envp into c->scaleout (and the index
 * appended to c->instance when there are several instances), once everything else is
 * converted (the scenarios and the instance label are). 0, -EINVAL with d, or -ENOMEM.
 */
int cfg_convert_scaleout(struct diag *d, struct config *c, const struct config_cli *cli,
                         char *const *envp);
void cfg_scaleout_clear(struct config *c);

/* ---- config_edit.c ------------------------------------------------------- */

/* The value of name in envp (NAME=VALUE strings, NULL-terminated; may be NULL), or NULL. */
const char *cfg_env_get(char *const *envp, const char *name);

/* Apply the known variables of envp to ed's tree; 0, -EINVAL (ed->d set) or -ENOMEM. */
int cfg_apply_env(struct edit *ed, char *const *envp);

/* Apply cli's --set arguments, then its options, to ed's tree; returns as cfg_apply_env. */
int cfg_apply_cli(struct edit *ed, const struct config_cli *cli);

#endif
