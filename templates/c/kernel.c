/* $COMMENT */
static void $NAME(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long gid)
{
	(void)labels; (void)n; (void)step; (void)lr;
$BODY
}

static void ${NAME}_range(void *ctx, long begin, long end)
{
	const brn_model *m = ctx;
	for (long gid = begin; gid < end; gid++)
		$NAME(m->host, m->labels, m->n, m->step, m->lr, gid);
}
