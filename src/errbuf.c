#include "errbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int errbuf_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}
