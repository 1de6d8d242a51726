
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
	if (m->step == INT64_MAX) {
		snprintf(m->err, sizeof m->err, "the step counter is at its largest value, %lld", (long long)m->step);
		return BRN_EARG;
	}
	float losses[${BATCH}];
	m->n = n;
	m->lr = lr;
	if ((rc = dev_labels(m, y, n)) ||
	    (rc = dev_write(m, TRAIN_IN_OFF, x, (long)n * ${INPUT_SIZE})) ||
	    (rc = dev_run(m, 1)) ||
	    (rc = dev_read(m, LOSS_OFF, losses, n)))
		return rc;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += losses[i];
	if (loss)
		*loss = (float)(sum / n);
	m->step++;
	return 0;
}
