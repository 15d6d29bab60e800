/*
 * cli: the command line of the CLI commands (not serve's): the usage text, the
 * options into struct args, and the checks of output paths made before anything
 * is sent. Private to the program layer (main.c).
 */
#ifndef SYNCGATE_CLI_H
#define SYNCGATE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "syncgate/config.h"

/* Exit codes, k6's where the meaning is the same. */
enum {
    EXIT_OK = 0,
    EXIT_THRESHOLDS = 99,
    EXIT_INVALID_CONFIG = 104,
    EXIT_INTERRUPTED = 105,
    EXIT_NOT_READY = 112,
    EXIT_UNDELIVERED = 113,
    EXIT_INCONCLUSIVE = 114, /* some threshold could not be judged, none failed */
    EXIT_PEERS_LOST = 115,   /* a distributed run lost instances: inconclusive */
    EXIT_AUTH = 116,
    EXIT_INTERNAL = 1,
};

enum command { CMD_RUN, CMD_SMOKE, CMD_LOAD, CMD_VALIDATE, CMD_VERSION, CMD_HELP, CMD_SERVE };

extern const char *const command_names[];

struct args {
    enum command cmd;
    struct config_cli cli;
    const char *sets[256];
    const char *stages[64];
    const char *tags[16];
};

void cli_usage(FILE *out);
/* Returns 0, or EXIT_INVALID_CONFIG after printing why (or -1 after help). */
int cli_parse(int argc, char **argv, struct args *a);
/* Whether an output file can be written at the end; creates nothing. 0, or -errno with
 * why in msg. */
int cli_check_output(const char *option, const char *key, const char *path, char *msg,
                     size_t n);
/* Whether two output paths lead to the same file. */
bool cli_same_output(const char *a, const char *b);

#endif
