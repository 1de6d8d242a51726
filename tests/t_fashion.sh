#!/usr/bin/env bash
# The Fashion-MNIST example end to end on real data (Debian's
# dataset-fashion-mnist): a short training run clears an accuracy bar, a
# resumed run equals an uninterrupted one bit for bit (C target, one
# thread) and keeps its CSV log free of repeated steps, and the trained weights folded into OpenCL inference code give
# the same accuracy as the C model.
set -u
build=${BRN_BUILD:-build}
cc=${BRN_CC:-cc}
san=${BRN_SAN:-}
data=${BRN_DATA:-/usr/share/datasets/fashion-mnist}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
check() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
echo "1..9"
if ! ls "$data"/train-images-idx3-ubyte* >/dev/null 2>&1; then
	for i in 1 2 3 4 5 6 7 8 9; do echo "ok $i # SKIP no data set in $data"; done
	exit 0
fi
ex=examples/fashion_mnist
link="$build/libbrnex.a $build/libbrnrt.a $(pkg-config --libs libcjson) -lOpenCL -lz -lm -lpthread"
mkdir -p "$tmp/train"
"$build/brnc" $ex/net.brn --mode train -o "$tmp/train/fashion_cnn"
$cc $san -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Iruntime -I$ex -I"$tmp/train" $ex/train.c "$tmp/train/fashion_cnn.c" $link -o "$tmp/fashion_train"
check $? "train.c links with the generated training code"

# a checkpoint that cannot be written is refused before the run, not after
"$tmp/fashion_train" --steps 5 --quiet --ckpt /nonexistent/dir/x >/dev/null 2>"$tmp/ckpt.err"
rc=$?
[ $rc = 1 ] && [ "$(cat "$tmp/ckpt.err")" = "train: --ckpt /nonexistent/dir/x: cannot write in /nonexistent/dir: No such file or directory" ]
check $? "--ckpt in a missing directory: refused before training ($(cat "$tmp/ckpt.err"))"

export BRN_THREADS=1
# under the sanitizers (make asan) a shorter run, with a lower bar
steps=1500 half=700 bar=0.75
[ -n "$san" ] && steps=200 half=100 bar=0.4
"$tmp/fashion_train" --steps $steps --eval-every 0 --quiet --ckpt "$tmp/full.safetensors" >"$tmp/full.out" 2>"$tmp/full.err"
rc=$?
acc=$(sed -n 's/^test accuracy (c, trained): //p' "$tmp/full.out")
[ $rc = 0 ] && [ -n "$acc" ]
check $? "$steps steps at minibatch 4 train and report test accuracy ($acc)"
awk -v a="${acc:-0}" -v bar=$bar 'BEGIN { exit !(a >= bar) }'
check $? "test accuracy $acc clears $bar after $steps steps ($((steps * 4)) examples)"

"$tmp/fashion_train" --steps $half --eval-every 0 --quiet --ckpt "$tmp/half.safetensors" >/dev/null 2>&1 &&
	"$tmp/fashion_train" --steps $steps --eval-every 0 --quiet --resume "$tmp/half.safetensors" \
		--ckpt "$tmp/resumed.safetensors" >"$tmp/resumed.out" 2>&1
check $? "a run stopped at step $half resumes to $steps"
cmp -s "$tmp/full.safetensors" "$tmp/resumed.safetensors"
check $? "the resumed checkpoint equals the uninterrupted one, bit for bit"

# resuming from a checkpoint older than the log's last row: the rows after
# the checkpoint's step go, the run logs them again once
"$tmp/fashion_train" --steps $((half + 300)) --eval-every 100 --quiet --resume "$tmp/half.safetensors" \
	--log "$tmp/log.csv" >/dev/null 2>&1 &&
	"$tmp/fashion_train" --steps $((half + 200)) --eval-every 100 --quiet --resume "$tmp/half.safetensors" \
		--log "$tmp/log.csv" >/dev/null 2>&1
steps_logged=$(cut -d, -f1 "$tmp/log.csv" | tr '\n' ' ')
[ "$steps_logged" = "step $((half + 100)) $((half + 200)) " ]
check $? "a run resumed at step $half over a log that reached step $((half + 300)) logs each step once ($steps_logged)"

# the trained weights folded into OpenCL inference code
mkdir -p "$tmp/infer"
"$build/brnc" $ex/net.brn --mode infer --target opencl --weights "$tmp/full.safetensors" -o "$tmp/infer/fashion_cnn" &&
	$cc $san -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -Iruntime -I$ex -I"$tmp/infer" $ex/eval.c "$tmp/infer/fashion_cnn.c" $link -o "$tmp/fashion_eval"
check $? "eval.c links with OpenCL inference code, norms folded into the convs"
line=$("$tmp/fashion_eval" 2>"$tmp/eval.err")
acc2=$(printf '%s\n' "$line" | sed -n 's/^test accuracy (opencl, .*): //p')
awk -v a="${acc:-0}" -v b="${acc2:-1}" 'BEGIN { d = a - b; exit !(d < 0.002 && d > -0.002) }'
check $? "OpenCL accuracy equals the C model's within 0.002 ($line)"
