#!/usr/bin/env bash
# t_cxx.sh: the generated header and libbrnrt's headers from C++ (their
# extern "C" guards): a C++ program includes them all, calls a model's API,
# compiled as C, and libbrnrt, and links and runs. For both targets.
set -u
build=$(realpath "${BRN_BUILD:-build}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cxx=${BRN_CXX:-c++}
if ! command -v "$cxx" >/dev/null; then
	echo "1..0 # SKIP no C++ compiler ($cxx)"
	exit 0
fi
libs="$build/libbrnrt.a $(pkg-config --libs libcjson 2>/dev/null) -lOpenCL -lm -lpthread"
echo "1..4"
n=0
check() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
cat >"$tmp/main.cpp" <<'CPP'
#include <cstdio>
#include "brnrt.h"
#include "brnrt_cl.h"
#include "brnrt_init.h"
#include "brnrt_st.h"
#include "small_renorm.h"

int main()
{
	small_renorm *m = nullptr;
	float x[SMALL_RENORM_BATCH * SMALL_RENORM_INPUT_SIZE] = {0}, out[SMALL_RENORM_BATCH * SMALL_RENORM_OUTPUT_SIZE];
	if (small_renorm_open(&m, nullptr) || small_renorm_infer(m, x, SMALL_RENORM_BATCH, out)) {
		std::printf("%s\n", m ? small_renorm_error(m) : "open failed");
		return 1;
	}
	small_renorm_close(m);
	std::printf("%s\n", brnrt_strerror(BRN_EIO));
	return 0;
}
CPP
for target in c opencl; do
	"$build/brnc" tests/models/small_renorm.brn --target "$target" --mode train -o "$tmp/small_renorm" 2>"$tmp/err" &&
		${BRN_CC:-cc} ${BRN_SAN:-} -std=c11 -O1 -Wall -Wextra -Werror -Iruntime -c "$tmp/small_renorm.c" -o "$tmp/small_renorm.o" &&
		"$cxx" ${BRN_SAN:-} -std=c++11 -Wall -Wextra -Werror -Iruntime -I"$tmp" "$tmp/main.cpp" "$tmp/small_renorm.o" \
			$libs -o "$tmp/main" 2>>"$tmp/err"
	rc=$?
	[ $rc = 0 ] || sed 's/^/# /' "$tmp/err" >&2
	check $rc "$target: the generated header and libbrnrt's compile and link as C++"
	out=$("$tmp/main" 2>&1)
	rc=$?
	[ "$out" = BRN_EIO ] || rc=1
	check $rc "$target: the C++ program runs the model (got '$out')"
done
