/*
 * errbuf: the one way pure parsers report why they refused their input, as a
 * message in the caller's buffer. Private to src/: not part of the API.
 */
#ifndef SYNCGATE_ERRBUF_H
#define SYNCGATE_ERRBUF_H

#include <stddef.h>

/* Formats the message into err (when err is not NULL and errlen > 0, cut to fit)
 * and returns -EINVAL, so a parser can `return errbuf_fail(err, errlen, ...)`. */
__attribute__((format(printf, 3, 4))) int errbuf_fail(char *err, size_t errlen, const char *fmt,
                                                      ...);

#endif
