/* $COMMENT, $ISA: dL/dw (and dL/db) of a 1x1 conv at stride 1 without
 * padding, and the SGD step (momentum 0.9): dw[k, c] = sum over examples
 * and the $P positions of dy[b, k, p] x[b, c, p], read straight from NCHW.
 * Work-item: a block of 16 x 16 weights (and biases); per example, runs
 * of 256 positions of its 32 rows of dL/dy and x stay in the L1 cache while
 * its register tiles of $DM x 4 weights ($DM + 4 loads per 4 $DM FMAs) add
 * them into $VL-lane sums; rows and columns past $K and $C repeat the last
 * one and are not stored. */
static inline __attribute__((always_inline)) $ISA_ATTR $VT ${NAME}_part_$ISA(const float *src, int lanes)
{
	$VT v = ($VT){0};
	for (int l = 0; l < lanes; l++)
		v[l] = src[l];
	return v;
}

static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_step_$ISA(float *restrict mem, float lr, long p, float g)
{
	const long mp = p - $PARAMS + $MOMENTUM;
	const float mo = 0.9f * mem[mp] + g;
	mem[mp] = mo;
	mem[p] -= lr * mo;
}

/* weights (k0 + r, c0 + s) for r < $DM, s < 4, example b, positions
 * p0 .. p1, added to part */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_tile_$ISA(const float *restrict mem, int b, int p0, int p1, int k0, int c0, $VT part[$DM][4])
{
	typedef $VT V;
	const float *dy[$DM], *x[4];
	BRN_UNROLL
	for (int r = 0; r < $DM; r++)
		dy[r] = mem + $DY + ((long)b * $K + (k0 + r < $K ? k0 + r : $K - 1)) * $P;
	BRN_UNROLL
	for (int s = 0; s < 4; s++)
		x[s] = mem + $X + ((long)b * $C + (c0 + s < $C ? c0 + s : $C - 1)) * $P;
	V acc[$DM][4];
	BRN_UNROLL
	for (int r = 0; r < $DM; r++)
		BRN_UNROLL
		for (int s = 0; s < 4; s++)
			acc[r][s] = part[r][s];
	int p = p0;
	for (; p + $VL <= p1; p += $VL) {
		V xv[4];
		BRN_UNROLL
		for (int s = 0; s < 4; s++)
			xv[s] = *(const V *)(x[s] + p);
		BRN_UNROLL
		for (int r = 0; r < $DM; r++) {
			const V d = *(const V *)(dy[r] + p);
			BRN_UNROLL
			for (int s = 0; s < 4; s++)
				acc[r][s] += d * xv[s];
		}
	}
	if (p < p1) { /* the last positions, zero-padded to a vector */
		V xv[4];
		BRN_UNROLL
		for (int s = 0; s < 4; s++)
			xv[s] = ${NAME}_part_$ISA(x[s] + p, p1 - p);
		BRN_UNROLL
		for (int r = 0; r < $DM; r++) {
			const V d = ${NAME}_part_$ISA(dy[r] + p, p1 - p);
			BRN_UNROLL
			for (int s = 0; s < 4; s++)
				acc[r][s] += d * xv[s];
		}
	}
	BRN_UNROLL
	for (int r = 0; r < $DM; r++)
		BRN_UNROLL
		for (int s = 0; s < 4; s++)
			part[r][s] = acc[r][s];
}

static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_block_$ISA(float *restrict mem, int n, float lr, int k0, int c0)
{
	$VT part[16 / $DM][4][$DM][4];
	for (int t = 0; t < 16 / $DM; t++)
		for (int u = 0; u < 4; u++)
			for (int r = 0; r < $DM; r++)
				for (int s = 0; s < 4; s++)
					part[t][u][r][s] = ($VT){0};
	for (int b = 0; b < n; b++)
		for (int p0 = 0; p0 < $P; p0 += 256)
			for (int t = 0; t < 16 / $DM && k0 + t * $DM < $K; t++)
				for (int u = 0; u < 4 && c0 + u * 4 < $C; u++)
					${NAME}_tile_$ISA(mem, b, p0, p0 + 256 < $P ? p0 + 256 : $P, k0 + t * $DM, c0 + u * 4,
					                  part[t][u]);
	for (int r = 0; r < 16 && k0 + r < $K; r++)
		for (int s = 0; s < 16 && c0 + s < $C; s++) {
			float g = 0.0f;
			for (int l = 0; l < $VL; l++)
				g += part[r / $DM][s / 4][r % $DM][s % 4][l];
			${NAME}_step_$ISA(mem, lr, $WGT + (long)(k0 + r) * $C + c0 + s, g);
		}
}

/* dL/db of channel k, summed in $VL lanes */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_bias_$ISA(float *restrict mem, int n, float lr, int k)
{
	typedef $VT V;
	V s = (V){0};
	float g = 0.0f;
	for (int b = 0; b < n; b++) {
		const float *dy = mem + $DY + ((long)b * $K + k) * $P;
		int p = 0;
		for (; p + $VL <= $P; p += $VL)
			s += *(const V *)(dy + p);
		for (; p < $P; p++)
			g += dy[p];
	}
	for (int l = 0; l < $VL; l++)
		g += s[l];
	${NAME}_step_$ISA(mem, lr, $BIAS + k, g);
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step;
	for (long at = begin; at < end; at++) {
		const int k0 = (int)(at / $CB) * 16, c0 = (int)(at % $CB) * 16;
		${NAME}_block_$ISA(mem, n, lr, k0, c0);
		/* the first block of a row of blocks also takes its biases */
		for (int k = k0; $HAS_BIAS && c0 == 0 && k < k0 + 16 && k < $K; k++)
			${NAME}_bias_$ISA(mem, n, lr, k);
	}
}
