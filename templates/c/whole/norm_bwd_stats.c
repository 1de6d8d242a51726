/* $COMMENT, $ISA: per channel, dgamma, dbeta (then their SGD step), and
 * the coefficients of dL/dx; r and d are constants (stop_gradient). Sums
 * in 16 lanes so that they vectorize without reassociation. */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step;
	for (long gid = begin; gid < end; gid++) {
		const int c = (int)gid;
		const float m = (float)n * $HW;
		float *s = mem + $STATS + 8 * c;
		const float mu_b = s[0], sig_b = s[1], r = s[2], d = s[3];
		float lane_dy[16] = {0}, lane_dyx[16] = {0};
		for (int b = 0; b < n; b++) {
			const long base = ((long)b * $C + c) * $HW;
			long i0 = 0;
			for (; i0 + 16 <= $HW; i0 += 16)
				for (int l = 0; l < 16; l++) {
					const long i = i0 + l;
					float g = mem[$DY + base + i];
					{ /* the relu mask, if any */
$MASK
					}
					lane_dy[l] += g;
					lane_dyx[l] += g * (mem[$X + base + i] - mu_b);
				}
			for (long i = i0; i < $HW; i++) {
				float g = mem[$DY + base + i];
				{ /* the relu mask, if any */
$MASK
				}
				lane_dy[i % 16] += g;
				lane_dyx[i % 16] += g * (mem[$X + base + i] - mu_b);
			}
		}
		float sum_dy = 0.0f, sum_dyx = 0.0f;
		for (int l = 0; l < 16; l++) {
			sum_dy += lane_dy[l];
			sum_dyx += lane_dyx[l];
		}
		const float gamma = mem[$GAMMA + c];
		/* x_hat = (x - mu_B) / sigma_B * r + d */
		const float dgamma = sum_dyx / sig_b * r + d * sum_dy;
		const float dbeta = sum_dy;
		/* dL/dx = gamma r / sigma_B (g - mean(g) - h mean(g h)), h = (x -
		 * mu_B) / sigma_B: where m is 1 both terms cancel exactly */
		s[4] = gamma * r / sig_b;
		s[5] = sum_dy / m;
		s[6] = sum_dyx / sig_b / m;
		/* SGD with momentum 0.9 */
		const float mg = 0.9f * mem[$MGAMMA + c] + dgamma;
		const float mb = 0.9f * mem[$MBETA + c] + dbeta;
		mem[$MGAMMA + c] = mg;
		mem[$MBETA + c] = mb;
		mem[$GAMMA + c] = gamma - lr * mg;
		mem[$BETA + c] = mem[$BETA + c] - lr * mb;
	}
}
