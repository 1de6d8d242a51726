static int brn_dev_open(brn_model *m)
{
	brnrt_error e;
	/* 64-byte aligned: a vector load of 16 packed floats stays in one line */
	size_t bytes = ((size_t)BRN_MEM_FLOATS * sizeof(float) + 63) / 64 * 64;
	m->host = aligned_alloc(64, bytes);
	if (m->host)
		memset(m->host, 0, bytes);
	if (!m->host) {
		snprintf(m->err, sizeof m->err, "out of memory (%ld floats)", BRN_MEM_FLOATS);
		return BRN_ENOMEM;
	}
	brn_isa_select();
	if (BRN_TRAINING && !(m->dev.before = malloc((size_t)BRN_STATE_FLOATS * sizeof(float)))) {
		snprintf(m->err, sizeof m->err, "out of memory (%ld floats)", BRN_STATE_FLOATS);
		return BRN_ENOMEM;
	}
	int rc = brnrt_pool_open(&m->dev.pool, 0, &e);
	if (rc) {
		snprintf(m->err, sizeof m->err, "%s", e.msg);
		return rc;
	}
	snprintf(m->dev.name, sizeof m->dev.name, "cpu (C, %d threads)", brnrt_pool_threads(m->dev.pool));
	return 0;
}

static void brn_dev_close(brn_model *m)
{
	brnrt_pool_close(m->dev.pool);
	free(m->dev.before);
	free(m->host);
}

static int brn_dev_write(brn_model *m, long off, const float *src, long count)
{
	if (m->host + off != src)
		memcpy(m->host + off, src, (size_t)count * sizeof(float));
	return 0;
}

static int brn_dev_read(brn_model *m, long off, float *dst, long count)
{
	if (m->host + off != dst)
		memcpy(dst, m->host + off, (size_t)count * sizeof(float));
	return 0;
}

static inline int brn_dev_labels(brn_model *m, const int32_t *y, int n)
{
	(void)n;
	m->labels = y;
	return 0;
}

#if BRN_TRAINING
/* A training step that makes the state non-finite is undone: the kernels
 * update the state in place, so a copy of it is taken before. */
static int brn_dev_step_begin(brn_model *m)
{
	memcpy(m->dev.before, m->host, (size_t)BRN_STATE_FLOATS * sizeof(float));
	return 0;
}

static int brn_dev_step_state(brn_model *m, const float **state)
{
	*state = m->host;
	return 0;
}

static int brn_dev_step_end(brn_model *m, int keep)
{
	if (!keep)
		memcpy(m->host, m->dev.before, (size_t)BRN_STATE_FLOATS * sizeof(float));
	return 0;
}
#endif

static int brn_dev_run(brn_model *m, int list)
{
	const struct brn_launch *l = list ? brn_train_kernels : brn_infer_kernels;
	for (; l->run; l++)
		brnrt_pool_run_named(m->dev.pool, l->name, l->per_example ? l->items * m->n : l->items, l->run, m);
	return 0;
}

const char *${MODEL}_device(const brn_model *m)
{
	return m ? m->dev.name : "(no model)";
}
