
static const char *nonfinite_name(float v)
{
	return isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

/* After a step: 0 when the state is finite, else a message naming the first
 * tensor (or momentum buffer) that is not. */
static int check_state(model *m, const float *state)
{
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < N_SLOTS; i++) {
			const struct slot *s = &slots[i];
			const float *v = state + s->off + (pass ? MOMENTUM_OFF : 0);
			if (pass && !s->trainable)
				continue;
			for (long e = 0; e < s->count; e++)
				if (!isfinite(v[e])) {
					snprintf(m->err, sizeof m->err,
					         "the step made '%s' %s at index %ld; the model is as it was before the step",
					         pass ? s->momentum : s->name, nonfinite_name(v[e]), e);
					return BRN_ENUMERIC;
				}
		}
	return 0;
}

int ${MODEL}_train_step(model *m, const float *x, const int32_t *y, int n, float lr, float *loss)
{
	int rc = check_call(m, n, x, y, "y");
	if (rc)
		return rc;
	for (int i = 0; i < n; i++)
		if (y[i] < 0 || y[i] >= CLASSES) {
			snprintf(m->err, sizeof m->err, "label %d of example %d is out of range 0..%d",
			         (int)y[i], i, CLASSES - 1);
			return BRN_EARG;
		}
	if (!isfinite(lr)) {
		snprintf(m->err, sizeof m->err, "lr is %s; it must be a finite number", nonfinite_name(lr));
		return BRN_EARG;
	}
	/* one NaN in x would reach every statistic of the first norm */
	for (long i = 0; i < (long)n * ${INPUT_SIZE}; i++)
		if (!isfinite(x[i])) {
			snprintf(m->err, sizeof m->err, "x[%ld] (example %ld) is %s; inputs must be finite", i,
			         i / ${INPUT_SIZE}, nonfinite_name(x[i]));
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
	if ((rc = dev_labels(m, y, n)) ||
	    (rc = dev_write(m, TRAIN_IN_OFF, x, (long)n * ${INPUT_SIZE})) ||
	    (rc = dev_step_begin(m)))
		return rc;
	if ((rc = dev_run(m, 1)) ||
	    (rc = dev_read(m, LOSS_OFF, losses, n)) ||
	    (rc = dev_step_state(m, &state))) {
		char why[sizeof m->err];
		memcpy(why, m->err, sizeof why);
		dev_step_end(m, 0); /* try to undo what ran; the first error is the one to tell */
		memcpy(m->err, why, sizeof why);
		return rc;
	}
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += losses[i];
	if ((rc = check_state(m, state)) == 0 && !isfinite(sum)) {
		snprintf(m->err, sizeof m->err, "the loss is %s; the model is as it was before the step",
		         nonfinite_name((float)sum));
		rc = BRN_ENUMERIC;
	}
	if (rc) {
		int undo = dev_step_end(m, 0);
		return undo ? undo : rc;
	}
	if ((rc = dev_step_end(m, 1)))
		return rc;
	if (loss)
		*loss = (float)(sum / n);
	m->step++;
	return 0;
}
