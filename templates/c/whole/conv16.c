/* $COMMENT, $ISA: a register tile is $OB x 16 output channels x $RW
 * columns of one row; out-of-image taps of the edge tiles drop out at
 * compile time (ow0, rw, edge and ph are constants there).
 * Transposed strides $TSH x $TSW (above 1 for the dL/dx of a strided conv,
 * read straight from dL/dy): output column ph + S (ow0 + r) takes the taps
 * j with ph - PW + j a multiple of S, the same for the whole tile, from
 * input column (ow0 + r) + (ph - PW + j) / S; rows likewise. */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_tile_$ISA(float *restrict mem, int b, int kb0, int oh, int ilo, int ihi, int ph, int ow0, int rw, int edge)
{
	typedef $VT V;
	V acc[$OB * $NV][$RW];
	BRN_UNROLL
	for (int q = 0; q < $OB * $NV; q++)
		BRN_UNROLL
		for (int r = 0; r < $RW; r++)
			acc[q][r] = (V){0};
	for (int c = 0; c < $C; c++)
		for (int i = ilo; i < ihi; i++) {
			if ((oh * $SH - $PH + i) % $TSH)
				continue;
			const float *xr = mem + $X + (((long)b * $C + c) * $H + (oh * $SH - $PH + i) / $TSH) * $W;
			const float *wr = mem + $WP + (((long)kb0 * $C + c) * $KH + i) * ($KW * 16);
			BRN_UNROLL
			for (int j = 0; j < $KW; j++) {
				V w[$OB * $NV];
				BRN_UNROLL
				for (int q = 0; q < $OB * $NV; q++)
					w[q] = *(const V *)(wr + (long)(q / $NV) * ($C * $KH * $KW * 16) + j * 16 + q % $NV * $VL);
				BRN_UNROLL
				for (int r = 0; r < $RW; r++) {
					const int iw = (ow0 + r) * $SW + (ph - $PW + j) / $TSW;
					if (r < rw && (ph - $PW + j) % $TSW == 0 && (!edge || (iw >= 0 && iw < $W))) {
						const float xv = xr[iw];
						BRN_UNROLL
						for (int q = 0; q < $OB * $NV; q++)
							acc[q][r] += w[q] * xv;
					}
				}
			}
		}
	for (int q = 0; q < $OB * $NV; q++)
		for (int l = 0; l < $VL; l++) {
			const int k = kb0 * 16 + q * $VL + l;
			if (k >= $K)
				break;
			for (int r = 0; r < rw; r++) {
				const long o = (((long)b * $K + k) * $OH + oh) * $OW + ph + $TSW * (ow0 + r);
				float v = acc[q][r][l];
$STORE
			}
		}
}

/* a work-item: one output row of $OBG blocks of 16 channels, tile by tile
 * (per column phase ph when transposed) */
static inline __attribute__((always_inline)) $ISA_ATTR void ${NAME}_item_$ISA(float *restrict mem, long gid)
{
	const int b = (int)(gid / ($KGRP * $OH));
	const int kg = (int)(gid / $OH % $KGRP);
	const int oh = (int)(gid % $OH);
	const int ilo = $PH - oh * $SH > 0 ? $PH - oh * $SH : 0;
	const int ihi = $TSH * ($H - 1) + 1 + $PH - oh * $SH < $KH ? $TSH * ($H - 1) + 1 + $PH - oh * $SH : $KH;
	BRN_UNROLL
	for (int ph = 0; ph < $TSW; ph++) {
		/* this phase's columns, tiles, the last tile's width, and whether
		 * the middle tiles' taps all fall inside the input */
		const int owp = ($OW - ph + $TSW - 1) / $TSW, owt = (owp + $RW - 1) / $RW;
		const int last = owp - (owt - 1) * $RW;
		const int mid_safe = $RW * $SW + BRN_CEIL_DIV(ph - $PW, $TSW) >= 0 &&
		                     (owp - last - 1) * $SW + BRN_FLOOR_DIV(ph - $PW + $KW - 1, $TSW) < $W;
		for (int ob = 0; ob < $OBG; ob += $OB) {
			const int kb0 = kg * $OBG + ob;
			${NAME}_tile_$ISA(mem, b, kb0, oh, ilo, ihi, ph, 0, owt == 1 ? owp : $RW, 1);
			for (int t = 1; t < owt - 1; t++)
				${NAME}_tile_$ISA(mem, b, kb0, oh, ilo, ihi, ph, t * $RW, $RW, !mid_safe);
			if (owt > 1)
				${NAME}_tile_$ISA(mem, b, kb0, oh, ilo, ihi, ph, (owt - 1) * $RW, last, 1);
		}
	}
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long gid = begin; gid < end; gid++)
		${NAME}_item_$ISA(mem, gid);
}
