#!/bin/sh
# U2: POCL drops its devices when it cannot create its kernel cache
# directory; brnrun then names that directory instead of saying "install an
# OpenCL driver". Skipped where POCL is not the platform.
B=${BRN_BUILD:-build}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
check() { # check COND DESCRIPTION
	n=$((n + 1))
	if eval "$1"; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}
XDG_CACHE_HOME="$tmp/cache" "$B/brnrun" devices >"$tmp/out" 2>&1
if ! grep -q 'Portable Computing Language' "$tmp/out"; then
	echo "1..0 # SKIP no POCL device here"
	exit 0
fi
echo 1..4
: >"$tmp/file" # a file where a directory should be: mkdir under it fails even for root
unset POCL_CACHE_DIR
want="brnrun: no OpenCL device found on 1 platform: POCL's kernel cache directory $tmp/file/pocl/kcache cannot be created or written (Not a directory), and POCL drops its devices without it; set POCL_CACHE_DIR or XDG_CACHE_HOME to a writable directory"
XDG_CACHE_HOME="$tmp/file" "$B/brnrun" devices >"$tmp/out" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 1 ]' "XDG_CACHE_HOME under a file: exit 1 (got $rc)"
check '[ "$(cat "$tmp/err")" = "$want" ]' "XDG_CACHE_HOME under a file: the message names POCL's cache directory"
[ "$(cat "$tmp/err")" = "$want" ] || sed 's/^/#   got: /' "$tmp/err" >&2
want="brnrun: no OpenCL device found on 1 platform: POCL's kernel cache directory $tmp/file/.cache/pocl/kcache cannot be created or written (Not a directory), and POCL drops its devices without it; set POCL_CACHE_DIR or XDG_CACHE_HOME to a writable directory"
env -u XDG_CACHE_HOME HOME="$tmp/file" "$B/brnrun" devices >"$tmp/out" 2>"$tmp/err"
check '[ "$(cat "$tmp/err")" = "$want" ]' "HOME a file: the message names ~/.cache/pocl/kcache"
[ "$(cat "$tmp/err")" = "$want" ] || sed 's/^/#   got: /' "$tmp/err" >&2
# the way out the message gives works
mkdir "$tmp/pocl"
POCL_CACHE_DIR="$tmp/pocl" XDG_CACHE_HOME="$tmp/file" "$B/brnrun" devices >"$tmp/out" 2>"$tmp/err"
check '[ $? -eq 0 ] && grep -q "^0: " "$tmp/out"' "POCL_CACHE_DIR set to a writable directory: the device is back"
exit ${fail:-0}
