/* log: JSON or text event lines, one per event, never interleaved. */
#include "syncgate/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syncgate/units.h"

struct log {
    FILE *out;
    bool json, quiet;
    char *environment, *testid, *test_type;
    pthread_mutex_t lock;
};

static const char *level_names[] = {"debug", "info", "warn", "error"};

struct log *log_new(FILE *out, enum log_format fmt, bool quiet, const char *environment,
                    const char *testid)
{
    struct log *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->out = out;
    l->json = fmt == LOG_FORMAT_JSON || (fmt == LOG_FORMAT_AUTO && !isatty(STDOUT_FILENO));
    l->quiet = quiet;
    l->environment = strdup(environment ? environment : "");
    l->testid = strdup(testid ? testid : "");
    l->test_type = strdup("");
    pthread_mutex_init(&l->lock, NULL);
    if (!l->environment || !l->testid || !l->test_type) {
        log_free(l);
        return NULL;
    }
    return l;
}

void log_free(struct log *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l->environment);
    free(l->testid);
    free(l->test_type);
    free(l);
}

void log_set_test_type(struct log *l, const char *test_type)
{
    char *t = strdup(test_type ? test_type : "");
    if (!t)
        return;
    pthread_mutex_lock(&l->lock);
    free(l->test_type);
    l->test_type = t;
    pthread_mutex_unlock(&l->lock);
}

static void format_time(char *buf, size_t n)
{
    int64_t now = units_now_wall();
    time_t secs = (time_t)(now / USEC_PER_SEC);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03dZ", (int)(now % USEC_PER_SEC / 1000));
}

cJSON *log_begin(struct log *l, const char *event)
{
    char ts[40];
    cJSON *ev = cJSON_CreateObject();
    if (!ev)
        return NULL;
    format_time(ts, sizeof(ts));
    cJSON_AddStringToObject(ev, "time", ts);
    cJSON_AddStringToObject(ev, "level", "info");
    cJSON_AddStringToObject(ev, "event", event);
    pthread_mutex_lock(&l->lock);
    cJSON_AddStringToObject(ev, "environment", l->environment);
    cJSON_AddStringToObject(ev, "test_type", l->test_type);
    pthread_mutex_unlock(&l->lock);
    cJSON_AddStringToObject(ev, "testid", l->testid);
    return ev;
}

/* "time level event k=v k=v": the common labels are left out for people. */
static char *render_text(const cJSON *ev)
{
    size_t n = 0, size = LOG_MAX_LINE + 1;
    char *line = malloc(size);
    if (!line)
        return NULL;
    line[0] = '\0';
    for (const cJSON *f = ev->child; f && n < size; f = f->next) {
        const char *k = f->string;
        if (!strcmp(k, "environment") || !strcmp(k, "testid") || !strcmp(k, "test_type"))
            continue;
        char *printed = cJSON_IsString(f) ? NULL : cJSON_PrintUnformatted(f);
        const char *val = printed ? printed : f->valuestring;
        bool bare = !strcmp(k, "time") || !strcmp(k, "level") || !strcmp(k, "event");
        n += (size_t)snprintf(line + n, size - n, "%s%s%s%s", n ? " " : "", bare ? "" : k,
                              bare ? "" : "=", val ? val : "");
        free(printed);
    }
    return line; /* snprintf truncated at LOG_MAX_LINE if it had to */
}

/* JSON under Loki's line limit: shorten the longest strings until it fits. */
static char *render_json(cJSON *ev)
{
    for (size_t cap = 4096;; cap /= 4) {
        char *line = cJSON_PrintUnformatted(ev);
        if (!line || strlen(line) <= LOG_MAX_LINE || cap < 16)
            return line;
        free(line);
        for (cJSON *f = ev->child; f; f = f->next)
            if (cJSON_IsString(f) && strlen(f->valuestring) > cap)
                strcpy(f->valuestring + cap - 3, "...");
    }
}

void log_emit(struct log *l, enum log_level level, cJSON *ev)
{
    if (!ev)
        return;
    if (l->quiet && level <= LOG_INFO) {
        cJSON_Delete(ev);
        return;
    }
    cJSON_ReplaceItemInObject(ev, "level", cJSON_CreateString(level_names[level]));
    char *line = l->json ? render_json(ev) : render_text(ev);
    if (line) {
        pthread_mutex_lock(&l->lock);
        fputs(line, l->out);
        fputc('\n', l->out);
        fflush(l->out);
        pthread_mutex_unlock(&l->lock);
    }
    free(line);
    cJSON_Delete(ev);
}

void log_msg(struct log *l, enum log_level level, const char *event, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *ev = log_begin(l, event);
    cJSON_AddStringToObject(ev, "message", msg);
    log_emit(l, level, ev);
}

void log_raw(struct log *l, const char *line, size_t len)
{
    if (l->quiet && !memmem(line, len, "\"level\":\"warn\"", 14) &&
        !memmem(line, len, "\"level\":\"error\"", 15))
        return;
    pthread_mutex_lock(&l->lock);
    fwrite(line, 1, len, l->out);
    fputc('\n', l->out);
    fflush(l->out);
    pthread_mutex_unlock(&l->lock);
}
