/*
 * split: one instance's slice of a scenario, when a run is spread over n
 * instances (the pods of a Kubernetes Indexed Job; instance i of n). Pure
 * arithmetic on the whole scenario: every instance computes its own slice
 * from the same profile and its index, with no message exchanged, and the
 * slices add up to the whole exactly. n = 1 (or 0) is the identity: instance
 * 0 of 1 runs the whole scenario, as a run that is not split.
 *
 * Counts are split round-robin: of T things numbered 0..T-1 (VUs, VU slots,
 * iterations of the open model), thing j is instance (j mod n)'s, so instance
 * i's share is the number of j < T with j mod n == i. The shares of every T sum
 * to T, each is floor(T/n) or one more, and each grows with T: applied to the
 * VUs a closed-model executor wants at every instant, the instances' VUs add
 * up to the whole's at every instant, an instance never drops a VU while the
 * whole gains one, and each instance's most (its VU slots) is its share of
 * the whole's most. (floor((i+1)T/n) - floor(iT/n) also sums to T but does not
 * grow with T: 2 VUs over 5 instances give instance 2 one VU, 3 VUs none.)
 *
 * What is split, per executor:
 *   constant-vus, ramping-vus   the VUs at every instant
 *   per-vu-iterations           the VUs (each still runs `iterations`)
 *   shared-iterations           the VUs, and the iterations in proportion to them:
 *                               instance i runs floor(I*c(i+1)/V) - floor(I*c(i)/V)
 *                               where c(i) is the VUs of the instances before it
 *                               (split_before); an instance without VUs runs
 *                               none, and the counts still sum to I
 *   constant-arrival-rate,      iteration k runs on instance k mod n at the whole
 *   ramping-arrival-rate        schedule's due time; pre_allocated_vus and max_vus
 *                               are shared out like VUs
 */
#ifndef SYNCGATE_SPLIT_H
#define SYNCGATE_SPLIT_H

#include <stdbool.h>
#include <stdint.h>

#include "syncgate/config.h"

/* Instance i's share of total: how many j < total have j mod n == i (total when n <= 1). */
uint64_t split_share(uint64_t total, unsigned i, unsigned n);

/* The shares of the instances before i added up (0 when n <= 1): the shares in instance
 * order are consecutive ranges [split_before(i), split_before(i + 1)). */
uint64_t split_before(uint64_t total, unsigned i, unsigned n);

/* Closed model: instance i's VUs at scenario time t (its share of ex_vus_at). */
int split_vus_at(const struct scenario *s, unsigned i, unsigned n, int64_t t);

/* Instance i's VU slots: its share of ex_slots (open model: of the larger of
 * pre_allocated_vus and max_vus). */
int split_slots(const struct scenario *s, unsigned i, unsigned n);

/* Open model: instance i's share of pre_allocated_vus and of max_vus. */
int split_pre_allocated(const struct scenario *s, unsigned i, unsigned n);
int split_max_vus(const struct scenario *s, unsigned i, unsigned n);

/* shared-iterations: the iterations instance i runs (see above); s->iterations when n <= 1. */
uint64_t split_shared_iterations(const struct scenario *s, unsigned i, unsigned n);

/*
 * Open model, inside instance i: its iterations are dealt to its workers (engine threads) in
 * turn, so worker w of W runs k = split_worker_first(i, n, w) = i + n*w, then every
 * split_worker_step(n, W) = n*W after it. Over every i < n and w < W each k comes once.
 */
uint64_t split_worker_first(unsigned i, unsigned n, unsigned w);
uint64_t split_worker_step(unsigned n, unsigned nworkers);

/* Open model: of the iterations 0 .. due-1, how many are instance i's (k mod n == i). */
uint64_t split_due(uint64_t due, unsigned i, unsigned n);

#endif
