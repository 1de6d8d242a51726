/* $COMMENT, $ISA: dL/dx of global average pool, one channel's $HW items
 * at a time so that the loop vectorizes */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long gid = begin; gid < end;) {
		const long row = gid / $HW, stop = (row + 1) * $HW < end ? (row + 1) * $HW : end;
		const float g = mem[$DY + row] / (float)$HW;
		for (; gid < stop; gid++) {
			const float v = g;
			$STORE_DX
		}
	}
}
