#!/usr/bin/env bash
# examples/fashion_mnist/reproduce, shortened: one non-iid setting (minibatch
# 4 of 2 labels x 2), Batch Norm and the three Batch Renorm schedules, two
# seeds, two epochs of 2000 examples. Checks the outcome (accuracy bar,
# the C trainer against gap.py's PyTorch network, the statistics gap, the
# report and plots), that a run killed after its first epoch resumes from
# its checkpoint to the same result, that a stopped reproduce continues, and
# the messages of bad arguments. The full experiment is `make reproduce`.
set -u
build=${BRN_BUILD:-build}
data=${BRN_DATA:-/usr/share/datasets/fashion-mnist}
if ! ls "$data"/train-images-idx3-ubyte* >/dev/null 2>&1; then
	echo "1..0 # SKIP no data set in $data"
	exit 0
fi
. tests/tap.sh # check, done_testing, $tmp
repro=examples/fashion_mnist/reproduce
# the trainers reproduce builds link the (maybe sanitized) runtime
export BRN_BUILD=$build CC="${BRN_CC:-cc} ${BRN_SAN:-}" BRN_DATA=$data

# a command's exit status and the first line it wrote on stderr
err() { "$@" >/dev/null 2>"$tmp/err"; echo "$? $(head -n 1 "$tmp/err")"; }
want="2 reproduce: '0' is not a positive integer"
got=$(err "$repro" --epochs 0)
[ "$got" = "$want" ]
check $? "--epochs 0: $got"
want="2 reproduce: unknown setting 'mb8-iid' (one of: mb32-iid mb4-iid mb2-iid mb32-2x16 mb32-4x8 mb4-2x2)"
got=$(err "$repro" --settings mb4-iid,mb8-iid)
[ "$got" = "$want" ]
check $? "--settings with an unknown one: $got"
got=$(err "$repro" --seeds)
[ "$got" = "2 reproduce: --seeds needs a value" ]
check $? "--seeds without a value: $got"
got=$(err "$repro" --bogus)
[ "$got" = "2 reproduce: unknown argument '--bogus'" ]
check $? "an unknown argument: $got"

# gap.py's own input errors
gap="/usr/bin/python3 examples/fashion_mnist/gap.py"
printf 'tiny' > "$tmp/tiny.safetensors"
got=$(err $gap "$tmp/tiny.safetensors")
[ "$got" = "1 gap.py: $tmp/tiny.safetensors: not a safetensors file" ]
check $? "gap.py on a 4-byte file: ${got#1 gap.py: $tmp/}"
got=$(err $gap "$tmp/tiny.safetensors" --batch 4 --sampler noniid --labels-per-batch 3)
[ "$got" = "1 gap.py: --labels-per-batch must be 1..10 and divide --batch" ]
check $? "gap.py, 3 labels in a minibatch of 4: $got"

out=$tmp/r
args=(--epochs 2 --subset 2000 --seeds 2 --settings mb4-2x2 --jobs 2 --out "$out")
"$repro" "${args[@]}" >"$tmp/run.out" 2>"$tmp/run.err"
rc=$?
[ $rc = 0 ] && [ "$(grep -c '^reproduce: \[[1-8]/8\] mb4-2x2 ' "$tmp/run.err")" = 8 ]
check $? "8 runs finish, one progress line each (exit $rc)"
[ $rc = 0 ] || sed 's/^/# /' "$tmp/run.err"

