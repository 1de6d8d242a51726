/* $COMMENT, $ISA: dense $IN -> $OUT, y[b, o] = sum_i w[o, i] x[b, i] (+ bias).
 * Up to 4 examples at a time share each row of w (read once for them);
 * each dot product is summed in 16 lanes so that it vectorizes without
 * reassociation (the unroll knob has no use here). */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long at = begin; at < end;) {
		const int b = (int)(at / $OUT), o0 = (int)(at % $OUT);
		int nb = 1; /* examples whose every output is in the range */
		while (o0 == 0 && nb < 4 && at + (long)(nb + 1) * $OUT <= end)
			nb++;
		const int o1 = nb > 1 || end - at >= $OUT - o0 ? $OUT : o0 + (int)(end - at);
		const float *xb = mem + $X + (long)b * $IN;
		for (int o = o0; o < o1; o++) {
			const float *w = mem + $WGT + (long)o * $IN;
			float lane[4][16] = {{0}};
			int i = 0;
			for (; i + 16 <= $IN; i += 16)
				for (int r = 0; r < nb; r++)
					for (int l = 0; l < 16; l++)
						lane[r][l] += w[i + l] * xb[r * $IN + i + l];
			for (int r = 0; r < nb; r++)
				for (int j = i, l = 0; j < $IN; j++, l++)
					lane[r][l] += w[j] * xb[r * $IN + j];
			for (int r = 0; r < nb; r++) {
				const long gid = (long)(b + r) * $OUT + o;
				float acc = 0.0f;
				for (int l = 0; l < 16; l++)
					acc += lane[r][l];
				float v = acc$BIAS_TERM;
$EPILOGUE
				mem[$Y + gid] = v;
			}
		}
		at += nb > 1 ? (long)nb * $OUT : o1 - o0;
	}
}
