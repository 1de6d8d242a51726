/* $COMMENT, $ISA: a depthwise conv (one input channel per output channel),
 * forward ($FLIP 0) or its dL/dx ($FLIP 1: the same conv at stride 1 of
 * dL/dy with flipped weights, summed over the $M channels of a multiplier;
 * dL/dy of a conv of stride $USH x $USW is spread on that grid with zeros
 * between, so 1 - 1 / ($USH x $USW) of the FMAs add zeros, still as vectors).
 * Lanes are output columns: each input plane is copied once per work-item
 * run into a zero-padded buffer, split by column phase when strided (buffer
 * column q of phase p is padded column q * $DSW + p), so every tap is one
 * contiguous vector load and one FMA with a broadcast weight, branch-free.
 * Work-items as the base kernel's: ($NCB blocks of $CB channels, $OHH rows,
 * $NT tiles of $TW columns) per example. */
#define ${NAME}_WQ_$ISA ($OWW + $VL + ($KW - 1) / $DSW)

static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_fill_$ISA(const float *restrict mem, int b, int k, float buf[$M][$DSW][$HP][${NAME}_WQ_$ISA])
{
	for (int m = 0; m < $M; m++) {
		const int ich = $FLIP ? k * $KG + m : k / $KG;
		const float *x = mem + $XIN + ((long)b * $IC + ich) * $IHH * $IWW;
		if ($USH > 1 || $USW > 1) { /* buffer row r, column q: dL/dy at (r - DPH, q - DPW) / stride */
			for (int r = 0; r < $HP; r++) {
				float *row = buf[m][0][r];
				const int u = r - $DPH;
				for (int q = 0; q < ${NAME}_WQ_$ISA; q++)
					row[q] = 0.0f;
				if (u >= 0 && u % $USH == 0 && u / $USH < $IHH)
					for (int w = 0; w < $IWW; w++)
						row[$DPW + w * $USW] = x[(long)(u / $USH) * $IWW + w];
			}
			continue;
		}
		for (int p = 0; p < $DSW; p++) {
			/* buffer columns [qlo, qhi) hold input columns, the rest pad */
			const int qlo = ($DPW - p + $DSW - 1) / $DSW, qhi0 = ($IWW + $DPW - p + $DSW - 1) / $DSW;
			const int qhi = qhi0 < ${NAME}_WQ_$ISA ? qhi0 : ${NAME}_WQ_$ISA;
			for (int r = 0; r < $HP; r++) {
				float *row = buf[m][p][r];
				const int h = r - $DPH;
				if (h < 0 || h >= $IHH) {
					for (int q = 0; q < ${NAME}_WQ_$ISA; q++)
						row[q] = 0.0f;
					continue;
				}
				for (int q = 0; q < qlo; q++)
					row[q] = 0.0f;
				for (int q = qlo; q < qhi; q++)
					row[q] = x[(long)h * $IWW + q * $DSW + p - $DPW];
				for (int q = qhi; q < ${NAME}_WQ_$ISA; q++)
					row[q] = 0.0f;
			}
		}
	}
}

/* columns t0 .. t0 + NV * $VL (stored up to c1) of NR output rows from
 * oh: NR x NV independent sums, enough to hide the FMA latency */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_cols_$ISA(float *restrict mem, int b, int k, int oh, int t0, int c1, const int NR, const int NV,
                  float buf[$M][$DSW][$HP][${NAME}_WQ_$ISA])
{
	typedef $VT V;
	V acc[4][4];
	BRN_UNROLL
	for (int r = 0; r < NR; r++)
		BRN_UNROLL
		for (int q = 0; q < NV; q++)
			acc[r][q] = (V){0};
	BRN_UNROLL
	for (int m = 0; m < $M; m++)
		BRN_UNROLL
		for (int i = 0; i < $KH; i++)
			BRN_UNROLL
			for (int j = 0; j < $KW; j++) {
				const int wk = $FLIP ? k * $KG + m : k;
				const int tap = $FLIP ? ($KH - 1 - i) * $KW + $KW - 1 - j : i * $KW + j;
				const float wv = mem[$WGT + (long)wk * $KH * $KW + tap];
				BRN_UNROLL
				for (int r = 0; r < NR; r++) {
					const float *src = buf[m][j % $DSW][(oh + r) * $DSH + i] + t0 + j / $DSW;
					BRN_UNROLL
					for (int q = 0; q < NV; q++)
						acc[r][q] += *(const V *)(src + q * $VL) * wv;
				}
			}
	BRN_UNROLL
	for (int r = 0; r < NR; r++)
		BRN_UNROLL
		for (int q = 0; q < NV; q++) {
			const int ow0 = t0 + q * $VL;
			const long o0 = (((long)b * $OC + k) * $OHH + oh + r) * $OWW + ow0;
			if (ow0 + $VL <= c1)
				for (int l = 0; l < $VL; l++) {
					const long o = o0 + l;
					float v = acc[r][q][l];
$STORE
				}
			else
				for (int l = 0; l < c1 - ow0; l++) {
					const long o = o0 + l;
					float v = acc[r][q][l];
$STORE
				}
		}
}

/* NR rows from oh, columns c0 .. c1: up to 4 vectors at a time; a partial
 * last vector reads buffer padding and stores only its columns */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_rows_$ISA(float *restrict mem, int b, int k, int oh, int c0, int c1, const int NR,
                  float buf[$M][$DSW][$HP][${NAME}_WQ_$ISA])
{
	for (int t = c0; t < c1; t += 4 * $VL) {
		const int nv = (c1 - t + $VL - 1) / $VL;
		if (nv >= 4)
			${NAME}_cols_$ISA(mem, b, k, oh, t, c1, NR, 4, buf);
		else if (nv == 3)
			${NAME}_cols_$ISA(mem, b, k, oh, t, c1, NR, 3, buf);
		else if (nv == 2)
			${NAME}_cols_$ISA(mem, b, k, oh, t, c1, NR, 2, buf);
		else
			${NAME}_cols_$ISA(mem, b, k, oh, t, c1, NR, 1, buf);
	}
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	float buf[$M][$DSW][$HP][${NAME}_WQ_$ISA];
	const long plane = (long)$OHH * $NT, per_image = $NCB * plane;
	for (long gid = begin; gid < end;) {
		/* the run of work-items of one block of channels */
		const long g1 = (gid / plane + 1) * plane < end ? (gid / plane + 1) * plane : end;
		const int b = (int)(gid / per_image), cb = (int)(gid % per_image / plane);
		for (int kk = 0; kk < $CB; kk++) {
			const int k = cb * $CB + kk;
			${NAME}_fill_$ISA(mem, b, k, buf);
			for (long g = gid; g < g1;) {
				const int oh = (int)(g % plane / $NT), c0 = (int)(g % $NT) * $TW;
				const int c1 = c0 + $TW < $OWW ? c0 + $TW : $OWW;
				if ($NT == 1 && g + 4 <= g1) { /* whole rows: 4 at a time */
					${NAME}_rows_$ISA(mem, b, k, oh, c0, c1, 4, buf);
					g += 4;
				} else {
					${NAME}_rows_$ISA(mem, b, k, oh, c0, c1, 1, buf);
					g++;
				}
			}
		}
		gid = g1;
	}
}
#undef ${NAME}_WQ_$ISA
