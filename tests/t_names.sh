#!/usr/bin/env bash
# t_names.sh: model names against the C that brnc emits (issue 13). A model
# takes any name the generated code uses internally (those all begin with
# brn_ or BRN_): each such name compiles for both targets, with gcc and
# clang at -Wall -Wextra -Werror, together with a program that includes the
# C library headers, libbrnrt's and the model's; the C one runs. Names C
# cannot take are refused on both targets (messages: t_errors.sh).
set -u
build=$(realpath "${BRN_BUILD:-build}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
libs="$build/libbrnrt.a $(pkg-config --libs libcjson 2>/dev/null) -lOpenCL -lm -lpthread"
# names of the generated code and of its parameters and locals, then C
# dialect macros and kernel-like names
good=(fail specs slots slot device launch init_weights check_model N_SLOTS infer_kernels
	CLASSES TRAINING FOLDED MEM_FLOATS ctx begin end load
	schedule_at N_KERNELS m x y n step GLOBAL SQRT i01_c_conv_fwd t05_c_norm_bwd_dx)
bad=(int float auto restrict exp log free sqrtf memcpy brnrt brnrt_st brnrt_pool brnrt_error
	brn_model BRN_MEM_FLOATS _model main cl_int size_t stdin NAN timespec)
compilers=()
for c in gcc clang; do command -v $c >/dev/null && compilers+=("$c"); done
# under make asan the library carries its compiler's sanitizer runtime: link
# with that compiler and the same flags only
san=${BRN_SAN:-}
[ -n "$san" ] && compilers=("${BRN_CC:-cc}")
echo "1..$(( ${#good[@]} * (2 * (${#compilers[@]} + 1) + 1) + ${#bad[@]} * 2 ))"
n=0
check() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

model() { # model NAME: a small model with every kind of kernel
	cat <<M
model $1;
batch 2;
input x[1, 4, 4];
labels y[2];
c = conv(x, 2, kernel=3, pad=1);
r = relu(batch_renorm(c));
a = add(r, r);
d = dense(flatten(maxpool(a, 2)), 2);
loss softmax_cross_entropy(d, y);
M
}

program() { # program NAME: uses the model's API beside the C library's
	local up
	up=$(echo "$1" | tr a-z A-Z)
	cat <<C
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "brnrt.h"
#include "$1.h"

int main(void)
{
	$1 *the_model;
	float x[${up}_BATCH * ${up}_INPUT_SIZE], out[${up}_BATCH * ${up}_OUTPUT_SIZE], loss = NAN;
	int32_t y[${up}_BATCH] = {0, 1};
	for (int i = 0; i < ${up}_BATCH * ${up}_INPUT_SIZE; i++)
		x[i] = (float)sin(i);
	int rc = $1_open(&the_model, NULL);
	if (!rc)
		rc = $1_train_step(the_model, x, y, 2, 0.1f, &loss) || $1_infer(the_model, x, 2, out);
	if (rc || !isfinite(loss) || !isfinite(out[0]))
		fprintf(stderr, "%s: %s\n", "$1", $1_error(the_model));
	$1_close(the_model);
	return rc || !isfinite(loss);
}
C
}

for name in "${good[@]}"; do
	for target in c opencl; do
		dir="$tmp/$name-$target"
		mkdir -p "$dir"
		model "$name" >"$dir/model.brn"
		program "$name" >"$dir/main.c"
		"$build/brnc" "$dir/model.brn" --target "$target" --mode train -o "$dir/$name" 2>"$dir/err"
		check $? "model $name: brnc --target $target"
		[ -s "$dir/err" ] && head -n 5 "$dir/err" >&2
		for cc in "${compilers[@]}"; do
			# shellcheck disable=SC2086
			$cc -std=c11 -O0 -Wall -Wextra -Werror $san -Iruntime -I"$dir" "$dir/$name.c" "$dir/main.c" $libs \
				-o "$dir/prog-$cc" 2>"$dir/cc.err"
			check $? "model $name, --target $target: compiles and links with $cc -Wall -Wextra -Werror"
			[ -s "$dir/cc.err" ] && head -n 10 "$dir/cc.err" >&2
		done
		if [ "$target" = c ]; then
			BRN_THREADS=1 "$dir/prog-${compilers[0]}"
			check $? "model $name, --target c: opens, trains a step and infers"
		fi
	done
done

for name in "${bad[@]}"; do
	for target in c opencl; do
		dir="$tmp/bad-$name-$target"
		mkdir -p "$dir"
		model "$name" >"$dir/model.brn"
		"$build/brnc" "$dir/model.brn" --target "$target" --mode train -o "$dir/out" 2>"$dir/err"
		rc=$?
		first=$(head -n 1 "$dir/err")
		[ "$rc" = 1 ] && [ -z "$(ls "$dir" | grep '^out')" ] && [[ "$first" == *":1:7: error: model name '$name' "* ]]
		check $? "model $name, --target $target: refused at 1:7, nothing written"
		[ "$rc" = 1 ] || echo "#   exit $rc: $first" >&2
	done
done
