#!/bin/bash
# t_brnrun.sh: brnrun on a library that `brnc --shared` built from
# tests/models/tiny_fashion.brn (named tf.so, so the model name comes from
# tf.h): infer on raw float32 and IDX files, train on a small random IDX set
# written here, checkpoints, bench, and the exact messages for bad input and
# usage (exit 1 input, 2 usage). TAP.
export LC_ALL=C
BUILD="$(realpath "${BRN_BUILD:-build}")"
BRNC="$BUILD/brnc"
BRNRUN="$BUILD/brnrun"
MODEL="$(realpath tests/models/tiny_fashion.brn)"
PY=/usr/bin/python3
. tests/tap.sh # check, done_testing, $tmp
cd "$tmp" || exit 1

# brnrun ARGS...: sets rc, out (stdout), err (stderr).
brnrun() {
	${TIMEOUT:-} "$BRNRUN" "$@" >out.txt 2>err.txt
	rc=$?
	out=$(cat out.txt)
	err=$(cat err.txt)
}

# fails STATUS 'message' ARGS...: brnrun exits STATUS with that first line on
# stderr, and every line there starts with "brnrun: ".
fails() {
	local want_rc=$1 want=$2
	shift 2
	brnrun "$@"
	local first
	first=$(sed -n 1p err.txt)
	# every line names the program (a hint line too)
	[ "$rc" = "$want_rc" ] && [ "$first" = "$want" ] && ! grep -qv '^brnrun: ' err.txt
	check $? "$*: $want" \
		"exit status $rc (expected $want_rc)" "got:      $first" "expected: $want" \
		"lines without 'brnrun: ': $(grep -v '^brnrun: ' err.txt | head -3)"
}

# --- the libraries and the data ----------------------------------------------------
"$BRNC" "$MODEL" --mode train --shared -o tf 2>brnc.txt
[ $? = 0 ] && [ -f tf.so ]
check $? "brnc --mode train --shared builds tf.so" "$(cat brnc.txt)"
"$BRNC" "$MODEL" --mode infer --shared -o tfi 2>brnc.txt
[ $? = 0 ] && [ -f tfi.so ]
check $? "brnc --mode infer --shared builds tfi.so" "$(cat brnc.txt)"

# 20 raw examples of 784 float32; a file of 10 bytes; IDX sets of random
# 28 x 28 images: data/ with train (320) and t10k (50), notest/ train only.
"$PY" - <<'EOF'
import gzip, os, random, struct
random.seed(7)
with open("in.bin", "wb") as f:
    f.write(struct.pack("<%df" % (20 * 784), *[random.random() for _ in range(20 * 784)]))
with open("bad.bin", "wb") as f:
    f.write(b"0123456789")
