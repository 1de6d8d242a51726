/* $COMMENT, $ISA: dense $IN -> $OUT, y[b, o] = sum_i w[o, i] x[b, i] (+ bias),
 * summed in 16 lanes so that the dot product vectorizes without
 * reassociation (the unroll knob has no use here) */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long gid = begin; gid < end; gid++) {
		const int b = (int)(gid / $OUT), o = (int)(gid % $OUT);
		const float *x = mem + $X + (long)b * $IN;
		const float *w = mem + $WGT + (long)o * $IN;
		float lane[16] = {0};
		int i = 0;
		for (; i + 16 <= $IN; i += 16)
			for (int l = 0; l < 16; l++)
				lane[l] += w[i + l] * x[i + l];
		for (int l = 0; i < $IN; i++, l++)
			lane[l] += w[i] * x[i];
		float acc = 0.0f;
		for (int l = 0; l < 16; l++)
			acc += lane[l];
		float v = acc$BIAS_TERM;
$EPILOGUE
		mem[$Y + gid] = v;
	}
}
