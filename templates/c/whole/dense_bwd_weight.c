/* $COMMENT, $ISA: dL/dw (and dL/db) of dense and the SGD step, for runs of
 * up to 256 weights of one output: rows of x are read in runs that the
 * hardware prefetches, and the loop over them vectorizes */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step;
	long at = begin;
	for (; at < end && at < (long)$OUT * $IN;) {
		const int o = (int)(at / $IN), i0 = (int)(at % $IN);
		const int i1 = end - at < $IN - i0 ? i0 + (int)(end - at) : $IN;
		for (int c0 = i0; c0 < i1; c0 += 256) {
			const int len = i1 - c0 < 256 ? i1 - c0 : 256;
			float lane[256] = {0};
			for (int b = 0; b < n; b++) {
				const float g = mem[$DY + (long)b * $OUT + o];
				const float *x = mem + $X + (long)b * $IN + c0;
				if (len == 256)
					for (int l = 0; l < 256; l++)
						lane[l] += g * x[l];
				else
					for (int l = 0; l < len; l++)
						lane[l] += g * x[l];
			}
			float *p = mem + $WGT + (long)o * $IN + c0;
			float *mo = p - $PARAMS + $MOMENTUM;
			for (int l = 0; l < len; l++) {
				mo[l] = 0.9f * mo[l] + lane[l];
				p[l] -= lr * mo[l];
			}
		}
		at += i1 - i0;
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
