static int cl_fail(model *m, int rc, const brnrt_error *e)
{
	snprintf(m->err, sizeof m->err, "%s", e->msg);
	return rc;
}

static int dev_open(model *m)
{
	brnrt_error e;
	int rc, k = 0;
	m->host = calloc((size_t)STATE_FLOATS, sizeof(float));
	if (TRAINING && m->host)
		m->dev.after = calloc((size_t)STATE_FLOATS, sizeof(float));
	if (!m->host || (TRAINING && !m->dev.after)) {
		snprintf(m->err, sizeof m->err, "out of memory (%ld floats)", STATE_FLOATS);
		return BRN_ENOMEM;
	}
	if ((rc = brnrt_cl_open(&m->dev.cl, NULL, &e)) ||
	    (rc = brnrt_cl_build(m->dev.cl, cl_source, "-cl-std=CL1.2", &m->dev.prog, NULL, &e)) ||
	    (rc = brnrt_cl_alloc(m->dev.cl, (size_t)MEM_FLOATS * sizeof(float), &m->dev.mem, &e)) ||
	    (rc = brnrt_cl_alloc(m->dev.cl, ${BATCH} * sizeof(cl_int), &m->dev.labels, &e)))
		return cl_fail(m, rc, &e);
	for (int list = 0; list < 2; list++)
		for (const struct launch *l = list ? train_kernels : infer_kernels; l->name; l++)
			if ((rc = brnrt_cl_kernel(m->dev.cl, m->dev.prog, l->name, &m->dev.k[k++], &e)))
				return cl_fail(m, rc, &e);
	return 0;
}

static void dev_close(model *m)
{
	for (int i = 0; i < N_KERNELS; i++)
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

static int dev_write(model *m, long off, const float *src, long count)
{
	brnrt_error e;
	int rc = brnrt_cl_write(m->dev.cl, m->dev.mem, (size_t)off * sizeof(float),
	                        (size_t)count * sizeof(float), src, &e);
	return rc ? cl_fail(m, rc, &e) : 0;
}

static int dev_read(model *m, long off, float *dst, long count)
{
	brnrt_error e;
	int rc = brnrt_cl_read(m->dev.cl, m->dev.mem, (size_t)off * sizeof(float),
	                       (size_t)count * sizeof(float), dst, &e);
	return rc ? cl_fail(m, rc, &e) : 0;
}

static inline int dev_labels(model *m, const int32_t *y, int n)
{
	brnrt_error e;
	int rc = brnrt_cl_write(m->dev.cl, m->dev.labels, 0, (size_t)n * sizeof(cl_int), y, &e);
	return rc ? cl_fail(m, rc, &e) : 0;
}

#if TRAINING
/* A training step that makes the state non-finite is undone. m->host holds
 * the state as of the last step kept; a step's result is read back into
 * m->dev.after, checked, then kept (the buffers swap) or undone (m->host
 * is written back to the device). */
static int dev_step_begin(model *m)
{
	(void)m;
	return 0;
}

static int dev_step_state(model *m, const float **state)
{
	*state = m->dev.after;
	return dev_read(m, 0, m->dev.after, STATE_FLOATS);
}

static int dev_step_end(model *m, int keep)
{
	if (!keep)
		return dev_write(m, 0, m->host, STATE_FLOATS);
	float *kept = m->dev.after;
	m->dev.after = m->host;
	m->host = kept;
	return 0;
}
#endif

static int dev_run(model *m, int list)
{
	brnrt_error e;
	cl_int n = m->n;
	cl_long step = m->step;
	cl_float lr = m->lr;
	const size_t sizes[5] = {sizeof(cl_mem), sizeof(cl_mem), sizeof n, sizeof step, sizeof lr};
	const void *const args[5] = {&m->dev.mem, &m->dev.labels, &n, &step, &lr};
	int k = 0, rc;
	if (list)
		for (const struct launch *l = infer_kernels; l->name; l++)
			k++;
	for (const struct launch *l = list ? train_kernels : infer_kernels; l->name; l++, k++) {
		size_t items = (size_t)(l->per_example ? l->items * m->n : l->items);
		if ((rc = brnrt_cl_launch(m->dev.cl, m->dev.k[k], l->name, 5, sizes, args, items, l->local, &e)))
			return cl_fail(m, rc, &e);
	}
	return 0;
}

const char *${MODEL}_device(const model *m)
{
	return !m ? "(no model)" : m->dev.cl ? brnrt_cl_info(m->dev.cl)->name : "(no OpenCL device)";
}
