/*
 * load: the ramping-VUs load phase, straight at each service's url.
 */
#ifndef SYNCGATE_LOAD_H
#define SYNCGATE_LOAD_H

#include "syncgate/run.h"

/*
 * Run the load phase per r->cfg->load, recording into per-thread registries
 * registered with r. Returns 0 when the schedule ran (or was stopped by a
 * signal or an abortOnFail threshold: see r), or a negative errno for a
 * local failure.
 */
int load_run(struct run *r);

#endif
