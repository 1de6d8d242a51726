
static const char *brn_nonfinite_name(float v)
{
	return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

/* 1 when any of v[0..n) is nan or inf (all exponent bits set). Blocks of
 * 64 without a branch inside, which compilers vectorize: the check after
 * every step reads the state at memory speed. */
static int brn_any_nonfinite(const float *v, long n)
{
	long i = 0;
	for (; i + 64 <= n; i += 64) {
		uint32_t block = 0;
		for (int k = 0; k < 64; k++) {
			uint32_t u;
			memcpy(&u, &v[i + k], sizeof u);
			block |= (u & 0x7f800000u) == 0x7f800000u;
		}
		if (block)
			return 1;
	}
	for (; i < n; i++)
		if (!isfinite(v[i]))
			return 1;
	return 0;
}

/* After a step: 0 when the state is finite, else a message naming the first
 * tensor (or momentum buffer) that is not. The state is one block of
 * BRN_STATE_FLOATS (params, then momentum; padding stays 0): one fast pass
 * over it, and the search by slot only when it finds something. */
static int brn_check_state(brn_model *m, const float *state)
{
	if (!brn_any_nonfinite(state, BRN_STATE_FLOATS))
		return 0;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < BRN_N_SLOTS; i++) {
			const struct brn_slot *s = &brn_slots[i];
			const float *v = state + s->off + (pass ? BRN_MOMENTUM_OFF : 0);
			if (pass && !s->trainable)
				continue;
			for (long e = 0; e < s->count; e++)
				if (!isfinite(v[e])) {
					snprintf(m->err, sizeof m->err,
					         "the step made '%s' %s at index %ld; the model is as it was before the step",
					         pass ? s->momentum : s->name, brn_nonfinite_name(v[e]), e);
					return BRN_ENUMERIC;
				}
		}
	return 0;
}

/* Data-parallel step (docs/distributed.md). The fused kernels apply SGD
 * inside the weight-gradient kernels; rather than a second set of kernels
 * or a flag read by every one of them, they run unchanged with lr = 0 and
 * the momentum buffers zeroed, which leaves each gradient (0.9 * 0 + g) in
 * the momentum region, contiguous and in the order of the parameter table,
 * and the parameters untouched. That region goes to the hook once; then
 * one SGD-momentum pass. The plain step never comes here, so it is exactly
 * as fast as before. *sum receives n times the mean loss over all workers,
 * or NaN when any worker's state went non-finite, so that every worker
 * undoes the same steps. */
static int brn_reduced_run(brn_model *m, float lr, double *sum)
{
	float *old = m->dp, *grad = m->dp + BRN_PARAMS_FLOATS, *w = m->dp + 2 * BRN_PARAMS_FLOATS;
	float losses[${BATCH}];
	int rc;
	memset(grad, 0, (size_t)BRN_PARAMS_FLOATS * sizeof(float));
	m->lr = 0.0f;
	if ((rc = brn_dev_read(m, BRN_MOMENTUM_OFF, old, BRN_PARAMS_FLOATS)) ||
	    (rc = brn_dev_write(m, BRN_MOMENTUM_OFF, grad, BRN_PARAMS_FLOATS)) ||
	    (rc = brn_dev_run(m, 1)) ||
	    (rc = brn_dev_read(m, BRN_LOSS_OFF, losses, m->n)) ||
	    (rc = brn_dev_read(m, BRN_MOMENTUM_OFF, grad, BRN_PARAMS_FLOATS)) ||
	    (rc = brn_dev_read(m, 0, w, BRN_PARAMS_FLOATS)))
		return rc;
	m->lr = lr;
	double local = 0;
	for (int i = 0; i < m->n; i++)
		local += losses[i];
	local /= m->n;
	for (long i = 0; i < BRN_PARAMS_FLOATS && isfinite(local); i++)
		if (!isfinite(grad[i]) || !isfinite(w[i]))
			local = NAN;
	float mean = (float)local;
	if (m->allreduce(m->allreduce_ctx, grad, (size_t)BRN_PARAMS_FLOATS) ||
	    m->allreduce(m->allreduce_ctx, &mean, 1)) {
		snprintf(m->err, sizeof m->err, "the gradient reduction failed; the model is as it was before the step");
		return BRN_EIO;
	}
	/* SGD with momentum 0.9, as the fused kernels do it */
	for (int i = 0; i < BRN_N_SLOTS; i++) {
		const struct brn_slot *s = &brn_slots[i];
		if (!s->trainable)
			continue;
		for (long e = s->off; e < s->off + s->count; e++) {
			const float mo = 0.9f * old[e] + grad[e];
			old[e] = mo;
			w[e] -= lr * mo;
		}
	}
	*sum = (double)mean * m->n;
	if ((rc = brn_dev_write(m, 0, w, BRN_PARAMS_FLOATS)) ||
	    (rc = brn_dev_write(m, BRN_MOMENTUM_OFF, old, BRN_PARAMS_FLOATS)))
		return rc;
	return 0;
}

