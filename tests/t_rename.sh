#!/bin/bash
# brnc --name NAME: one model built twice under two names links into one
# program, and both run; bad names are usage errors with exact messages. TAP.
export LC_ALL=C
BRNC="$(realpath "${BRN_BUILD:-build}/brnc")"
BUILD="$(realpath "${BRN_BUILD:-build}")"
CC=${BRN_CC:-cc}
ROOT="$PWD"
MODEL="$(realpath tests/models/tiny_fashion.brn)"
. tests/tap.sh
cd "$tmp" || exit 1

"$BRNC" "$MODEL" --mode train --name first -o first 2>err.txt &&
	"$BRNC" "$MODEL" --mode infer --name second 2>>err.txt
check $? "two builds of tiny_fashion, named first and second" "$(cat err.txt)"
check $([ -e second.h ] && [ -e second.c ] && grep -q '^typedef struct second second;' second.h && echo 0) \
	"without -o, the files take the new name"
cat >two.c <<'EOF2'
#include <stdio.h>
#include <string.h>
#include "first.h"
#include "second.h"
/* The same model under two names, in one program: both open, a training
 * build and an inference build; with the same fresh weights (seed 1) they
 * agree on one batch. */
int main(void)
{
	first *a;
	second *b;
	static float x[8 * 784], ya[8 * 10], yb[8 * 10];
	for (int i = 0; i < 8 * 784; i++)
		x[i] = (float)((i * 37) % 101) / 101.0f;
	if (first_open(&a, NULL) || second_open(&b, NULL))
		return 1;
	if (first_infer(a, x, 8, ya) || second_infer(b, x, 8, yb))
		return 2;
	double worst = 0;
	for (int i = 0; i < 8 * 10; i++) {
		double d = ya[i] > yb[i] ? ya[i] - yb[i] : yb[i] - ya[i];
		worst = d > worst ? d : worst;
	}
	printf("%d %d %g\n", first_batch, second_batch, worst);
	first_close(a);
	second_close(b);
	return worst <= 1e-5 ? 0 : 3;
}
EOF2
$CC -std=c11 -O1 ${BRN_SAN:-} -I"$ROOT/runtime" two.c first.c second.c "$BUILD/libbrnrt.a" \
	$(pkg-config --libs libcjson) -lOpenCL -lm -lpthread -o two 2>err.txt
check $? "both link into one program" "$(head -5 err.txt)"
./two >out.txt 2>err.txt
rc=$?
check $rc "both run and agree within 1e-5 on one batch" "exit $rc: $(cat out.txt err.txt)"

# usage NAME 'message': --name NAME is refused (exit 2)
usage() {
	"$BRNC" "$MODEL" --name "$1" >out.txt 2>err.txt
	local rc=$? got
	got=$(sed -n 1p err.txt)
	check $([ "$rc" = 2 ] && [ "$got" = "$2" ] && [ ! -e "$1.h" ] && echo 0) "--name '$1' refused" \
		"exit $rc" "got:      $got" "expected: $2"
}
usage 'a-b' "brnc: --name 'a-b': expected a name of letters, digits and '_' that does not start with a digit (at most 128 characters)"
usage '9x' "brnc: --name '9x': expected a name of letters, digits and '_' that does not start with a digit (at most 128 characters)"
usage '' "brnc: --name '': expected a name of letters, digits and '_' that does not start with a digit (at most 128 characters)"
usage 'exp' "brnc: --name 'exp' is a name of the C library; expected a name free in C (the generated API takes it)"
usage 'brnx' "brnc: --name 'brnx' is reserved for brnc and libbrnrt (brn..., BRN...); expected a name free in C (the generated API takes it)"

done_testing
