/* journey: the compiled journey structures, their release, and the weighted pick. */
#include "syncgate/journey.h"

#include <stdlib.h>
#include <string.h>

void step_clear(struct step *s)
{
    free(s->name);
    free(s->method);
    tpl_clear(&s->path);
    for (size_t i = 0; i < s->nheaders; i++) {
        free(s->headers[i].name);
        tpl_clear(&s->headers[i].value);
    }
    tpl_clear(&s->body);
    free(s->status_check);
    free(s->latency_check);
    for (size_t i = 0; i < s->nexpects; i++) {
        struct step_expect *e = &s->expects[i];
        free(e->check);
        jp_clear(&e->path);
        free(e->header);
        tpl_clear(&e->text);
    }
    for (size_t i = 0; i < s->ncaptures; i++) {
        free(s->captures[i].header);
        free(s->captures[i].check);
        jp_clear(&s->captures[i].path);
    }
    memset(s, 0, sizeof(*s));
}

void journey_clear(struct journey *j)
{
    free(j->name);
    free(j->group);
    for (size_t i = 0; j->steps && i < j->nsteps; i++)
        step_clear(&j->steps[i]);
    free(j->steps);
    for (size_t i = 0; i < j->ncaptures; i++)
        free(j->captures[i]);
    memset(j, 0, sizeof(*j));
}

void journey_set_clear(struct journey_set *js)
{
    for (size_t i = 0; i < js->n; i++)
        journey_clear(&js->j[i]);
    free(js->j);
    for (size_t i = 0; i < js->ndata; i++) {
        free(js->data[i].name);
        free(js->data[i].file);
        data_clear(&js->data[i].ds);
    }
    struct auth_config *a = &js->auth;
    free(a->token_url);
    free(a->client_id);
    free(a->client_secret_file);
    if (a->client_secret)
        explicit_bzero(a->client_secret, strlen(a->client_secret));
    free(a->client_secret);
    free(a->scope);
    for (size_t i = 0; i < js->nenv; i++) {
        free(js->env_name[i]);
        if (js->env_value[i])
            explicit_bzero(js->env_value[i], strlen(js->env_value[i]));
        free(js->env_value[i]);
    }
    memset(js, 0, sizeof(*js));
}

bool step_status_ok(const struct step *s, int status)
{
    for (size_t i = 0; i < s->nstatus; i++)
        if (s->status[i] == status)
            return true;
    return false;
}

size_t journey_pick(const int *weights, int64_t *credit, size_t n)
{
    /* Smooth weighted round-robin (nginx's): every pick adds each weight to its credit,
     * takes the largest credit and charges it the total, so picks interleave evenly. */
    int64_t total = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        credit[i] += weights[i];
        total += weights[i];
        if (credit[i] > credit[best])
            best = i;
    }
    credit[best] -= total;
    return best;
}