int ${MODEL}_set_allreduce(brn_model *m, int (*fn)(void *ctx, float *buf, size_t n), void *ctx)
{
	int rc = brn_check_model(m);
	if (rc)
		return rc;
	if (fn && !m->dp && !(m->dp = malloc((size_t)3 * BRN_PARAMS_FLOATS * sizeof(float)))) {
		snprintf(m->err, sizeof m->err, "out of memory (%ld floats)", 3 * BRN_PARAMS_FLOATS);
		return BRN_ENOMEM;
	}
	m->allreduce = fn;
	m->allreduce_ctx = ctx;
	return 0;
}

/* The moving statistics (the slots that SGD does not train), through a
 * buffer of their own so the hook sees them contiguous. */
int ${MODEL}_average_stats(brn_model *m)
{
	int rc = brn_check_model(m);
	if (rc)
		return rc;
	if (!m->allreduce) {
		snprintf(m->err, sizeof m->err, "no allreduce hook is set (_set_allreduce)");
		return BRN_EARG;
	}
	if ((rc = brn_dev_read(m, 0, m->host, BRN_STATE_FLOATS)))
		return rc;
	long k = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (pass && m->allreduce(m->allreduce_ctx, m->dp, (size_t)k)) {
			snprintf(m->err, sizeof m->err, "the reduction of the moving statistics failed");
			return BRN_EIO;
		}
		k = 0;
		for (int i = 0; i < BRN_N_SLOTS; i++)
			for (long e = 0; e < brn_slots[i].count && !brn_slots[i].trainable; e++, k++)
				if (pass)
					m->host[brn_slots[i].off + e] = m->dp[k];
				else
					m->dp[k] = m->host[brn_slots[i].off + e];
	}
	return brn_dev_write(m, 0, m->host, BRN_STATE_FLOATS);
}

int ${MODEL}_broadcast(brn_model *m, int (*fn)(void *ctx, float *buf, size_t n), void *ctx)
{
	int rc = brn_check_model(m);
	if (rc || (rc = brn_dev_read(m, 0, m->host, BRN_STATE_FLOATS)))
		return rc;
	if (!fn || fn(ctx, m->host, (size_t)BRN_STATE_FLOATS)) {
		snprintf(m->err, sizeof m->err, "the broadcast of the state failed");
		return BRN_EIO;
	}
	return brn_dev_write(m, 0, m->host, BRN_STATE_FLOATS);
}

int ${MODEL}_train_step(brn_model *m, const float *x, const int32_t *y, int n, float lr, float *loss)
{
	int rc = brn_check_call(m, n, x, y, "y");
	if (rc)
		return rc;
	for (int i = 0; i < n; i++)
		if (y[i] < 0 || y[i] >= BRN_CLASSES) {
			snprintf(m->err, sizeof m->err, "label %d of example %d is out of range 0..%d",
			         (int)y[i], i, BRN_CLASSES - 1);
			return BRN_EARG;
		}
	if (!isfinite(lr)) {
		snprintf(m->err, sizeof m->err, "lr is %s; it must be a finite number", brn_nonfinite_name(lr));
		return BRN_EARG;
	}
	/* one NaN in x would reach every statistic of the first norm */
	for (long i = 0; i < (long)n * ${INPUT_SIZE}; i++)
		if (!isfinite(x[i])) {
			snprintf(m->err, sizeof m->err, "x[%ld] (example %ld) is %s; inputs must be finite", i,
			         i / ${INPUT_SIZE}, brn_nonfinite_name(x[i]));
			return BRN_EARG;
		}
	if (m->step == INT64_MAX) {
		snprintf(m->err, sizeof m->err, "the step counter is at its largest value, %lld", (long long)m->step);
		return BRN_EARG;
	}
	float losses[${BATCH}];
	const float *state = NULL;
	m->n = n;
	m->lr = lr;
	if ((rc = brn_dev_labels(m, y, n)) ||
	    (rc = brn_dev_write(m, BRN_TRAIN_IN_OFF, x, (long)n * ${INPUT_SIZE})) ||
	    (rc = brn_dev_step_begin(m)))
		return rc;
	double sum = 0;
	if ((rc = m->allreduce ? brn_reduced_run(m, lr, &sum) : brn_dev_run(m, 1)) ||
	    (rc = brn_dev_read(m, BRN_LOSS_OFF, losses, n)) ||
	    (rc = brn_dev_step_state(m, &state))) {
		char why[sizeof m->err];
		memcpy(why, m->err, sizeof why);
		brn_dev_step_end(m, 0); /* try to undo what ran; the first error is the one to tell */
		memcpy(m->err, why, sizeof why);
		return rc;
	}
	if (!m->allreduce)
		for (int i = 0; i < n; i++)
			sum += losses[i];
	if ((rc = brn_check_state(m, state)) == 0 && !isfinite(sum)) {
		snprintf(m->err, sizeof m->err, "the loss is %s; the model is as it was before the step",
		         brn_nonfinite_name((float)sum));
		rc = BRN_ENUMERIC;
	}
	if (rc) {
		int undo = brn_dev_step_end(m, 0);
		return undo ? undo : rc;
	}
	if ((rc = brn_dev_step_end(m, 1)))
		return rc;
	if (loss)
		*loss = (float)(sum / n);
	m->step++;
	return 0;
}
