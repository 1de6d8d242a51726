/* $COMMENT, $ISA: per channel, batch mean and std, the clipped corrections
 * r and d, and the moving statistics (updated after r and d are taken);
 * sums in 16 lanes so that they vectorize without reassociation */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)step; (void)lr;
	for (long gid = begin; gid < end; gid++) {
		const int c = (int)gid;
		const float m = (float)n * $HW;
		float lane[16] = {0};
		for (int b = 0; b < n; b++) {
			const float *p = mem + $X + ((long)b * $C + c) * $HW;
			long i = 0;
			for (; i + 16 <= $HW; i += 16)
				for (int l = 0; l < 16; l++)
					lane[l] += p[i + l];
			for (; i < $HW; i++)
				lane[i % 16] += p[i];
		}
		float sum = 0.0f;
		for (int l = 0; l < 16; l++)
			sum += lane[l];
		const float mu_b = sum / m;
		for (int l = 0; l < 16; l++)
			lane[l] = 0.0f;
		for (int b = 0; b < n; b++) {
			const float *p = mem + $X + ((long)b * $C + c) * $HW;
			long i = 0;
			for (; i + 16 <= $HW; i += 16)
				for (int l = 0; l < 16; l++)
					lane[l] += (p[i + l] - mu_b) * (p[i + l] - mu_b);
			for (; i < $HW; i++)
				lane[i % 16] += (p[i] - mu_b) * (p[i] - mu_b);
		}
		float sq = 0.0f;
		for (int l = 0; l < 16; l++)
			sq += lane[l];
		const float sig_b = SQRT(sq / m + $EPS);
		const float mu = mem[$MEAN + c], sigma = mem[$SIGMA + c];
		const float r_max = $R_MAX, d_max = $D_MAX;
		float *s = mem + $STATS + 8 * c;
		s[0] = mu_b;
		s[1] = sig_b;
		s[2] = FMIN(FMAX(sig_b / sigma, 1.0f / r_max), r_max);
		s[3] = FMIN(FMAX((mu_b - mu) / sigma, -d_max), d_max);
		mem[$MEAN + c] = mu + $ALPHA * (mu_b - mu);
		mem[$SIGMA + c] = sigma + $ALPHA * (sig_b - sigma);
	}
}
