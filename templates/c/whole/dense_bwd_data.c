/* $COMMENT, $ISA: dL/dx of dense, dx[b, i] = sum_o dy[b, o] w[o, i]. Up to 4
 * examples at a time share each row of w, read in runs of up to 256
 * consecutive i that the hardware prefetches and the loop vectorizes. */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long at = begin; at < end;) {
		const int b = (int)(at / $IN), i0 = (int)(at % $IN);
		int nb = 1; /* examples whose every input is in the range */
		while (i0 == 0 && nb < 4 && at + (long)(nb + 1) * $IN <= end)
			nb++;
		const int i1 = nb > 1 || end - at >= $IN - i0 ? $IN : i0 + (int)(end - at);
		const float *dy = mem + $DY + (long)b * $OUT;
		for (int c0 = i0; c0 < i1; c0 += 256) {
			const int len = i1 - c0 < 256 ? i1 - c0 : 256;
			float lane[4][256];
			for (int r = 0; r < nb; r++)
				for (int l = 0; l < 256; l++)
					lane[r][l] = 0.0f;
			for (int o = 0; o < $OUT; o++) {
				const float *w = mem + $WGT + (long)o * $IN + c0;
				for (int r = 0; r < nb; r++) {
					const float g = dy[r * $OUT + o];
					for (int l = 0; l < len; l++)
						lane[r][l] += g * w[l];
				}
			}
			for (int r = 0; r < nb; r++)
				for (int l = 0; l < len; l++) {
					const long gid = (long)(b + r) * $IN + c0 + l;
					const float v = lane[r][l];
					$STORE_DX
				}
		}
		at += nb > 1 ? (long)nb * $IN : i1 - i0;
	}
}
