static int dev_open(model *m)
{
	brnrt_error e;
	/* 64-byte aligned: a vector load of 16 packed floats stays in one line */
	size_t bytes = ((size_t)MEM_FLOATS * sizeof(float) + 63) / 64 * 64;
	m->host = aligned_alloc(64, bytes);
	if (m->host)
		memset(m->host, 0, bytes);
	if (!m->host) {
		snprintf(m->err, sizeof m->err, "out of memory (%ld floats)", MEM_FLOATS);
		return BRN_ENOMEM;
	}
	brn_isa_select();
	if (TRAINING && !(m->dev.before = malloc((size_t)STATE_FLOATS * sizeof(float)))) {
		snprintf(m->err, sizeof m->err, "out of memory (%ld floats)", STATE_FLOATS);
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

static void dev_close(model *m)
{
	brnrt_pool_close(m->dev.pool);
	free(m->dev.before);
	free(m->host);
}

static int dev_write(model *m, long off, const float *src, long count)
{
	if (m->host + off != src)
		memcpy(m->host + off, src, (size_t)count * sizeof(float));
	return 0;
}

static int dev_read(model *m, long off, float *dst, long count)
{
	if (m->host + off != dst)
		memcpy(dst, m->host + off, (size_t)count * sizeof(float));
	return 0;
}

static inline int dev_labels(model *m, const int32_t *y, int n)
{
	(void)n;
	m->labels = y;
	return 0;
}

#if TRAINING
/* A training step that makes the state non-finite is undone: the kernels
 * update the state in place, so a copy of it is taken before. */
static int dev_step_begin(model *m)
{
	memcpy(m->dev.before, m->host, (size_t)STATE_FLOATS * sizeof(float));
	return 0;
}

static int dev_step_state(model *m, const float **state)
{
	*state = m->host;
	return 0;
}

static int dev_step_end(model *m, int keep)
{
	if (!keep)
		memcpy(m->host, m->dev.before, (size_t)STATE_FLOATS * sizeof(float));
	return 0;
}
#endif

static int dev_run(model *m, int list)
{
	const struct launch *l = list ? train_kernels : infer_kernels;
	for (; l->run; l++)
		brnrt_pool_run_named(m->dev.pool, l->name, l->per_example ? l->items * m->n : l->items, l->run, m);
	return 0;
}

const char *${MODEL}_device(const model *m)
{
	return m ? m->dev.name : "(no model)";
}
