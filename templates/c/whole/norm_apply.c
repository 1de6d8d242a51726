/* $COMMENT, $ISA: y = gamma * ((x - mu_B) / sigma_B * r + d) + beta$RELU_NOTE,
 * the items of one channel at a time, so the loop vectorizes */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long gid = begin; gid < end;) {
		const long row = gid / $HW, stop = (row + 1) * $HW < end ? (row + 1) * $HW : end;
		const int c = (int)(row % $C);
		const float *s = mem + $STATS + 8 * c;
		const float mu = s[0], sig = s[1], r = s[2], d = s[3], gamma = mem[$GAMMA + c], beta = mem[$BETA + c];
		for (; gid < stop; gid++) {
			float v = (mem[$X + gid] - mu) / sig * r + d;
			v = gamma * v + beta;
$EPILOGUE
			mem[$Y + gid] = v;
		}
	}
}
