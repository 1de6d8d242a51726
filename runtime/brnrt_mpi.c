/* libbrnrt_mpi: the MPI side of data-parallel training (brnrt_mpi.h). */
#include "brnrt_mpi.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>

static MPI_Comm brnrt_mpi_world = MPI_COMM_NULL;

/* The message of an MPI error code into c->err; returns -1. */
static int mpi_fail(brnrt_mpi *c, const char *what, int code)
{
	char text[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
		snprintf(text, sizeof text, "MPI error %d", code);
	snprintf(c->err, sizeof c->err, "%s failed on rank %d of %d: %s", what, c->rank, c->size, text);
	return -1;
}

int brnrt_mpi_open(brnrt_mpi *c, int *argc, char ***argv, brnrt_error *e)
{
	int inited = 0, rc;
	c->rank = 0;
	c->size = 1;
	c->err[0] = 0;
	MPI_Initialized(&inited);
	if (!inited && (rc = MPI_Init(argc, argv)) != MPI_SUCCESS)
		return brnrt_errorf(e, BRN_EIO, "MPI_Init failed (error %d)", rc);
	if (brnrt_mpi_world == MPI_COMM_NULL) {
		MPI_Comm_dup(MPI_COMM_WORLD, &brnrt_mpi_world);
		/* a dead peer or a broken link: a message, not an abort deep inside MPI */
		MPI_Comm_set_errhandler(brnrt_mpi_world, MPI_ERRORS_RETURN);
	}
	c->comm = &brnrt_mpi_world;
	MPI_Comm_rank(brnrt_mpi_world, &c->rank);
	MPI_Comm_size(brnrt_mpi_world, &c->size);
	return 0;
}

void brnrt_mpi_close(brnrt_mpi *c)
{
	(void)c;
	int fin = 0;
	MPI_Finalized(&fin);
	if (fin)
		return;
	if (brnrt_mpi_world != MPI_COMM_NULL)
		MPI_Comm_free(&brnrt_mpi_world);
	MPI_Finalize();
}

/* MPI counts are ints: larger buffers go in pieces. */
#define BRNRT_MPI_CHUNK ((size_t)1 << 30)

int brnrt_mpi_allreduce_mean(void *ctx, float *buf, size_t n)
{
	brnrt_mpi *c = ctx;
	MPI_Comm comm = *(MPI_Comm *)c->comm;
	for (size_t at = 0; at < n; at += BRNRT_MPI_CHUNK) {
		int k = (int)(n - at < BRNRT_MPI_CHUNK ? n - at : BRNRT_MPI_CHUNK);
		int rc = MPI_Allreduce(MPI_IN_PLACE, buf + at, k, MPI_FLOAT, MPI_SUM, comm);
		if (rc != MPI_SUCCESS)
			return mpi_fail(c, "MPI_Allreduce", rc);
	}
	const float inv = 1.0f / (float)c->size;
	if (c->size > 1)
		for (size_t i = 0; i < n; i++)
			buf[i] *= inv;
	return 0;
}

int brnrt_mpi_bcast0(void *ctx, float *buf, size_t n)
{
	brnrt_mpi *c = ctx;
	MPI_Comm comm = *(MPI_Comm *)c->comm;
	for (size_t at = 0; at < n; at += BRNRT_MPI_CHUNK) {
		int k = (int)(n - at < BRNRT_MPI_CHUNK ? n - at : BRNRT_MPI_CHUNK);
		int rc = MPI_Bcast(buf + at, k, MPI_FLOAT, 0, comm);
		if (rc != MPI_SUCCESS)
			return mpi_fail(c, "MPI_Bcast", rc);
	}
	return 0;
}

int brnrt_mpi_minmax(brnrt_mpi *c, int64_t v, int64_t *min, int64_t *max)
{
	MPI_Comm comm = *(MPI_Comm *)c->comm;
	int64_t both[2] = {-v, v}, out[2];
	int rc = MPI_Allreduce(both, out, 2, MPI_INT64_T, MPI_MAX, comm);
	if (rc != MPI_SUCCESS)
		return mpi_fail(c, "MPI_Allreduce", rc);
	*min = -out[0];
	*max = out[1];
	return 0;
}
