static void ${NAME}_range(void *ctx, long begin, long end)
{
	const $MODEL *m = ctx;
	void (*f)(float *restrict, int, float, long) = ${NAME}_generic;
#if BRN_X86
	if (brn_isa == 2)
		f = ${NAME}_avx512;
	else if (brn_isa == 1)
		f = ${NAME}_avx2;
#endif
	for (long gid = begin; gid < end; gid++)
		f(m->host, m->n, m->lr, gid);
}
