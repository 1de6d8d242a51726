#!/usr/bin/env bash
# Golden files of emitted code: every change to generated kernels and host
# code shows up as a reviewed diff. After an intended change, refresh them
# with: tests/t_golden.sh --update
set -u
build=${BRN_BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cases=(
	"small_renorm_train_c tests/models/small_renorm.brn --mode train --target c"
	"small_renorm_train_cl tests/models/small_renorm.brn --mode train --target opencl"
	"residual_infer_c tests/models/residual.brn --mode infer --target c"
	"add_input_train_c tests/models/add_input.brn --mode train --target c"
	"add_input_train_cl tests/models/add_input.brn --mode train --target opencl"
	"add_self_train_c tests/models/add_self.brn --mode train --target c"
	"add_self_train_cl tests/models/add_self.brn --mode train --target opencl"
)
echo "1..$(( ${#cases[@]} * 3 ))"
n=0
for c in "${cases[@]}"; do
	read -r name model args <<<"$c"
	# shellcheck disable=SC2086
	if ! "$build/brnc" "$model" $args -o "$tmp/$name" 2>"$tmp/err"; then
		for i in 1 2 3; do n=$((n + 1)); echo "not ok $n - $name: brnc failed"; done
		cat "$tmp/err" >&2
		continue
	fi
	# the header comment names the command line and paths: not part of the code
	got=$(cat "$tmp/$name".h "$tmp/$name".c $( [ -f "$tmp/$name.cl" ] && echo "$tmp/$name.cl") | sed "s|$tmp/||g")
	if [ "${1:-}" = --update ]; then
		printf '%s\n' "$got" >"tests/golden/$name.txt"
	fi
	# generated code compiles warning-free with both compilers
	for c in gcc clang; do
		n=$((n + 1))
		if ! command -v $c >/dev/null; then echo "ok $n # SKIP no $c"; continue; fi
		if $c -std=c11 -O2 -Wall -Wextra -Werror -Iruntime -c "$tmp/$name.c" -o "$tmp/$name.o" 2>"$tmp/cc.err"; then
			echo "ok $n - $name compiles with $c -std=c11 -Wall -Wextra -Werror"
		else
			echo "not ok $n - $name compiles with $c -std=c11 -Wall -Wextra -Werror"
			head -n 20 "$tmp/cc.err" >&2
		fi
	done
	n=$((n + 1))
	if diff -u "tests/golden/$name.txt" <(printf '%s\n' "$got") >"$tmp/diff"; then
		echo "ok $n - $name matches tests/golden/$name.txt"
	else
		echo "not ok $n - $name differs from tests/golden/$name.txt (tests/t_golden.sh --update after review)"
		head -n 40 "$tmp/diff" >&2
	fi
done
