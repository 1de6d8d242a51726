
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
	float losses[${BATCH}];
	m->n = n;
	m->lr = lr;
	if ((rc = brn_dev_labels(m, y, n)) ||
	    (rc = brn_dev_write(m, BRN_TRAIN_IN_OFF, x, (long)n * ${INPUT_SIZE})) ||
	    (rc = brn_dev_run(m, 1)) ||
	    (rc = brn_dev_read(m, BRN_LOSS_OFF, losses, n)))
		return rc;
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += losses[i];
	if (loss)
		*loss = (float)(sum / n);
	m->step++;
	return 0;
}
