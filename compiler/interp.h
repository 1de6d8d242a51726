/* The reference interpreter: runs any Graph in double precision, forward
 * and backward, naively and obviously. It is the oracle of every numerical
 * test and is never optimized. Semantics: DESIGN.md §4. */
#ifndef BRN_INTERP_H
#define BRN_INTERP_H

#include <stdint.h>

#include "diag.h"
#include "graph.h"

typedef struct brn_interp brn_interp;

/* Fresh state for g: He-normal weights from seed (brnrt_init.h, keyed by
 * tensor name), biases 0, gamma 1, beta 0, mean 0, sigma 1, step 0. */
int brn_interp_open(brn_interp **ip, const brn_graph *g, uint64_t seed, brn_diag *d);
void brn_interp_close(brn_interp *ip);

/* Parameter and state access by full name ("c1.weight", "a1.batch_renorm.mean",
 * "c1.weight.momentum"); NULL when there is none. */
double *brn_interp_tensor(brn_interp *ip, const char *name, long *count);
/* The gradient of a trainable parameter from the last backward. */
double *brn_interp_grad(brn_interp *ip, const char *name, long *count);
long brn_interp_step(const brn_interp *ip);
void brn_interp_set_step(brn_interp *ip, long step);

/* Forward over n examples (1 <= n <= batch). train: batch statistics with
 * r, d from the schedule at the current step; else moving statistics. y
 * (may be NULL without a loss) are class labels. */
int brn_interp_forward(brn_interp *ip, const double *x, const int32_t *y, int n,
                       int train, brn_diag *d);
/* The value of node id from the last forward ([n, C, H, W]). */
const double *brn_interp_value(const brn_interp *ip, int id);
double brn_interp_loss(const brn_interp *ip);
/* r and d of a norm node from the last train forward (per channel). */
const double *brn_interp_r(const brn_interp *ip, int id);
const double *brn_interp_d(const brn_interp *ip, int id);
/* Keep r and d as they are in later forwards (finite differences). */
void brn_interp_freeze_rd(brn_interp *ip, int on);

/* Gradients of the loss after a train forward, for every parameter and
 * for the input (brn_interp_input_grad). */
int brn_interp_backward(brn_interp *ip, brn_diag *d);
const double *brn_interp_input_grad(const brn_interp *ip);
/* Moving statistics from the last forward, SGD with momentum 0.9, step++. */
void brn_interp_update(brn_interp *ip, double lr);
/* forward(train) + backward + update. */
int brn_interp_train_step(brn_interp *ip, const double *x, const int32_t *y, int n,
                          double lr, double *loss, brn_diag *d);

#endif