# results.tsv: setting norm seed acc acc_moving_torch acc_batch mean_gap sigma_gap batch_mean_gap batch_sigma_gap seconds
tsv=$out/results.tsv
[ -f "$tsv" ] && [ "$(tail -n +2 "$tsv" | wc -l)" = 8 ]
check $? "results.tsv has the 8 runs"
bar=0.6
awk -F'\t' -v bar=$bar 'NR > 1 { n++; if (!($4 >= bar && $6 >= bar)) bad++ } END { exit !(n == 8 && !bad) }' "$tsv"
check $? "every run's test accuracy clears $bar, with moving and with batch statistics ($(tail -n +2 "$tsv" | cut -f4 | tr '\n' ' '))"
awk -F'\t' 'NR > 1 { n++; d = $4 - $5; if (d > 0.002 || d < -0.002) bad++ } END { exit !(n == 8 && !bad) }' "$tsv"
check $? "the C trainer's accuracy equals gap.py's PyTorch network's to 0.002 on every run"
awk -F'\t' 'NR > 1 { n++; for (i = 7; i <= 10; i++) if (!($i > 0 && $i < 5)) bad++ } END { exit !(n == 8 && !bad) }' "$tsv"
check $? "the statistics gaps are positive and finite"
md=$out/results.md
rows=$(grep -c '^| minibatch 4, 2 labels x 2 | batch_' "$md" 2>/dev/null)
[ "$rows" = 7 ] && grep -q '^| minibatch 4, 2 labels x 2 | batch_renorm, fixed bounds | [+-]0\.[0-9]* | -\?[0-9.]* | [0-9.]* | [0-9.e-]* |$' "$md"
check $? "results.md: 4 rows of results and 3 Welch tests ($rows rows)"
png() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '211PNG' ]; }
png "$out/accuracy.png" && png "$out/gap.png"
check $? "accuracy.png and gap.png are PNG images"

# the same command again trains nothing
"$repro" "${args[@]}" >/dev/null 2>"$tmp/again.err"
grep -q '^reproduce: 8 runs .*, 8 done, 0 to run' "$tmp/again.err"
check $? "run again, every run is done: $(head -n 1 "$tmp/again.err")"

# another budget in the same directory would mix run lengths
got=$(err "$repro" --epochs 3 --subset 2000 --settings mb4-2x2 --out "$out")
[ "$got" = "2 reproduce: $(cd "$out" && pwd) holds runs of another experiment (epochs 2 subset 2000 lr 0.01 paper_steps 130000); use another --out or remove it" ]
check $? "another budget in the same --out is refused"

# a run killed after its first epoch: its checkpoint at step 500 and a log
# line written after it; reproduce resumes it to the uninterrupted result
run=$out/runs/mb4-2x2-brn-s1
cp "$run/result.tsv" "$run/log.csv" "$tmp/"
rm -r "$run" && mkdir "$run"
BRN_THREADS=1 "$out/build/brn-b4/train" --steps 500 --batch 4 --sampler noniid --labels-per-batch 2 \
	--seed 1 --lr 0.01 --subset 2000 --eval-every 500 --log "$run/log.csv" \
	--ckpt "$run/ckpt.safetensors" --quiet >/dev/null 2>&1
echo "1000,9.999999,0.1000" >> "$run/log.csv"
"$repro" "${args[@]}" >/dev/null 2>"$tmp/resume.err"
grep -q ', 7 done, 1 to run' "$tmp/resume.err" &&
	[ "$(cut -f4 "$run/result.tsv")" = "$(cut -f4 "$tmp/result.tsv")" ] && cmp -s "$run/log.csv" "$tmp/log.csv"
check $? "a run killed after epoch 1 resumes: same accuracy ($(cut -f4 "$run/result.tsv")), same log"

# reproduce stopped (TERM) in the middle of a run, then continued
run=$out/runs/mb4-2x2-bn-s2
cp "$run/result.tsv" "$tmp/bn.tsv"
rm -r "$run"
"$repro" "${args[@]}" >/dev/null 2>"$tmp/stop.err" &
pid=$!
for _ in $(seq 1 100); do [ -e "$run/train.out" ] && break; sleep 0.1; done
sleep 0.5
kill -TERM $pid
wait $pid
rc=$?
[ $rc = 130 ] && grep -q '^reproduce: stopped; the same command continues$' "$tmp/stop.err" && [ ! -e "$run/result.tsv" ]
check $? "TERM stops reproduce (exit $rc) before the run is done"
"$repro" "${args[@]}" >/dev/null 2>"$tmp/cont.err"
rc=$?
[ $rc = 0 ] && grep -q ', 7 done, 1 to run' "$tmp/cont.err" && [ "$(cut -f4 "$run/result.tsv")" = "$(cut -f4 "$tmp/bn.tsv")" ]
check $? "the same command continues it to the same accuracy ($(cut -f4 "$run/result.tsv" 2>/dev/null))"

done_testing
