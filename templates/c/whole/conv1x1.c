/* $COMMENT, $ISA: a 1x1 conv at stride 1 without padding as, per example,
 * a matrix product: out[b, k, p] = sum_r A[k, r] B[b, r, p], A the
 * [$ROWS, $RED] weights (dL/dx: their transpose) with strides $AR, $AK, B
 * the $RED planes of $P positions of x (dL/dx: of dL/dy). Lanes are
 * positions: a register tile of $BM rows x NV vectors takes $BM broadcasts
 * of A and NV loads of B per $BM x NV FMAs and stores straight into NCHW.
 * Work-item (b, block of 64 positions, block of 16 rows), rows fastest, so
 * that consecutive items reuse the block of B from cache; rows past the
 * block repeat its last one and are not stored. */
static inline __attribute__((always_inline)) $ISA_ATTR $VT ${NAME}_part_$ISA(const float *src, int lanes)
{
	$VT v = ($VT){0};
	for (int l = 0; l < lanes; l++)
		v[l] = src[l];
	return v;
}

/* rows k0 .. k0 + kn, NV vectors from p0, the last with part lanes */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_tile_$ISA(float *restrict mem, int b, int k0, int kn, int p0, int part, const int NV)
{
	typedef $VT V;
	const float *a[$BM];
	BRN_UNROLL
	for (int r = 0; r < $BM; r++)
		a[r] = mem + $WGT + (long)(k0 + (r < kn ? r : kn - 1)) * $AR;
	const float *x = mem + $XB + (long)b * $RED * $P + p0;
	V acc[$BM][$GV];
	BRN_UNROLL
	for (int r = 0; r < $BM; r++)
		BRN_UNROLL
		for (int q = 0; q < NV; q++)
			acc[r][q] = (V){0};
	for (int c = 0; c < $RED; c++, x += $P) {
		V xv[$GV];
		BRN_UNROLL
		for (int q = 0; q < NV; q++)
			xv[q] = q == NV - 1 && part < $VL ? ${NAME}_part_$ISA(x + q * $VL, part) : *(const V *)(x + q * $VL);
		BRN_UNROLL
		for (int r = 0; r < $BM; r++) {
			const float w = a[r][(long)c * $AK];
			BRN_UNROLL
			for (int q = 0; q < NV; q++)
				acc[r][q] += xv[q] * w;
		}
	}
	for (int r = 0; r < kn; r++) {
		const int k = k0 + r;
		for (int q = 0; q < NV; q++) {
			const long o0 = ((long)b * $ROWS + k) * $P + p0 + q * $VL;
			if (q < NV - 1 || part == $VL)
				for (int l = 0; l < $VL; l++) {
					const long o = o0 + l;
					float v = acc[r][q][l];
$STORE
				}
			else
				for (int l = 0; l < part; l++) {
					const long o = o0 + l;
					float v = acc[r][q][l];
$STORE
				}
		}
	}
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long gid = begin; gid < end; gid++) {
		const int b = (int)(gid / ($PB * $RB)), pb = (int)(gid / $RB % $PB), rb = (int)(gid % $RB);
		const int p1 = pb * 64 + 64 < $P ? pb * 64 + 64 : $P;
		const int k1 = rb * 16 + 16 < $ROWS ? rb * 16 + 16 : $ROWS;
		for (int k0 = rb * 16; k0 < k1; k0 += $BM) {
			const int kn = k1 - k0 < $BM ? k1 - k0 : $BM;
			int p = pb * 64;
			for (; p + $GV * $VL <= p1; p += $GV * $VL)
				${NAME}_tile_$ISA(mem, b, k0, kn, p, $VL, $GV);
			for (; p < p1; p += $VL)
				${NAME}_tile_$ISA(mem, b, k0, kn, p, p1 - p < $VL ? p1 - p : $VL, 1);
		}
	}
}
