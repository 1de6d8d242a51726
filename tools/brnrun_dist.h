/* brnrun_dist: the data-parallel side of `brnrun train` (docs/distributed.md).
 * Built with BRN_MPI into brnrun-mpi, over libbrnrt_mpi; in plain brnrun it
 * is one process (rank 0 of 1) and every call does nothing, so brnrun
 * never needs MPI. */
#ifndef BRNRUN_DIST_H
#define BRNRUN_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct dist {
	int rank, size;
	void *mpi;       /* (brnrt_mpi *) under BRN_MPI */
	void *m;         /* the model, once attached */
	int (*average_stats)(void *m);
	const char *(*error)(const void *m);
} dist;

/* Joins the job: MPI_Init under mpirun, else rank 0 of 1. */
int dist_open(dist *d, char *err, size_t errlen);
/* For a job of more than one rank: sets the model's gradient reduction,
 * gives every rank the state of rank 0 and checks that the step counters
 * agree. lib: the model's library (dlopen), name: its model name. */
int dist_attach(dist *d, void *lib, const char *name, void *m, const char *(*error)(const void *m),
                char *err, size_t errlen);
/* Every rank: the moving statistics become their mean over the ranks
 * (before a checkpoint or an evaluation). */
int dist_average(dist *d, char *err, size_t errlen);
/* Leaves the job; rc != 0 with more than one rank ends every rank (MPI_Abort). */
void dist_close(dist *d, int rc);

#endif
