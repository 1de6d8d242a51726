/* $COMMENT, $ISA: global average pool over $HW values, summed in 16 lanes
 * so that the loop vectorizes without reassociation */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long gid = begin; gid < end; gid++) {
		const float *x = mem + $X + gid * $HW;
		float lane[16] = {0};
		long i = 0;
		for (; i + 16 <= $HW; i += 16)
			for (int l = 0; l < 16; l++)
				lane[l] += x[i + l];
		for (; i < $HW; i++)
			lane[i % 16] += x[i];
		float acc = 0.0f;
		for (int l = 0; l < 16; l++)
			acc += lane[l];
		float v = acc / (float)$HW;
$EPILOGUE
		mem[$Y + gid] = v;
	}
}
