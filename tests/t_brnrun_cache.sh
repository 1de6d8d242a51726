#!/bin/bash
# brnrun cache list|clear: the OpenCL program cache an OpenCL model fills,
# listed and emptied (only its entries: other files stay), and the cache's
# place in brnrun --help. TAP.
export LC_ALL=C
BUILD="$(realpath "${BRN_BUILD:-build}")"
BRNC="$BUILD/brnc"
BRNRUN="$BUILD/brnrun"
MODEL="$(realpath tests/models/tiny_fashion.brn)"
. tests/tap.sh
cd "$tmp" || exit 1
export XDG_CACHE_HOME="$tmp/xdg"
# an empty cache makes POCL compile; under ASan, POCL and its LLVM keep
# their compiler state at exit (see tests/t_rt_cl.c): not leaks of ours
printf 'leak:libpocl.so\nleak:libLLVM\nleak:libclang-cpp\nleak:libOpenCL.so\n' >"$tmp/lsan.supp"
export LSAN_OPTIONS="suppressions=$tmp/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
unset BRN_NO_CACHE
C="$XDG_CACHE_HOME/brnc"

"$BRNRUN" --help >out.txt 2>&1
grep -q "(here: $C); 'brnrun cache clear' empties it" out.txt && grep -q '^  cache list|clear$' out.txt
check $? "--help names the cache directory and how to clear it" "$(grep -A3 '^cache' out.txt)"
"$BRNRUN" cache list >out.txt 2>&1
check $([ "$(cat out.txt)" = "$C: 0 entries, 0 bytes (the directory does not exist yet)" ] && echo 0) \
	"list before any run: none yet" "$(cat out.txt)"

if ! "$BRNRUN" devices >/dev/null 2>&1; then
	echo "# no OpenCL device: the rest skipped"
	done_testing
fi
"$BRNC" "$MODEL" --target opencl --shared -o tfcl 2>err.txt &&
	"$BRNRUN" bench tfcl.so --iters 1 --warmup 0 >out.txt 2>>err.txt
check $? "an OpenCL model runs and fills the cache" "$(cat err.txt)"
entries=$(ls "$C" | grep -c '^[0-9a-f]\{16\}\.bin$')
echo keep >"$C/notes.txt"
: >"$C/0123456789abcdef.bin.tmp.999999999.0000abcd" # a killed writer's temporary
"$BRNRUN" cache list >out.txt 2>err.txt
rc=$?
bytes=$(cat "$C"/*.bin* | wc -c)
[ "$rc" = 0 ] && [ "$entries" -ge 1 ] && [ "$(grep -c '\.bin.* bytes, ' out.txt)" = $((entries + 1)) ] &&
	[ "$(tail -n 1 out.txt)" = "$C: $((entries + 1)) entries, $bytes bytes" ] && ! grep -q notes out.txt
check $? "list: each entry and the total ($entries programs and a temporary), not other files" "$(cat out.txt err.txt)"
"$BRNRUN" cache clear >out.txt 2>err.txt
rc=$?
[ "$rc" = 0 ] && [ "$(cat out.txt)" = "$C: removed $((entries + 1)) entries, $bytes bytes" ] &&
	[ "$(ls "$C")" = notes.txt ]
check $? "clear: removes the entries and the temporary, keeps other files" "$(cat out.txt err.txt) left: $(ls "$C")"
"$BRNRUN" bench tfcl.so --iters 1 --warmup 0 >out.txt 2>err.txt && ls "$C" | grep -q '^[0-9a-f]\{16\}\.bin$'
check $? "after clear, the model builds its program again and stores it" "$(cat err.txt)"
"$BRNRUN" cache frob >out.txt 2>err.txt
rc=$?
check $([ "$rc" = 2 ] && [ "$(sed -n 1p err.txt)" = "brnrun: cache: expected 'cache list' or 'cache clear'" ] && echo 0) \
	"cache frob: a usage error" "exit $rc: $(cat err.txt)"
BRN_NO_CACHE=1 "$BRNRUN" cache list >out.txt 2>&1
check $([ "$(cat out.txt)" = "no program cache: BRN_NO_CACHE is set" ] && echo 0) "BRN_NO_CACHE=1: no cache" "$(cat out.txt)"

done_testing
