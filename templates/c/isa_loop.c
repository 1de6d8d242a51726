/* $COMMENT, $ISA: the kernel's body over a range of work-items, compiled
 * for this ISA */
static $ISA_ATTR void ${NAME}_$ISA(float *restrict mem, const int32_t *restrict labels, int n, int64_t step, float lr, long begin, long end)
{
	(void)labels; (void)n; (void)step; (void)lr;
	for (long gid = begin; gid < end; gid++) {
$BODY
	}
}
