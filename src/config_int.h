/*
 * config internals shared by config.c (schema, conversion, orchestration),
 * config_edit.c (environment and command-line edits of the document tree)
 * and config_dump.c (the dump). Private to src/: not part of the API.
 */
#ifndef SYNCGATE_CONFIG_INT_H
#define SYNCGATE_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

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

/* url into buf (n bytes) with any user-info password shown as <redacted>; returns buf. */
const char *cfg_redact_url(const char *url, char *buf, size_t n);

/* The variable that overrides the url of the service called name ("a-b" -> "A_B_SERVICE_URL")
 * into buf (n bytes; 128 holds any valid name). */
void cfg_service_env_name(const char *name, char *buf, size_t n);

/* Names of enum log_format, indexed by value, NULL-terminated. */
extern const char *const cfg_log_format_names[];

/* ---- config_edit.c ------------------------------------------------------- */

/* The value of name in envp (NAME=VALUE strings, NULL-terminated; may be NULL), or NULL. */
const char *cfg_env_get(char *const *envp, const char *name);

/* Apply the known variables of envp to ed's tree; 0, -EINVAL (ed->d set) or -ENOMEM. */
int cfg_apply_env(struct edit *ed, char *const *envp);

/* Apply cli's --set arguments, then its options, to ed's tree; returns as cfg_apply_env. */
int cfg_apply_cli(struct edit *ed, const struct config_cli *cli);

#endif
