/* A scenario of the given executor with every count at 1 and a 1 s time unit: the start
 * of the executor and split tests' cases. */
#ifndef SYNCGATE_TEST_SCENARIO_BASE_H
#define SYNCGATE_TEST_SCENARIO_BASE_H

#include <string.h>

#include "syncgate/executor.h"
#include "syncgate/units.h"

static inline struct scenario base(enum executor_kind kind)
{
    struct scenario s;
    memset(&s, 0, sizeof(s));
    s.executor = kind;
    s.time_unit = USEC_PER_SEC;
    s.vus = 1;
    s.start_vus = 1;
    s.iterations = 1;
    return s;
}

#endif
