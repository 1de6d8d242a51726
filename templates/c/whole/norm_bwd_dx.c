/* $COMMENT, $ISA: dL/dx = gamma r / sigma_B (g - mean(g) - h mean(g h)),
 * h = (x - mu_B) / sigma_B, the items of one channel at a time so that
 * the loop vectorizes */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long gid = begin; gid < end;) {
		const long row = gid / $HW, stop = (row + 1) * $HW < end ? (row + 1) * $HW : end;
		const int c = (int)(row % $C);
		const float *s = mem + $STATS + 8 * c;
		const float mu_b = s[0], sig_b = s[1], k = s[4], mean_g = s[5], mean_gh = s[6];
		for (; gid < stop; gid++) {
			float g = mem[$DY + gid];
			{ /* the relu mask, if any */
$MASK
			}
			const float v = k * (g - mean_g - (mem[$X + gid] - mu_b) / sig_b * mean_gh);
			$STORE_DX
		}
	}
}