def idx(dir, split, n):
    os.makedirs(dir, exist_ok=True)
    labels = [random.randrange(10) for _ in range(n)]
    # the label shows in the image, so there is something to learn
    pix = bytes(min(255, random.randrange(64) + 19 * labels[i] * (p % 2))
                for i in range(n) for p in range(784))
    with gzip.open("%s/%s-images-idx3-ubyte.gz" % (dir, split), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + pix)
    with gzip.open("%s/%s-labels-idx1-ubyte.gz" % (dir, split), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
idx("data", "train", 320)
idx("data", "t10k", 50)
idx("notest", "train", 64)
EOF
[ $? = 0 ] && [ -f data/t10k-labels-idx1-ubyte.gz ]
check $? "test data written"

# --- infer ----------------------------------------------------------------------------
brnrun infer tf.so --input in.bin
first_out=$out
[ "$err" = "brnrun: note: no --weights; tiny_fashion runs with fresh random weights (seed 1)" ]
check $? "infer without --weights says the weights are random" "got: $err"
fields=$(awk '{print NF}' out.txt | sort -u)
[ "$rc" = 0 ] && [ "$(wc -l <out.txt)" = 20 ] && [ "$fields" = 10 ]
check $? \
	"infer (model name from tf.h): 20 lines of 10 outputs" "exit $rc, $(wc -l <out.txt) lines, fields '$fields'" "$err"
brnrun infer tf.so --input in.bin
[ "$rc" = 0 ] && [ "$out" = "$first_out" ]
check $? "infer: a second run prints the same outputs"
brnrun infer tf.so --model tiny_fashion --input in.bin --output out.bin
echo "$first_out" >text.txt
same=$("$PY" -c '
import struct
raw = open("out.bin", "rb").read()
v = struct.unpack("<%df" % (len(raw) // 4), raw)
f32 = lambda x: struct.unpack("<f", struct.pack("<f", float(x)))[0]
lines = [[f32(x) for x in l.split()] for l in open("text.txt")]
print(int(len(raw) == 20 * 10 * 4 and [list(v[i*10:i*10+10]) for i in range(20)] == lines))
' 2>&1)
[ "$rc" = 0 ] && [ -z "$out" ] && [ "$same" = 1 ]
check $? \
	"infer --output: 800 bytes of raw float32, the same values as the text" "exit $rc: $err" "$same"
brnrun infer tf.so --input in.bin --n 5
[ "$rc" = 0 ] && [ "$out" = "$(echo "$first_out" | head -n 5)" ]
check $? "infer --n 5: the first 5 lines"
brnrun infer tf.so --input data/t10k-images-idx3-ubyte.gz
[ "$rc" = 0 ] && [ "$(wc -l <out.txt)" = 50 ]
check $? "infer on gzipped IDX images: 50 lines" "exit $rc: $err"
gunzip -k data/t10k-images-idx3-ubyte.gz
brnrun infer tf.so --input data/t10k-images-idx3-ubyte
[ "$rc" = 0 ] && [ "$(wc -l <out.txt)" = 50 ]
check $? "infer on plain IDX images: 50 lines" "exit $rc: $err"
rm data/t10k-images-idx3-ubyte
brnrun infer tfi.so --input in.bin
[ "$rc" = 0 ] && [ "$(wc -l <out.txt)" = 20 ]
check $? "infer with an infer-mode library" "exit $rc: $err"

fails 1 "brnrun: bad.bin: 10 bytes is not a whole number of examples of 784 float32 (3136 bytes each)" \
	infer tf.so --input bad.bin
fails 1 "brnrun: cannot open nope.bin: No such file or directory" infer tf.so --input nope.bin
fails 1 "brnrun: data: is a directory" infer tf.so --input data
mkfifo fifo
TIMEOUT="timeout 60" fails 1 "brnrun: fifo: is not a regular file (a FIFO, socket or device)" infer tf.so --input fifo
TIMEOUT="timeout 60" fails 1 "brnrun: tiny_fashion: fifo: is not a regular file (a FIFO, socket or device)" \
	infer tf.so --weights fifo --input in.bin
: >empty.bin
fails 1 "brnrun: empty.bin: 0 bytes is not a whole number of examples of 784 float32 (3136 bytes each)" \
	infer tf.so --input empty.bin
fails 1 "brnrun: notest/train-labels-idx1-ubyte.gz: bad magic 0x00000801 (expected 0x00000803, an IDX image file)" \
	infer tf.so --input notest/train-labels-idx1-ubyte.gz
fails 1 "brnrun: tiny_fashion: nope.safetensors: cannot open: No such file or directory" \
	infer tf.so --weights nope.safetensors --input in.bin
fails 2 "brnrun: infer: which inputs? (--input FILE)" infer tf.so
fails 2 "brnrun: --n wants a positive integer, got '0'" infer tf.so --input in.bin --n 0
mkdir -p lone && cp tf.so lone/other.so
fails 1 "brnrun: lone/other.so has no model 'other' (no other_open) and no header lone/other.h names one; pass --model NAME" \
	infer lone/other.so --input in.bin

# --- train ------------------------------------------------------------------------------
brnrun train tf.so --data data --steps 50 --lr 0.05 --ckpt ck.safetensors --ckpt-every 20
final=$out
lines=$(grep -c '/50 \[.*\] loss [0-9.]* r_max [0-9.e+-]* d_max [0-9.e+-]* *[0-9]* ex/s ETA 0:00:00$' err.txt)
[ "$rc" = 0 ] && [ "$lines" -ge 10 ] && grep -q '^ *50/50 \[====================\]' err.txt
check $? \
	"train: a progress line per 5% on a pipe, ending at 50/50" "exit $rc, $lines progress lines" "$err"
grep -q '^brnrun: training tiny_fashion on data, .*320 examples, batch 8, lr 0.05, steps 0..50$' err.txt
check $? \
	"train: a first line naming model, data, device, batch" "$(sed -n 1p err.txt)"
echo "$out" | grep -qE '^tiny_fashion: step 50, loss [0-9]+\.[0-9]{4}, test accuracy [01]\.[0-9]{4} \(50 examples\)$'
check $? \
	"train: the final line with test accuracy" "got: $out"
[ -s ck.safetensors ]
check $? "train --ckpt writes the checkpoint"
brnrun train tf.so --data data --steps 50 --lr 0.05
[ "$rc" = 0 ] && [ "$out" = "$final" ]
check $? "train: the same seed gives the same run" "got:      $out" "expected: $final"
brnrun train tf.so --data data --steps 50 --lr 0.05 --seed 2
[ "$rc" = 0 ] && [ "$out" != "$final" ]
check $? "train --seed 2: another run" "got: $out"

brnrun infer tf.so --weights ck.safetensors --input in.bin
[ "$rc" = 0 ] && [ "$(wc -l <out.txt)" = 20 ] && [ "$out" != "$first_out" ]
check $? \
	"infer --weights loads the trained checkpoint" "exit $rc: $err"
# the checkpoint compiled in (brnc --weights): infer and bench run it as is
"$BRNC" "$MODEL" --mode infer --weights ck.safetensors --shared -o tff 2>brnc.txt
check $? "brnc --weights ck.safetensors --shared builds tff.so" "$(cat brnc.txt)"
ref=$("$BRNRUN" infer tf.so --weights ck.safetensors --input in.bin 2>/dev/null)
brnrun infer tff.so --input in.bin
same=$("$PY" -c '
import sys
a = [float(v) for l in open(sys.argv[1]) for v in l.split()]
b = [float(v) for v in sys.argv[2].split()]
print(int(len(a) == len(b) == 200 and max(abs(x - y) for x, y in zip(a, b)) < 1e-3))
' out.txt "$ref")
[ "$rc" = 0 ] && [ -z "$err" ] && [ "$same" = 1 ]
check $? "infer on a --weights build: no note, the checkpoint's outputs" "exit $rc: $err" "same: $same"
brnrun bench tff.so --iters 2
[ "$rc" = 0 ] && echo "$out" | grep -q '^tiny_fashion infer: batch 8, 2 runs, '
check $? "bench on a --weights build runs" "exit $rc: $out $err"
fails 2 "brnrun: bench: --batch 9 is larger than tiny_fashion's compiled batch 8" bench tf.so --batch 9 --iters 2

brnrun train tf.so --data data --weights ck.safetensors --steps 60 --lr 0.05
[ "$rc" = 0 ] && grep -q 'steps 50..60$' err.txt && echo "$out" | grep -q '^tiny_fashion: step 60, '
check $? \
	"train --weights resumes at the checkpoint's step" "exit $rc: $out" "$(sed -n 1p err.txt)"
brnrun train tf.so --data notest --steps 10
[ "$rc" = 0 ] && echo "$out" | grep -qE '^tiny_fashion: step 10, loss [0-9.]+, no test set in notest$'
check $? \
	"train without t10k files: no accuracy" "exit $rc: $out" "$err"
BRN_DATA=notest brnrun train tf.so --steps 2
[ "$rc" = 0 ] && grep -q ' on notest, ' err.txt
check $? "train: \$BRN_DATA is the default data" "exit $rc: $err"

fails 1 "brnrun: tfi.so was compiled with --mode infer; brnrun train needs --mode train" \
	train tfi.so --data data --steps 5
fails 1 "brnrun: cannot open nodata/train-images-idx3-ubyte.gz: No such file or directory" \
	train tf.so --data nodata --steps 5
fails 2 "brnrun: train: --ckpt-every needs --ckpt PATH" train tf.so --data data --ckpt-every 5

# outputs are checked before the run: writable, and none of the inputs
fails 1 "brnrun: --ckpt /nonexistent/dir/x: cannot write in /nonexistent/dir: No such file or directory" \
	train tf.so --data data --steps 50 --ckpt /nonexistent/dir/x
fails 1 "brnrun: --ckpt in.bin/x: in.bin is not a directory" train tf.so --data data --ckpt in.bin/x
fails 1 "brnrun: --ckpt data: is a directory" train tf.so --data data --ckpt data
sum_before=$(cksum <data/train-images-idx3-ubyte.gz)
fails 1 "brnrun: --ckpt data/train-images-idx3-ubyte.gz: is the input data/train-images-idx3-ubyte.gz; it would be replaced" \
	train tf.so --data data --steps 5 --ckpt data/train-images-idx3-ubyte.gz
[ "$(cksum <data/train-images-idx3-ubyte.gz)" = "$sum_before" ]
check $? "the training data is untouched"
ln data/t10k-labels-idx1-ubyte.gz labels-link.gz
fails 1 "brnrun: --ckpt labels-link.gz: is the input data/t10k-labels-idx1-ubyte.gz; it would be replaced" \
	train tf.so --data data --steps 5 --ckpt labels-link.gz
fails 1 "brnrun: --ckpt ./tf.so: is the input tf.so; it would be replaced" train tf.so --data data --ckpt ./tf.so
fails 1 "brnrun: --output in.bin: is the input in.bin; it would be replaced" infer tf.so --input in.bin --output in.bin
fails 1 "brnrun: --output nodir/out.bin: cannot write in nodir: No such file or directory" \
	infer tf.so --input in.bin --output nodir/out.bin
cp ck.safetensors resume.safetensors
brnrun train tf.so --data data --weights resume.safetensors --ckpt resume.safetensors --steps 55 --lr 0.05
[ "$rc" = 0 ] && echo "$out" | grep -q '^tiny_fashion: step 55, '
check $? "--weights and --ckpt may be one file: a run resumes and saves over it" "exit $rc: $err"
fails 2 "brnrun: --lr wants a positive number, got '-1'" train tf.so --lr -1
fails 2 "brnrun: train: unknown option '--frobnicate'" train tf.so --frobnicate 3

# --- train --log and plot -----------------------------------------------------------------
brnrun train tf.so --data data --steps 50 --lr 0.05 --log log.csv --log-every 10 --eval-every 20
steps=$(tail -n +2 log.csv | cut -d, -f1 | tr '\n' ' ')
evals=$(tail -n +2 log.csv | awk -F, '$7 != "" {print $1}' | tr '\n' ' ')
[ "$rc" = 0 ] && [ "$(head -n 1 log.csv)" = "step,loss,r_max,d_max,lr,examples_per_s,test_acc" ] &&
	[ "$steps" = "10 20 30 40 50 " ] && [ "$evals" = "20 40 50 " ] &&
	[ "$(tail -n +2 log.csv | awk -F, 'NF != 7 || $2 <= 0 || $3 != 1 || $4 != 0 || $5 != 0.05 || $6 <= 0' | wc -l)" = 0 ] &&
	[ "$(tail -n 1 log.csv | cut -d, -f7)" = "$(echo "$out" | sed -n 's/.*test accuracy \([0-9.]*\) .*/\1/p')" ]
check $? "train --log: a row every 10 steps, test accuracy at 20, 40 and the end" "exit $rc: $(cat log.csv) $err"
grep -q '^brnrun: step 20: test accuracy [0-9.]*$' err.txt
check $? "train --eval-every: the accuracy on stderr too" "$err"
brnrun train tf.so --data data --weights ck.safetensors --steps 60 --lr 0.05 --log log.csv --log-every 10
[ "$rc" = 0 ] && [ "$(tail -n +2 log.csv | cut -d, -f1 | tr '\n' ' ')" = "10 20 30 40 50 60 " ] &&
	[ "$(grep -c '^step,' log.csv)" = 1 ]
check $? "train --log resuming at step 50 appends to the log" "exit $rc: $(cat log.csv) $err"
brnrun plot log.csv -o curve.png
[ "$rc" = 0 ] && [ "$out" = "curve.png: 6 rows, 4 with test accuracy" ] && [ "$(head -c 4 curve.png | tail -c 3)" = PNG ]
check $? "plot draws the log into a PNG" "exit $rc: $out $err"
brnrun train tf.so --data data --weights ck.safetensors --steps 55 --lr 0.05 --log log.csv --log-every 10
[ "$rc" = 0 ] && [ "$(tail -n +2 log.csv | cut -d, -f1 | tr '\n' ' ')" = "10 20 30 40 50 55 " ]
check $? "train --log resuming at step 50 over a log that reached 60: the rows after 50 go" "exit $rc: $(cat log.csv) $err"
fails 1 "brnrun: --log data/train-images-idx3-ubyte.gz: is the input data/train-images-idx3-ubyte.gz; it would be replaced" \
	train tf.so --data data --steps 5 --log data/train-images-idx3-ubyte.gz
fails 2 "brnrun: --log-every wants an integer in 1..1000000000, got '0'" train tf.so --log-every 0
fails 1 "brnrun: plot: tf.so: not a brnrun train --log file (expected the header step,loss,r_max,d_max,lr,examples_per_s,test_acc)" \
	plot tf.so -o x.png
fails 1 "brnrun: plot: -o log.csv: is the input log.csv; it would be replaced" plot log.csv -o log.csv
fails 2 "brnrun: plot: expected LOG.csv -o CURVE.png" plot log.csv
mkdir -p nobin
PATH="$PWD/nobin" "$BRNRUN" plot log.csv -o c2.png >out.txt 2>err.txt
rc=$?
[ "$rc" = 1 ] && [ "$(cat err.txt)" = "brnrun: plot: gnuplot is not on PATH; install it (Debian: apt-get install gnuplot-nox)" ] &&
	[ ! -e c2.png ]
check $? "plot without gnuplot says how to install it" "exit $rc: $(cat err.txt)"

# --- bench, help, usage ------------------------------------------------------------------
brnrun bench tf.so --iters 3
[ "$rc" = 0 ] && echo "$out" | grep -q '^tiny_fashion infer: batch 8, 3 runs, '
check $? "bench runs" "exit $rc: $out $err"
BRN_THREADS=2 brnrun bench tf.so --iters 3 --train
[ "$rc" = 0 ] && echo "$out" | grep -q '^tiny_fashion train_step: batch 8, 3 runs, ' &&
	[ "$(echo "$out" | sed -n 1p)" = "tiny_fashion on cpu (C, 2 threads)" ]
check $? "bench --train runs, and says on what device and how many threads" "exit $rc: $out $err"
brnrun bench tf.so --iters 4 --warmup 0
[ "$rc" = 0 ] && echo "$out" | grep -qE '^tiny_fashion infer: batch 8, 4 runs, median [0-9.]+ ms, mean [0-9.]+ ms, min [0-9.]+ ms, [0-9.]+ examples/s$'
check $? "bench --warmup 0: the median, mean and min of 4 calls" "exit $rc: $out $err"
fails 2 "brnrun: --warmup wants an integer >= 0, got '-1'" bench tf.so --warmup -1
brnrun --help
cmds=$(grep -cE '^  (devices|bench|infer|train)( |$)' out.txt)
[ "$rc" = 0 ] && [ "$cmds" = 4 ]
check $? "--help lists devices, bench, infer and train" "$out"
fails 2 "brnrun: unknown command 'frobnicate'" frobnicate

# --- --device picks the OpenCL device of an OpenCL-target model -----------------------
"$BRNC" "$MODEL" --mode infer --target opencl --shared -o tfcl 2>brnc.txt
check $? "brnc --target opencl --shared builds tfcl.so" "$(cat brnc.txt)"
brnrun bench tfcl.so --iters 2 --device cpu
[ "$rc" = 0 ] && echo "$out" | grep -q '^tiny_fashion infer: batch 8, 2 runs, '
check $? "bench --device cpu runs on the CPU OpenCL device" "exit $rc: $out $err"
brnrun bench tfcl.so --iters 2 --device portable # docs/api.md's example for Debian's POCL
[ "$rc" = 0 ] && echo "$out" | grep -q '^tiny_fashion infer: batch 8, 2 runs, '
check $? "bench --device portable picks POCL by its platform name" "exit $rc: $out $err"
brnrun bench tfcl.so --iters 2 --device nosuch
case "$(sed -n 1p err.txt)" in
"brnrun: tiny_fashion: no OpenCL device matches BRN_DEVICE=\"nosuch\"; devices: 0: "*) r=$rc ;;
*) r=9 ;;
esac
[ "$r" = 1 ]
check $? "--device nosuch: exit 1, no fallback, the devices listed" "exit $rc: $err"

# An OpenCL build says nothing: POCL's compiler printed "N warnings
# generated." (its float16 builtins on CPUs without AVX-512) until brnc
# built with -w. A fresh POCL cache, so that POCL compiles.
"$BRNC" "$(dirname "$MODEL")/wide.brn" --mode train --target opencl --shared -o widecl 2>brnc.txt
check $? "brnc --target opencl --mode train --shared builds widecl.so" "$(cat brnc.txt)"
# (under ASan, POCL and its LLVM keep their compiler state at exit, see
# tests/t_rt_cl.c: not leaks of ours, suppressed for this one run)
printf 'leak:libpocl.so\nleak:libLLVM\nleak:libclang-cpp\nleak:libOpenCL.so\n' >"$tmp/lsan.supp"
POCL_CACHE_DIR="$tmp/pocl" BRN_NO_CACHE=1 LSAN_OPTIONS="suppressions=$tmp/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}" \
	brnrun bench widecl.so --train --iters 1
[ "$rc" = 0 ] && [ -z "$err" ]
check $? "a fresh OpenCL build prints nothing on stderr" "exit $rc: $err"

done_testing
