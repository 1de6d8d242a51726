/* $COMMENT, $ISA: dense $IN -> $OUT, y[b, o] = sum_i w[o, i] x[b, i] (+ bias).
 * Work-item o * n + b: output-major, so that the threads split w between
 * them and each reads its rows once. A register tile of $DM outputs x NB
 * examples keeps $VL-lane partial dot products ($DM + NB loads for
 * $DM x NB FMAs); rows and examples past ro and rb repeat the last one and
 * are not stored, so the tile's shape is a constant. The inputs go in runs
 * of 1024, so that the tile's rows of w stay in the L1 cache while up to 64
 * examples pass. */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_tile_$ISA(const float *restrict mem, int o0, int ro, int b0, int rb, const int NB, int i0, int i1,
                  float s[][$DM])
{
	typedef $VT V;
	const float *w[$DM], *x[4];
	BRN_UNROLL
	for (int r = 0; r < $DM; r++)
		w[r] = mem + $WGT + (long)(o0 + (r < ro ? r : ro - 1)) * $IN;
	BRN_UNROLL
	for (int c = 0; c < NB; c++)
		x[c] = mem + $X + (long)(b0 + (c < rb ? c : rb - 1)) * $IN;
	V acc[$DM][4];
	BRN_UNROLL
	for (int r = 0; r < $DM; r++)
		BRN_UNROLL
		for (int c = 0; c < NB; c++)
			acc[r][c] = (V){0};
	int i = i0;
	for (; i + $VL <= i1; i += $VL) {
		V xv[4];
		BRN_UNROLL
		for (int c = 0; c < NB; c++)
			xv[c] = *(const V *)(x[c] + i);
		BRN_UNROLL
		for (int r = 0; r < $DM; r++) {
			const V wv = *(const V *)(w[r] + i);
			BRN_UNROLL
			for (int c = 0; c < NB; c++)
				acc[r][c] += wv * xv[c];
		}
	}
	for (int r = 0; r < ro; r++)
		for (int c = 0; c < rb; c++) {
			float t = 0.0f;
			for (int l = 0; l < $VL; l++)
				t += acc[r][c][l];
			for (int j = i; j < i1; j++)
				t += w[r][j] * x[c][j];
			s[c][r] += t;
		}
}

/* outputs o0 .. o0 + ro, examples b0 .. b1 */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_rows_$ISA(float *restrict mem, int o0, int ro, int b0, int b1)
{
	for (int bb = b0; bb < b1; bb += 64) {
		const int be = b1 - bb < 64 ? b1 : bb + 64;
		float s[64][$DM];
		for (int c = 0; c < be - bb; c++)
			for (int r = 0; r < $DM; r++)
				s[c][r] = 0.0f;
		for (int i0 = 0; i0 < $IN; i0 += 1024) {
			const int i1 = $IN - i0 < 1024 ? $IN : i0 + 1024;
			int b = bb;
			for (; b + 4 <= be; b += 4)
				${NAME}_tile_$ISA(mem, o0, ro, b, 4, 4, i0, i1, s + (b - bb));
			for (; b < be; b++)
				${NAME}_tile_$ISA(mem, o0, ro, b, 1, 1, i0, i1, s + (b - bb));
		}
		for (int r = 0; r < ro; r++)
			for (int c = 0; c < be - bb; c++) {
				const int o = o0 + r;
				const long gid = (long)(bb + c) * $OUT + o;
				float v = s[c][r]$BIAS_TERM;
$EPILOGUE
				mem[$Y + gid] = v;
			}
	}
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step; (void)lr;
	for (long at = begin; at < end;) {
		const int o0 = (int)(at / n), b0 = (int)(at % n);
		int ro = 1; /* outputs whose every example is in the range, up to $DM */
		while (b0 == 0 && ro < $DM && o0 + ro < $OUT && at + (long)(ro + 1) * n <= end)
			ro++;
		const int b1 = ro > 1 || end - at >= n - b0 ? n : b0 + (int)(end - at);
		${NAME}_rows_$ISA(mem, o0, ro, b0, b1);
		at += ro > 1 ? (long)ro * n : b1 - b0;
	}
}
