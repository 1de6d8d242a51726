/* $COMMENT, $ISA: dL/dx of dense, dx[b, i] = sum_o dy[b, o] w[o, i].
 * Work-item i * n + b: input-major, so that the threads split w by
 * columns. A register tile of $BM examples x NV vectors of $VL inputs
 * takes NV loads of a row of w and $BM broadcasts of dL/dy per
 * $BM x NV FMAs; examples past rb repeat the last one and are not stored.
 * Columns that the range holds only in part, and the last columns that
 * fill no vector, are scalar sums. */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_tile_$ISA(float *restrict mem, int i0, int b0, int rb, const int NV)
{
	typedef $VT V;
	const float *dy[$BM];
	BRN_UNROLL
	for (int r = 0; r < $BM; r++)
		dy[r] = mem + $DY + (long)(b0 + (r < rb ? r : rb - 1)) * $OUT;
	V acc[$BM][$GV];
	BRN_UNROLL
	for (int r = 0; r < $BM; r++)
		BRN_UNROLL
		for (int q = 0; q < NV; q++)
			acc[r][q] = (V){0};
	const float *w = mem + $WGT + i0;
	for (int o = 0; o < $OUT; o++, w += $IN) {
		V wv[$GV];
		BRN_UNROLL
		for (int q = 0; q < NV; q++)
			wv[q] = *(const V *)(w + q * $VL);
		BRN_UNROLL
		for (int r = 0; r < $BM; r++) {
			const float g = dy[r][o];
			BRN_UNROLL
			for (int q = 0; q < NV; q++)
				acc[r][q] += wv[q] * g;
		}
	}
	for (int r = 0; r < rb; r++)
		for (int q = 0; q < NV; q++)
			for (int l = 0; l < $VL; l++) {
				const long gid = (long)(b0 + r) * $IN + i0 + q * $VL + l;
				const float v = acc[r][q][l];
				$STORE_DX
			}
}

/* examples b0..b1 of column i, one at a time */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_column_$ISA(float *restrict mem, int i, int b0, int b1)
{
	for (int b = b0; b < b1; b++) {
		float acc = 0.0f;
		for (int o = 0; o < $OUT; o++)
			acc += mem[$DY + (long)b * $OUT + o] * mem[$WGT + (long)o * $IN + i];
		const long gid = (long)b * $IN + i;
		const float v = acc;
		$STORE_DX
	}
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step; (void)lr;
	for (long at = begin; at < end;) {
		const int i0 = (int)(at / n), b0 = (int)(at % n);
		if (b0 || end - at < n) { /* part of a column */
			const int b1 = end - at >= n - b0 ? n : b0 + (int)(end - at);
			${NAME}_column_$ISA(mem, i0, b0, b1);
			at += b1 - b0;
			continue;
		}
		const int i1 = i0 + (int)((end - at) / n < $IN - i0 ? (end - at) / n : $IN - i0);
		int i = i0;
		for (; i + $GV * $VL <= i1; i += $GV * $VL)
			for (int b = 0; b < n; b += $BM)
				${NAME}_tile_$ISA(mem, i, b, n - b < $BM ? n - b : $BM, $GV);
		for (; i + $VL <= i1; i += $VL)
			for (int b = 0; b < n; b += $BM)
				${NAME}_tile_$ISA(mem, i, b, n - b < $BM ? n - b : $BM, 1);
		for (; i < i1; i++)
			${NAME}_column_$ISA(mem, i, 0, n);
		at += (long)(i1 - i0) * n;
	}
}
