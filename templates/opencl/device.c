static int brn_cl_fail(brn_model *m, int rc, const brnrt_error *e)
{
	snprintf(m->err, sizeof m->err, "%s", e->msg);
	return rc;
}

static int brn_dev_open(brn_model *m)
{
	brnrt_error e;
	int rc, k = 0;
	m->host = calloc((size_t)BRN_STATE_FLOATS, sizeof(float));
	if (BRN_TRAINING && m->host)
		m->dev.after = calloc((size_t)BRN_STATE_FLOATS, sizeof(float));
	if (!m->host || (BRN_TRAINING && !m->dev.after)) {
		snprintf(m->err, sizeof m->err, "out of memory (%ld floats)", BRN_STATE_FLOATS);
		return BRN_ENOMEM;
	}
	/* -w: a build's warnings would reach the user's terminal from the
	 * driver (POCL prints "N warnings generated." about its own float16
	 * builtins on CPUs without AVX-512); errors still fail the build */
	if ((rc = brnrt_cl_open(&m->dev.cl, NULL, &e)) ||
	    (rc = brnrt_cl_build(m->dev.cl, brn_cl_source, "-cl-std=CL1.2 -w", &m->dev.prog, NULL, &e)) ||
	    (rc = brnrt_cl_alloc(m->dev.cl, (size_t)BRN_MEM_FLOATS * sizeof(float), &m->dev.mem, &e)) ||
	    (rc = brnrt_cl_alloc(m->dev.cl, ${BATCH} * sizeof(cl_int), &m->dev.labels, &e)))
		return brn_cl_fail(m, rc, &e);
	for (int list = 0; list < 2; list++)
		for (const struct brn_launch *l = list ? brn_train_kernels : brn_infer_kernels; l->name; l++)
			if ((rc = brnrt_cl_kernel(m->dev.cl, m->dev.prog, l->name, &m->dev.k[k++], &e)))
				return brn_cl_fail(m, rc, &e);
	return 0;
}

static void brn_dev_close(brn_model *m)
{
	for (int i = 0; i < BRN_N_KERNELS; i++)
		if (m->dev.k[i])
			clReleaseKernel(m->dev.k[i]);
	if (m->dev.prog)
		clReleaseProgram(m->dev.prog);
	if (m->dev.mem)
		clReleaseMemObject(m->dev.mem);
	if (m->dev.labels)
		clReleaseMemObject(m->dev.labels);
	brnrt_cl_close(m->dev.cl);
	free(m->dev.after);
	free(m->host);
}

static int brn_dev_write(brn_model *m, long off, const float *src, long count)
{
	brnrt_error e;
	int rc = brnrt_cl_write(m->dev.cl, m->dev.mem, (size_t)off * sizeof(float),
	                        (size_t)count * sizeof(float), src, &e);
	return rc ? brn_cl_fail(m, rc, &e) : 0;
}

static int brn_dev_read(brn_model *m, long off, float *dst, long count)
{
	brnrt_error e;
	int rc = brnrt_cl_read(m->dev.cl, m->dev.mem, (size_t)off * sizeof(float),
	                       (size_t)count * sizeof(float), dst, &e);
	return rc ? brn_cl_fail(m, rc, &e) : 0;
}

static inline int brn_dev_labels(brn_model *m, const int32_t *y, int n)
{
	brnrt_error e;
	int rc = brnrt_cl_write(m->dev.cl, m->dev.labels, 0, (size_t)n * sizeof(cl_int), y, &e);
	return rc ? brn_cl_fail(m, rc, &e) : 0;
}

#if BRN_TRAINING
/* A training step that makes the state non-finite is undone. m->host holds
 * the state as of the last step kept; a step's result is read back into
 * m->dev.after, checked, then kept (the buffers swap) or undone (m->host
 * is written back to the device). */
static int brn_dev_step_begin(brn_model *m)
{
	(void)m;
	return 0;
}

static int brn_dev_step_state(brn_model *m, const float **state)
{
	*state = m->dev.after;
	return brn_dev_read(m, 0, m->dev.after, BRN_STATE_FLOATS);
}

static int brn_dev_step_end(brn_model *m, int keep)
{
	if (!keep)
		return brn_dev_write(m, 0, m->host, BRN_STATE_FLOATS);
	float *kept = m->dev.after;
	m->dev.after = m->host;
	m->host = kept;
	return 0;
}
#endif

static int brn_dev_run(brn_model *m, int list)
{
	brnrt_error e;
	cl_int n = m->n;
	cl_long step = m->step;
	cl_float lr = m->lr;
	const size_t sizes[5] = {sizeof(cl_mem), sizeof(cl_mem), sizeof n, sizeof step, sizeof lr};
	const void *const args[5] = {&m->dev.mem, &m->dev.labels, &n, &step, &lr};
	int k = 0, rc;
	if (list)
		for (const struct brn_launch *l = brn_infer_kernels; l->name; l++)
			k++;
	for (const struct brn_launch *l = list ? brn_train_kernels : brn_infer_kernels; l->name; l++, k++) {
		size_t items = (size_t)(l->per_example ? l->items * m->n : l->items);
		if ((rc = brnrt_cl_launch(m->dev.cl, m->dev.k[k], l->name, 5, sizes, args, items, l->local, &e)))
			return brn_cl_fail(m, rc, &e);
	}
	return 0;
}

const char *${MODEL}_device(const brn_model *m)
{
	return !m ? "(no model)" : m->dev.cl ? brnrt_cl_info(m->dev.cl)->name : "(no OpenCL device)";
}
