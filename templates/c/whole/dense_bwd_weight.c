/* $COMMENT, $ISA: dL/dw (and dL/db) of dense and the SGD step (momentum
 * 0.9), dw[o, i] = sum_b dy[b, o] x[b, i]. Work-item o * $IN + i, then one
 * per bias. A register tile of $BM outputs x NV vectors of $VL inputs takes
 * NV loads of a row of x and $BM broadcasts of dL/dy per $BM x NV FMAs,
 * then steps its weights; outputs past ro repeat the last one and are not
 * stored. Inputs that fill no vector are scalar. */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_tile_$ISA(float *restrict mem, int n, float lr, int o0, int ro, int i0, const int NV)
{
	typedef $VT V;
	int oo[$BM];
	BRN_UNROLL
	for (int r = 0; r < $BM; r++)
		oo[r] = o0 + (r < ro ? r : ro - 1);
	V acc[$BM][$GV];
	BRN_UNROLL
	for (int r = 0; r < $BM; r++)
		BRN_UNROLL
		for (int q = 0; q < NV; q++)
			acc[r][q] = (V){0};
	for (int b = 0; b < n; b++) {
		const float *x = mem + $X + (long)b * $IN + i0, *dy = mem + $DY + (long)b * $OUT;
		V xv[$GV];
		BRN_UNROLL
		for (int q = 0; q < NV; q++)
			xv[q] = *(const V *)(x + q * $VL);
		BRN_UNROLL
		for (int r = 0; r < $BM; r++) {
			const float g = dy[oo[r]];
			BRN_UNROLL
			for (int q = 0; q < NV; q++)
				acc[r][q] += xv[q] * g;
		}
	}
	for (int r = 0; r < ro; r++)
		for (int q = 0; q < NV; q++) {
			/* the weights and momentum of a tile 4 ahead: the step is a
			 * stream through both, which the prefetcher alone serves
			 * slowly */
			__builtin_prefetch(mem + $WGT + (long)(o0 + r) * $IN + i0 + q * $VL + 4 * $GV * $VL, 1);
			__builtin_prefetch(mem + $WGT - $PARAMS + $MOMENTUM + (long)(o0 + r) * $IN + i0 + q * $VL + 4 * $GV * $VL, 1);
			V *p = (V *)(mem + $WGT + (long)(o0 + r) * $IN + i0 + q * $VL);
			V *mo = (V *)((float *)p - $PARAMS + $MOMENTUM);
			const V m = 0.9f * *mo + acc[r][q];
			*mo = m;
			*p -= lr * m;
		}
}

/* inputs i0..i1 of outputs o0..o0+ro */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_rows_$ISA(float *restrict mem, int n, float lr, int o0, int ro, int i0, int i1)
{
	int i = i0;
	for (; i + $GV * $VL <= i1; i += $GV * $VL)
		${NAME}_tile_$ISA(mem, n, lr, o0, ro, i, $GV);
	for (; i + $VL <= i1; i += $VL)
		${NAME}_tile_$ISA(mem, n, lr, o0, ro, i, 1);
	for (; i < i1; i++)
		for (int o = o0; o < o0 + ro; o++) {
			float acc = 0.0f;
			for (int b = 0; b < n; b++)
				acc += mem[$DY + (long)b * $OUT + o] * mem[$X + (long)b * $IN + i];
			const long p = $WGT + (long)o * $IN + i;
			const float mo = 0.9f * mem[p - $PARAMS + $MOMENTUM] + acc;
			mem[p - $PARAMS + $MOMENTUM] = mo;
			mem[p] -= lr * mo;
		}
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step;
	long at = begin;
	while (at < end && at < (long)$OUT * $IN) {
		const int o0 = (int)(at / $IN), i0 = (int)(at % $IN);
		if (i0 || end - at < $IN) { /* part of a row */
			const int i1 = end - at >= $IN - i0 ? $IN : i0 + (int)(end - at);
			${NAME}_rows_$ISA(mem, n, lr, o0, 1, i0, i1);
			at += i1 - i0;
			continue;
		}
		const int o1 = o0 + (int)((end - at) / $IN < $OUT - o0 ? (end - at) / $IN : $OUT - o0);
		for (int o = o0; o < o1; o += $BM)
			${NAME}_rows_$ISA(mem, n, lr, o, o1 - o < $BM ? o1 - o : $BM, 0, $IN);
		at += (long)(o1 - o0) * $IN;
	}
	for (; at < end; at++) { /* the bias */
		const int o = (int)(at - (long)$OUT * $IN);
		float acc = 0.0f;
		for (int b = 0; b < n; b++)
			acc += mem[$DY + (long)b * $OUT + o];
		const long p = $BIAS + o;
		const long mp = p - $PARAMS + $MOMENTUM;
		const float mo = 0.9f * mem[mp] + acc;
		mem[mp] = mo;
		mem[p] -= lr * mo;
	}
}
