#!/usr/bin/env bash
# The vector kernels (conv16, depthwise, dense) have one function per ISA,
# chosen at open by CPU features; BRN_ISA forces a lower one. Each variant
# this machine can run is checked against the interpreter on the t_codegen
# cases whose convs have edge, middle and partial tiles (wide.brn), odd
# shapes, strided convs whose dL/dx is the transposed kernel (strided.brn),
# and layers whose sizes fill no vector evenly (gemm.brn: dense, 1x1 and
# depthwise convs at batch 7, and 5 and 1 examples of it).
set -u
build=${BRN_BUILD:-build}
cases=(6 12 13 14 23 24 27 28 29)
isas=(generic)
grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && isas+=(avx2)
grep -qw avx512f /proc/cpuinfo && isas+=(avx512)
echo "1..$(( ${#cases[@]} * ${#isas[@]} ))"
n=0
for isa in "${isas[@]}"; do
	for c in "${cases[@]}"; do
		n=$((n + 1))
		out=$(BRN_ISA=$isa "$build/tests/t_codegen" c "$c" 2>&1)
		good=$(grep -c '^ok' <<<"$out")
		bad=$(grep -c '^not ok' <<<"$out")
		if [ "$bad" = 0 ] && [ "$good" -gt 0 ]; then
			echo "ok $n - BRN_ISA=$isa t_codegen case $c: $good checks"
		else
			echo "not ok $n - BRN_ISA=$isa t_codegen case $c: $bad of $((good + bad)) checks failed"
			grep -A4 '^not ok' <<<"$out" | sed 's/^/# /'
		fi
	done
done
