/* $COMMENT, $ISA: columns ow0..ow1 of one dL/dy row into the registers of
 * a 16-channel x $ICS-input x $KW-tap gradient tile; edge: check taps */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_cols_$ISA($VT acc[$KW][$ICS], const float *dyr, const float *const xr[$ICS], int ow0, int ow1, int edge)
{
	for (int ow = ow0; ow < ow1; ow++) {
		const $VT d = *(const $VT *)(dyr + ow * 16);
		BRN_UNROLL
		for (int j = 0; j < $KW; j++) {
			const int iw = ow * $SW - $PW + j;
			if (edge && (iw < 0 || iw >= $W))
				continue;
			BRN_UNROLL
			for (int ic = 0; ic < $ICS; ic++)
				acc[j][ic] += d * xr[ic][iw];
		}
	}
}

/* a work-item owns the dL/dw of 16 output channels x $ICS input channels x
 * one kernel row (or the dL/db of 16 channels): no atomics, and the SGD
 * step (momentum 0.9) is applied right here */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_item_$ISA(float *restrict mem, int n, float lr, long gid)
{
	if (gid >= $WITEMS) {
		const int kb = (int)(gid - $WITEMS);
		for (int v = 0; v < $NV; v++) {
			$VT s = {0};
			for (long p = 0; p < (long)n * $OH * $OW; p++) {
				const long b = p / ($OH * $OW), r = p % ($OH * $OW);
				s += *(const $VT *)(mem + $DYB + ((b * $KB + kb) * ($OH * $OW) + r) * 16 + v * $VL);
			}
			for (int l = 0; l < $VL && kb * 16 + v * $VL + l < $K; l++) {
				const long p = $BIAS + kb * 16 + v * $VL + l;
				const float mo = 0.9f * mem[p - $PARAMS + $MOMENTUM] + s[l];
				mem[p - $PARAMS + $MOMENTUM] = mo;
				mem[p] -= lr * mo;
			}
		}
		return;
	}
	const int kb = (int)(gid / ($CGS * $KH)), c0 = (int)(gid / $KH % $CGS) * $ICS, i = (int)(gid % $KH);
	for (int v = 0; v < $NV; v++) {
		$VT acc[$KW][$ICS];
		BRN_UNROLL
		for (int j = 0; j < $KW; j++)
			BRN_UNROLL
			for (int ic = 0; ic < $ICS; ic++)
				acc[j][ic] = ($VT){0};
		for (int b = 0; b < n; b++)
			for (int oh = 0; oh < $OH; oh++) {
				const int h = oh * $SH - $PH + i;
				if (h < 0 || h >= $H)
					continue;
				const float *dyr = mem + $DYB + (((long)b * $KB + kb) * $OH + oh) * ($OW * 16) + v * $VL;
				const float *xr[$ICS];
				for (int ic = 0; ic < $ICS; ic++)
					xr[ic] = mem + $X + (((long)b * $C + c0 + ic) * $H + h) * $W;
				${NAME}_cols_$ISA(acc, dyr, xr, 0, $OLO, 1);
				${NAME}_cols_$ISA(acc, dyr, xr, $OLO, $OHI, 0);
				${NAME}_cols_$ISA(acc, dyr, xr, $OHI, $OW, 1);
			}
		for (int l = 0; l < $VL; l++) {
			const int k = kb * 16 + v * $VL + l;
			if (k >= $K)
				break;
			for (int ic = 0; ic < $ICS; ic++)
				for (int j = 0; j < $KW; j++) {
					const long p = $WGT + (((long)k * $C + c0 + ic) * $KH + i) * $KW + j;
					const float mo = 0.9f * mem[p - $PARAMS + $MOMENTUM] + acc[j][ic][l];
					mem[p - $PARAMS + $MOMENTUM] = mo;
					mem[p] -= lr * mo;
				}
		}
	}
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step;
	for (long gid = begin; gid < end; gid++)
		${NAME}_item_$ISA(mem, n, lr, gid);
}
