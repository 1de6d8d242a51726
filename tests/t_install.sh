#!/usr/bin/env bash
# make install into a temporary prefix, then use the installed brnc and
# libbrnrt as a user would: compile a model, link it with pkg-config, run it.
set -u
build=${BRN_BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
check() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..6"
make -s install B="$build" SAN="${BRN_SAN:-}" PREFIX="$tmp/usr" >"$tmp/install.log" 2>&1
check $? "make install PREFIX=..."
[ -x "$tmp/usr/bin/brnc" ] && [ -f "$tmp/usr/lib/libbrnrt.so" ] && [ -f "$tmp/usr/include/brnrt/brnrt.h" ] &&
	[ -f "$tmp/usr/share/brnc/schedules/paper.lua" ] && [ -f "$tmp/usr/lib/pkgconfig/brnrt.pc" ]
check $? "binaries, libraries, headers, schedules and brnrt.pc are installed"
# the installed brnc finds its schedules without the source tree
(cd "$tmp" && "$tmp/usr/bin/brnc" "$OLDPWD/tests/models/small_renorm.brn" --mode train -o "$tmp/sr") 2>"$tmp/brnc.err"
check $? "the installed brnc compiles a model with the paper schedule"
cat >"$tmp/main.c" <<'C'
#include <stdio.h>
#include "sr.h"
int main(void)
{
	small_renorm *m;
	float x[SMALL_RENORM_BATCH * SMALL_RENORM_INPUT_SIZE] = {0}, out[SMALL_RENORM_BATCH * SMALL_RENORM_OUTPUT_SIZE], loss;
	int32_t y[SMALL_RENORM_BATCH] = {0};
	for (int i = 0; i < SMALL_RENORM_BATCH * SMALL_RENORM_INPUT_SIZE; i++)
		x[i] = (float)(i % 7) - 3;
	if (small_renorm_open(&m, NULL) || small_renorm_train_step(m, x, y, SMALL_RENORM_BATCH, 0.1f, &loss) ||
	    small_renorm_infer(m, x, 1, out)) {
		fprintf(stderr, "%s\n", small_renorm_error(m));
		return 1;
	}
	printf("loss %.4f step %lld\n", loss, (long long)small_renorm_step(m));
	small_renorm_close(m);
	return 0;
}
C
export PKG_CONFIG_PATH="$tmp/usr/lib/pkgconfig"
${BRN_CC:-cc} ${BRN_SAN:-} -std=c11 -O2 -Wall -Wextra -Werror $(pkg-config --cflags brnrt) -I"$tmp" "$tmp/main.c" "$tmp/sr.c" \
	$(pkg-config --libs --static brnrt) -Wl,-rpath,"$tmp/usr/lib" -o "$tmp/app" 2>"$tmp/cc.err"
check $? "a program links the generated code with pkg-config brnrt"
out=$("$tmp/app" 2>&1)
check $? "the program trains and infers ($out)"
case "$out" in "loss "*" step 1") r=0 ;; *) r=1 ;; esac
check $r "it reports one step taken"
