/* $COMMENT, $ISA: dL/dx of dense, dx[b, i] = sum_o dy[b, o] w[o, i], for
 * runs of consecutive i so that the loop over i vectorizes */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long at = begin; at < end;) {
		const int b = (int)(at / $IN), i0 = (int)(at % $IN);
		const int i1 = end - at < $IN - i0 ? i0 + (int)(end - at) : $IN;
		const float *dy = mem + $DY + (long)b * $OUT;
		for (int c0 = i0; c0 < i1; c0 += 16) {
			const int len = i1 - c0 < 16 ? i1 - c0 : 16;
			float lane[16] = {0};
			for (int o = 0; o < $OUT; o++) {
				const float *w = mem + $WGT + (long)o * $IN + c0;
				const float g = dy[o];
				if (len == 16)
					for (int l = 0; l < 16; l++)
						lane[l] += g * w[l];
				else
					for (int l = 0; l < len; l++)
						lane[l] += g * w[l];
			}
			for (int l = 0; l < len; l++) {
				const long gid = (long)b * $IN + c0 + l;
				const float v = lane[l];
				$STORE_DX
			}
		}
		at += i1 - i0;
	}
}
