#!/bin/sh
# brnrun devices: one clear message and exit 1 when no OpenCL platform is
# installed (an ICD loader looking into an empty vendors directory), and a
# listing of the real devices otherwise.
B=${BRN_BUILD:-build}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/vendors"
export XDG_CACHE_HOME="$tmp/cache" # POCL keeps its kernel cache there
n=0
check() { # check COND DESCRIPTION
	n=$((n + 1))
	if eval "$1"; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi
}
echo 1..7

OCL_ICD_VENDORS=$tmp/vendors "$B/brnrun" devices >"$tmp/out" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 1 ]' "no platform: exit 1 (got $rc)"
want='brnrun: no OpenCL platform found; install an OpenCL driver (for a CPU: apt-get install pocl-opencl-icd)'
check '[ "$(cat "$tmp/err")" = "$want" ]' "no platform: the one-line message"
[ "$(cat "$tmp/err")" = "$want" ] || sed 's/^/#   got: /' "$tmp/err" >&2
check '[ ! -s "$tmp/out" ]' "no platform: nothing on stdout"

"$B/brnrun" devices >"$tmp/out" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "devices: exit 0 (got $rc)"
check 'grep -qiE "^0: .*(pthread|cpu)" "$tmp/out"' "devices: lists a cpu device"
[ $rc -eq 0 ] || sed 's/^/#   /' "$tmp/err" >&2
sed 's/^/# /' "$tmp/out" >&2

"$B/brnrun" --version >"$tmp/out" 2>&1
check 'grep -q "^brnrun [0-9]" "$tmp/out"' "--version"
"$B/brnrun" frob >"$tmp/out" 2>&1
rc=$?
check '[ $rc -eq 2 ] && grep -q "unknown command .frob." "$tmp/out"' "unknown command: exit 2"
exit ${fail:-0}
