/* $COMMENT, $ISA: dL/dw (and dL/db) of a depthwise conv and the SGD step
 * (momentum 0.9). Work-items as the base kernel's: one per weight
 * (k, i, j), then one per bias. A channel whose $KH x $KW weights are all
 * in the range keeps them as $VL-lane sums in registers: per example its
 * input plane is copied into a zero-padded buffer split by column phase
 * (as conv_dw), and each vector of dL/dy columns takes one contiguous load
 * and one FMA per tap. Weights of a channel cut by the range's ends are
 * summed one at a time. */
#define ${NAME}_WQ_$ISA ($OW + $VL + ($KW - 1) / $SW)
#define ${NAME}_OWV_$ISA (($OW + $VL - 1) / $VL * $VL)

static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_step_$ISA(float *restrict mem, float lr, long p, float g)
{
	const long mp = p - $PARAMS + $MOMENTUM;
	const float mo = 0.9f * mem[mp] + g;
	mem[mp] = mo;
	mem[p] -= lr * mo;
}

static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_channel_$ISA(float *restrict mem, int n, float lr, int k, float buf[$SW][$HP][${NAME}_WQ_$ISA],
                     float dyb[$OH][${NAME}_OWV_$ISA])
{
	typedef $VT V;
	V acc[$KH * $KW];
	BRN_UNROLL
	for (int t = 0; t < $KH * $KW; t++)
		acc[t] = (V){0};
	for (int b = 0; b < n; b++) {
		const float *x = mem + $X + ((long)b * $C + k / $KG) * $H * $W;
		for (int p = 0; p < $SW; p++) {
			/* buffer columns [qlo, qhi) hold input columns, the rest pad */
			const int qlo = ($PW - p + $SW - 1) / $SW, qhi0 = ($W + $PW - p + $SW - 1) / $SW;
			const int qhi = qhi0 < ${NAME}_WQ_$ISA ? qhi0 : ${NAME}_WQ_$ISA;
			for (int r = 0; r < $HP; r++) {
				float *row = buf[p][r];
				const int h = r - $PH;
				if (h < 0 || h >= $H) {
					for (int q = 0; q < ${NAME}_WQ_$ISA; q++)
						row[q] = 0.0f;
					continue;
				}
				for (int q = 0; q < qlo; q++)
					row[q] = 0.0f;
				for (int q = qlo; q < qhi; q++)
					row[q] = x[(long)h * $W + q * $SW + p - $PW];
				for (int q = qhi; q < ${NAME}_WQ_$ISA; q++)
					row[q] = 0.0f;
			}
		}
		/* dL/dy rows padded with zeros to whole vectors */
		const float *dy = mem + $DY + ((long)b * $K + k) * $OH * $OW;
		for (int oh = 0; oh < $OH; oh++) {
			for (int t = 0; t < $OW; t++)
				dyb[oh][t] = dy[(long)oh * $OW + t];
			for (int t = $OW; t < ${NAME}_OWV_$ISA; t++)
				dyb[oh][t] = 0.0f;
		}
		for (int oh = 0; oh < $OH; oh++)
			for (int t = 0; t < $OW; t += $VL) {
				const V d = *(const V *)(dyb[oh] + t);
				BRN_UNROLL
				for (int i = 0; i < $KH; i++)
					BRN_UNROLL
					for (int j = 0; j < $KW; j++)
						acc[i * $KW + j] += d * *(const V *)(buf[j % $SW][oh * $SH + i] + t + j / $SW);
			}
	}
	for (int t = 0; t < $KH * $KW; t++) {
		float g = 0.0f;
		for (int l = 0; l < $VL; l++)
			g += acc[t][l];
		${NAME}_step_$ISA(mem, lr, $WGT + (long)k * $KH * $KW + t, g);
	}
}

/* one weight (k, i, j) */
static inline __attribute__((always_inline)) $ISA_ATTR void
${NAME}_weight_$ISA(float *restrict mem, int n, float lr, long gid)
{
	const int k = (int)(gid / ($KH * $KW)), i = (int)(gid / $KW % $KH), j = (int)(gid % $KW);
	float g = 0.0f;
	for (int b = 0; b < n; b++)
		for (int oh = 0; oh < $OH; oh++) {
			const int h = oh * $SH - $PH + i;
			if (h < 0 || h >= $H)
				continue;
			for (int ow = 0; ow < $OW; ow++) {
				const int w = ow * $SW - $PW + j;
				if (w >= 0 && w < $W)
					g += mem[$DY + (((long)b * $K + k) * $OH + oh) * $OW + ow] *
					     mem[$X + (((long)b * $C + k / $KG) * $H + h) * $W + w];
			}
		}
	${NAME}_step_$ISA(mem, lr, $WGT + gid, g);
}

static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step;
	float buf[$SW][$HP][${NAME}_WQ_$ISA], dyb[$OH][${NAME}_OWV_$ISA];
	long at = begin;
	while (at < end && at < $WCOUNT) {
		if (at % ($KH * $KW) == 0 && at + $KH * $KW <= end) {
			${NAME}_channel_$ISA(mem, n, lr, (int)(at / ($KH * $KW)), buf, dyb);
			at += $KH * $KW;
		} else {
			${NAME}_weight_$ISA(mem, n, lr, at);
			at++;
		}
	}
	for (; at < end; at++) { /* the bias, summed in $VL lanes */
		typedef $VT V;
		const int k = (int)(at - $WCOUNT);
		V s = (V){0};
		float g = 0.0f;
		for (int b = 0; b < n; b++) {
			const float *dy = mem + $DY + ((long)b * $K + k) * $OH * $OW;
			long o = 0;
			for (; o + $VL <= (long)$OH * $OW; o += $VL)
				s += *(const V *)(dy + o);
			for (; o < (long)$OH * $OW; o++)
				g += dy[o];
		}
		for (int l = 0; l < $VL; l++)
			g += s[l];
		${NAME}_step_$ISA(mem, lr, $BIAS + k, g);
	}
}
#undef ${NAME}_WQ_$ISA
#undef ${NAME}_OWV_$ISA
