/* $COMMENT */
__kernel void $NAME(__global float *restrict mem, __global const int *restrict labels,
                    const int n, const long step, const float lr)
{
	const long gid = get_global_id(0);
	if (gid >= $ITEMS)
		return;
$BODY
}
