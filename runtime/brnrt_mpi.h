/* libbrnrt_mpi: data-parallel training of generated models over MPI. Its
 * reduction plugs into the generated _set_allreduce, its broadcast into
 * _broadcast (docs/distributed.md). A separate library, built with mpicc,
 * so that libbrnrt itself never needs MPI. */
#ifndef BRNRT_MPI_H
#define BRNRT_MPI_H

#include <stddef.h>
#include <stdint.h>

#include "brnrt.h"

/* The workers of one job: MPI_COMM_WORLD, with errors returned (not
 * fatal) so that they become messages. */
typedef struct brnrt_mpi {
	int rank, size;
	void *comm;              /* (MPI_Comm *) */
	char err[1024];          /* the last failure of a hook */
} brnrt_mpi;

/* MPI_Init (when nobody did) and the rank and size of this process. */
int brnrt_mpi_open(brnrt_mpi *c, int *argc, char ***argv, brnrt_error *e);
/* MPI_Finalize. (After a failure a program that runs more than one rank
 * ends the job with MPI_Abort instead, so that the other ranks do not wait
 * for this one; that is the program's decision, not the library's.) */
void brnrt_mpi_close(brnrt_mpi *c);

/* Hooks for the generated API (ctx: a brnrt_mpi). allreduce_mean: the sum
 * over ranks (MPI_Allreduce), divided by the size; bcast0: rank 0's buffer
 * to every rank. 0, or -1 with the message in c->err. */
int brnrt_mpi_allreduce_mean(void *ctx, float *buf, size_t n);
int brnrt_mpi_bcast0(void *ctx, float *buf, size_t n);

/* The smallest and largest v over the ranks (e.g. the step counters). */
int brnrt_mpi_minmax(brnrt_mpi *c, int64_t v, int64_t *min, int64_t *max);

#endif
