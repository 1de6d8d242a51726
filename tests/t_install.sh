#!/usr/bin/env bash
# make install into a temporary prefix, then use the installed brnc and
# libbrnrt as a user would: compile a model, link it with pkg-config against
# the static library (--static) and, for an OpenCL model, the shared one;
# run both; the man pages; make uninstall leaves nothing behind.
set -u
build=${BRN_BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
check() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..13"
make -s install B="$build" SAN="${BRN_SAN:-}" PREFIX="$tmp/usr" >"$tmp/install.log" 2>&1
check $? "make install PREFIX=..."
[ -x "$tmp/usr/bin/brnc" ] && [ -f "$tmp/usr/lib/libbrnrt.so" ] && [ -f "$tmp/usr/include/brnrt/brnrt.h" ] &&
	[ -f "$tmp/usr/share/brnc/schedules/paper.lua" ] && [ -f "$tmp/usr/lib/pkgconfig/brnrt.pc" ]
check $? "binaries, libraries, headers, schedules and brnrt.pc are installed"
readelf -d "$tmp/usr/lib/libbrnrt.so.1.0.0" 2>/dev/null | grep -q 'SONAME.*\[libbrnrt\.so\.1\]' &&
	[ "$(readlink "$tmp/usr/lib/libbrnrt.so.1")" = libbrnrt.so.1.0.0 ] && [ "$(readlink "$tmp/usr/lib/libbrnrt.so")" = libbrnrt.so.1 ]
check $? "libbrnrt.so.1.0.0 has the SONAME libbrnrt.so.1; .so -> .so.1 -> .so.1.0.0"
headers=$(cd "$tmp/usr/include/brnrt" && echo *)
public="brnrt.h brnrt_cl.h brnrt_init.h brnrt_st.h"
[ -f "$build/libbrnrt_mpi.a" ] && public="brnrt.h brnrt_cl.h brnrt_init.h brnrt_mpi.h brnrt_st.h" # make mpi
[ "$headers" = "$public" ]
check $? "only the public headers are installed ($headers)"
MANWIDTH=100 man -l "$tmp/usr/share/man/man1/brnc.1" 2>/dev/null | grep -q -- '--emit weights' &&
	MANWIDTH=100 man -l "$tmp/usr/share/man/man1/brnrun.1" 2>/dev/null | grep -q 'cache list|clear'
check $? "man pages brnc(1) and brnrun(1) render with the options"
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
	$(pkg-config --libs --static brnrt | sed 's/-lbrnrt /-l:libbrnrt.a /') -o "$tmp/app" 2>"$tmp/cc.err"
check $? "a program links the generated code with pkg-config --static brnrt and libbrnrt.a"
out=$("$tmp/app" 2>&1)
check $? "the program trains and infers ($out)"
case "$out" in "loss "*" step 1") r=0 ;; *) r=1 ;; esac
check $r "it reports one step taken"
# an OpenCL model against the shared library: plain `pkg-config --libs`
(cd "$tmp" && "$tmp/usr/bin/brnc" "$OLDPWD/tests/models/small_renorm.brn" --mode train --target opencl -o "$tmp/cl") 2>"$tmp/brnc.err"
sed -e 's/"sr.h"/"cl.h"/' "$tmp/main.c" >"$tmp/main_cl.c"
${BRN_CC:-cc} ${BRN_SAN:-} -std=c11 -O2 -Wall -Wextra -Werror $(pkg-config --cflags brnrt) -I"$tmp" "$tmp/main_cl.c" "$tmp/cl.c" \
	$(pkg-config --libs brnrt) -Wl,-rpath,"$tmp/usr/lib" -o "$tmp/app_cl" 2>"$tmp/cc.err"
r=$?
readelf -d "$tmp/app_cl" 2>/dev/null | grep -q 'NEEDED.*\[libbrnrt\.so\.1\]' || r=1
check $r "an OpenCL model links against libbrnrt.so.1 with pkg-config --libs brnrt"
if "$tmp/usr/bin/brnrun" devices >/dev/null 2>&1; then
	out=$("$tmp/app_cl" 2>&1)
	case "$out" in "loss "*" step 1") r=0 ;; *) r=1 ;; esac
	check $r "it trains and infers on the OpenCL device ($out)"
else
	echo "ok $((n += 1)) # SKIP no OpenCL device"
fi
make -s uninstall B="$build" PREFIX="$tmp/usr" >"$tmp/uninstall.log" 2>&1
check $? "make uninstall"
left=$(find "$tmp/usr" -mindepth 1 ! -type d -o -path '*/brnrt' -o -path '*/share/brnc' | head -5)
check $([ -z "$left" ] && echo 0) "no file installed is left, nor brnc's own directories (${left:-none})"
