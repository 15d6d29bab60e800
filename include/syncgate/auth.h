/*
 * auth: the OAuth2 access token (client credentials, RFC 6749 section 4.4)
 * that every VU of a run shares as ${auth.token}.
 *
 * auth_start() fetches the first token before a phase sends anything, so a
 * wrong secret or a dead token endpoint is one clear failure (exit 116), not
 * a thousand failed requests. A thread of its own then renews the token
 * ahead of its expiry (a fifth of its lifetime before, at most a minute) and
 * once after a request using it was answered 401; requests never wait for it
 * and never fetch one themselves. While a renewal fails the old token stays
 * in use and the renewal is retried with backoff. Readers copy the token
 * under a sequence lock: no lock is taken on the request path.
 *
 * The client secret goes out only in the Basic authorization header of the
 * token request; neither it nor a token ever reaches a log line.
 */
#ifndef SYNCGATE_AUTH_H
#define SYNCGATE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "syncgate/journey.h"
#include "syncgate/log.h"

#define AUTH_TOKEN_MAX 8192   /* bytes of an access token */
#define AUTH_RESPONSE_MAX 65536 /* bytes of a token endpoint's answer */

struct auth;

/*
 * Fetch the first token (blocking, at most timeout usec) and start the
 * renewal thread. ca_file: CA bundle or NULL. Returns the auth, or NULL with
 * *err a negative errno and why (n bytes) saying what the endpoint answered
 * (-EACCES: the endpoint refused the client; -EPROTO: an answer that is no
 * token; -ETIMEDOUT, -ECONNREFUSED...: it could not be reached).
 */
struct auth *auth_start(const struct auth_config *cfg, const char *ca_file, int64_t timeout,
                        struct log *log, int *err, char *why, size_t n);

/* Stop the renewal thread and wipe the token. NULL is a no-op. */
void auth_stop(struct auth *a);

/* The current token into buf (n bytes, NUL-terminated); returns its length or -ENOSPC.
 * Signature of struct jvu_ctx's token(): ud is the auth. */
int auth_token(void *ud, char *buf, size_t n);

/* A request with the token was answered 401: renew once (repeated 401s with the same
 * token ask once). Thread-safe, never blocks. */
void auth_unauthorized(struct auth *a);

/* Tokens fetched so far (the first one included). */
uint64_t auth_fetches(const struct auth *a);

/*
 * Parse a token endpoint's 200 answer (body, len bytes): the access_token into
 * token (n bytes) and expires_in (seconds, 0 when absent) into *expires.
 * Returns the token's length, or -EPROTO with why (wn bytes). Pure.
 */
ssize_t auth_parse_token(const char *body, size_t len, char *token, size_t n, int64_t *expires,
                         char *why, size_t wn);

/* RFC 6749 section 2.3.1: the Basic credentials "base64(urlencode(id):urlencode(secret))"
 * into out (n bytes). Returns the length or -ENOSPC. Pure. */
ssize_t auth_basic(const char *id, const char *secret, char *out, size_t n);

#endif
