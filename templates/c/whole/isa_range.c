static void ${NAME}_range(void *ctx, long begin, long end)
{
	const brn_model *m = ctx;
	void (*f)(float *restrict, const int32_t *restrict, int, int64_t, float, long, long) = ${NAME}_generic;
#if BRN_X86
	if (brn_isa == 2)
		f = ${NAME}_avx512;
	else if (brn_isa == 1)
		f = ${NAME}_avx2;
#endif
	f(m->host, m->labels, m->n, m->step, m->lr, begin * $VECN, end * $VECN);
}
