#!/bin/bash
# t_mpi.sh: data-parallel training with brnrun-mpi under mpirun (Open MPI,
# --oversubscribe on loopback; docs/distributed.md), on libraries that
# `brnc --shared` builds here and a small random IDX set:
# - a model without norms: 2 ranks x batch 4 give the weights of 1 process x
#   batch 8 after 5 steps (every tensor within 1e-5 relative to its largest
#   magnitude), C and OpenCL (OpenCL against C: 2e-4 + 2e-3|x|, as t_opencl);
# - a batch_renorm model: rank 0 alone reports; checkpoints written at P = 2
#   resume at P = 1 and the other way;
# - a rank killed mid-run: a non-zero exit, Open MPI's message, and a last
#   checkpoint that loads.
# The threaded tests/t_dp.c checks the numbers against the interpreter.
# Skips when mpirun or brnrun-mpi is missing. TAP.
export LC_ALL=C
BUILD="$(realpath "${BRN_BUILD:-build}")"
BRNC="$BUILD/brnc"
BRNRUN="$BUILD/brnrun"
BRNRUN_MPI="$BUILD/brnrun-mpi"
MODEL="$(realpath tests/models/tiny_fashion.brn)"
PY=/usr/bin/python3
if ! command -v mpirun >/dev/null || [ ! -x "$BRNRUN_MPI" ]; then
	echo "1..0 # SKIP no MPI (mpirun or $BRNRUN_MPI missing; make mpi)"
	exit 0
fi
. tests/tap.sh # check, done_testing, $tmp
cd "$tmp" || exit 1
# root in CI; one thread per rank on a small machine
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 BRN_THREADS=1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_btl_tcp_if_include=lo
# Under make asan, no leak check here: Open MPI keeps allocations at exit in
# plugins it has unloaded by then (no module name to suppress). ASan's other
# checks stay on; tests/t_dp.c checks the same generated code for leaks.
[ -n "${BRN_SAN:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# mpi P ARGS...: brnrun-mpi train ARGS on P ranks; sets rc, out, err. The
# timeout only guards against a hung job.
mpi() {
	local p=$1
	shift
	timeout 300 mpirun --oversubscribe -np "$p" "$BRNRUN_MPI" train "$@" >out.txt 2>err.txt
	rc=$?
	out=$(cat out.txt)
	err=$(cat err.txt)
}

# same A B RTOL [ATOL]: the safetensors files hold the same tensors, each
# within ATOL + RTOL * (its largest magnitude) (ATOL 0), or ATOL + RTOL*|x|
# elementwise when ATOL is given; prints the worst ratio.
same() {
	"$PY" - "$@" <<'EOF'
import json, struct, sys
import numpy as np
def load(path):
    b = open(path, "rb").read()
    k = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + k])
    return {n: np.frombuffer(b[8 + k + t["data_offsets"][0]: 8 + k + t["data_offsets"][1]], np.float32)
            for n, t in h.items() if n != "__metadata__"}
a, b = load(sys.argv[1]), load(sys.argv[2])
rtol = float(sys.argv[3])
atol = float(sys.argv[4]) if len(sys.argv) > 4 else None
worst, where = 0.0, ""
for n in b:
    x, y = a[n].astype(np.float64), b[n].astype(np.float64)
    if atol is None:
        r = np.abs(x - y).max() / max(np.abs(y).max(), 1e-30) / rtol
    else:
        r = (np.abs(x - y) / (atol + rtol * np.abs(y))).max()
    if not np.isfinite(r) or r > worst:
        worst, where = r, n
print("%.3g %s" % (worst, where))
sys.exit(0 if set(a) == set(b) and worst <= 1 else 1)
EOF
}

# --- the libraries and the data ----------------------------------------------------
cat >nonorm.brn <<'EOF'
model nonorm;
batch 4;
input  x[1, 28, 28];
labels y[10];
p = avgpool(x, 4);
c = relu(conv(p, 4, kernel=3));
z = dense(flatten(c), 10);
loss softmax_cross_entropy(z, y);
output z;
EOF
ok_build=0
for lib in "tf:$MODEL:c:8" "tfcl:$MODEL:opencl:8" "nn4:nonorm.brn:c:4" "nn8:nonorm.brn:c:8" "nn4cl:nonorm.brn:opencl:4"; do
	IFS=: read -r base src target batch <<<"$lib"
	"$BRNC" "$src" --mode train --target "$target" --batch "$batch" --shared -o "$base" 2>brnc.txt || ok_build=1
done
check $ok_build "brnc --shared builds the C and OpenCL libraries" "$(cat brnc.txt)"
"$PY" - <<'EOF'
import gzip, os, random, struct
random.seed(7)
def idx(dir, split, n):
    os.makedirs(dir, exist_ok=True)
    labels = [random.randrange(10) for _ in range(n)]
    pix = bytes(min(255, random.randrange(64) + 19 * labels[i] * (p % 2))
                for i in range(n) for p in range(784))
    with gzip.open("%s/%s-images-idx3-ubyte.gz" % (dir, split), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + pix)
    with gzip.open("%s/%s-labels-idx1-ubyte.gz" % (dir, split), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(labels))
idx("data", "train", 320)
idx("data", "t10k", 50)
EOF
"$PY" -c 'import struct, random; random.seed(3); open("in.bin", "wb").write(struct.pack("<%df" % 7840, *[random.random() for _ in range(7840)]))'

# --- 2 ranks x batch 4 = 1 process x batch 8, without norms ---------------------------
mpi 2 nn4.so --data data --steps 5 --lr 0.05 --ckpt p2.st
rc2=$rc
"$BRNRUN" train nn8.so --data data --steps 5 --lr 0.05 --ckpt p1.st >out.txt 2>err.txt
worst=$(same p2.st p1.st 1e-5)
st=$?
[ "$rc2" = 0 ] && [ $st = 0 ]
check $? "no norms, C: 2 ranks x batch 4 = 1 x batch 8 after 5 steps within 1e-5 relative (worst $worst of it)" \
	"exit $rc2" "$err"
mpi 2 nn4cl.so --data data --steps 5 --lr 0.05 --ckpt p2cl.st
worst=$(same p2cl.st p2.st 2e-3 2e-4)
st=$?
[ "$rc" = 0 ] && [ $st = 0 ]
check $? "no norms, OpenCL: 2 ranks equal the C target within 2e-4 + 2e-3|x| (worst $worst of it)" \
	"exit $rc" "$err"
grep -q '^brnrun: 2 ranks of batch 4: global batch 8$' err.txt
check $? "a line names the ranks and the global batch" "$err"

# --- batch_renorm: rank 0 reports; checkpoints across P ---------------------------------
for t in tf tfcl; do
	mpi 2 $t.so --data data --steps 20 --lr 0.05 --ckpt $t-p2.st --ckpt-every 10
	[ "$rc" = 0 ] && [ "$(grep -c '^brnrun: training' err.txt)" = 1 ] &&
		echo "$out" | grep -qE '^tiny_fashion: step 20, loss [0-9.]+, test accuracy [01]\.[0-9]{4} \(50 examples\)$' &&
		[ "$(wc -l <out.txt)" = 1 ]
	check $? "$t: 2 ranks train; rank 0 alone prints the header and the result" "exit $rc: $out" "$err"
	"$BRNRUN" train $t.so --data data --weights $t-p2.st --steps 30 --lr 0.05 --ckpt $t-p1.st >out.txt 2>err.txt
	rc=$?
	[ "$rc" = 0 ] && grep -q 'steps 20..30$' err.txt && grep -q '^tiny_fashion: step 30, ' out.txt
	check $? "$t: a checkpoint written at P = 2 resumes at P = 1" "exit $rc: $(cat out.txt)" "$(cat err.txt)"
	mpi 2 $t.so --data data --weights $t-p1.st --steps 40 --lr 0.05
	[ "$rc" = 0 ] && grep -q 'steps 30..40$' err.txt && echo "$out" | grep -q '^tiny_fashion: step 40, '
	check $? "$t: and one written at P = 1 at P = 2" "exit $rc: $out" "$err"
done

# the ranks must start from the same step
"$BRNRUN" train tf.so --data data --steps 3 --ckpt s3.st >/dev/null 2>&1
cat >differ.sh <<'EOF'
#!/bin/bash
# rank 1 starts from another checkpoint than rank 0
w=tf-p2.st
[ "$OMPI_COMM_WORLD_RANK" = 1 ] && w=s3.st
exec "$@" --weights $w
EOF
chmod +x differ.sh
timeout 300 mpirun --oversubscribe -np 2 ./differ.sh "$BRNRUN_MPI" train tf.so --data data --steps 50 >out.txt 2>err.txt
rc=$?
[ "$rc" != 0 ] && grep -qF 'brnrun: the ranks start at different steps (3 .. 20); give them the same --weights' err.txt
check $? "ranks at different steps: an error" "exit $rc" "$(cat err.txt)"

# --- the Fashion-MNIST trainer built with -DBRN_MPI -----------------------------------
ex="$OLDPWD/examples/fashion_mnist"
mkdir -p fc
"$BRNC" "$ex/net.brn" --mode train -o fc/fashion_cnn 2>brnc.txt &&
	"$BRNC" "$ex/net.brn" --mode train --shared -o fcnet 2>>brnc.txt &&
	OMPI_CC="${BRN_CC:-cc}" mpicc ${BRN_SAN:-} -std=c11 -O2 -DBRN_MPI -D_POSIX_C_SOURCE=200809L -I"$OLDPWD/runtime" -I"$ex" -Ifc \
		"$ex/train.c" fc/fashion_cnn.c "$BUILD/libbrnrt_mpi.a" "$BUILD/libbrnex.a" "$BUILD/libbrnrt.a" \
		$(pkg-config --libs libcjson) -lOpenCL -lz -lm -lpthread -o fashion_train_mpi 2>>brnc.txt
check $? "train.c builds with -DBRN_MPI" "$(cat brnc.txt)"
timeout 300 mpirun --oversubscribe -np 2 ./fashion_train_mpi --data data --steps 12 --lr 0.05 --eval-every 6 \
	--ckpt ft.st >out.txt 2>err.txt
rc=$?
[ "$rc" = 0 ] && [ "$(grep -c '^test accuracy (c, trained): ' out.txt)" = 1 ] &&
	grep -q '^train: 2 ranks of batch 4: global batch 8$' err.txt
check $? "the trainer under mpirun -np 2: rank 0 alone prints the result" "exit $rc: $(cat out.txt)" "$(cat err.txt)"
mpi 2 fcnet.so --data data --steps 12 --lr 0.05 --ckpt fb.st --ckpt-every 6
worst=$(same ft.st fb.st 1e-5)
st=$?
[ "$rc" = 0 ] && [ $st = 0 ]
check $? "and trains as brnrun-mpi does (statistics averaged at step 6 and 12; worst $worst of 1e-5 relative)" \
	"exit $rc" "$err"
./fashion_train_mpi --data data --steps 15 --lr 0.05 --resume ft.st >out.txt 2>err.txt
rc=$?
[ "$rc" = 0 ] && grep -q 'steps 12..15$' err.txt
check $? "the trainer's P = 2 checkpoint resumes in one process" "exit $rc" "$(cat err.txt)"

# --- a rank killed mid-run -------------------------------------------------------------
cat >killer.sh <<'EOF'
#!/bin/bash
# rank 1 is killed (SIGKILL) once the first checkpoint exists
if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then
	"$@" & pid=$!
	for _ in $(seq 3000); do [ -f kill.st ] && break; sleep 0.1; done
	kill -9 $pid
	wait $pid
	exit $?
fi
exec "$@"
EOF
chmod +x killer.sh
timeout 300 mpirun --oversubscribe -np 2 ./killer.sh "$BRNRUN_MPI" train tf.so --data data --steps 100000000 \
	--lr 0.05 --ckpt kill.st --ckpt-every 20 >out.txt 2>err.txt
rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -q 'the job to be terminated' err.txt && grep -q 'Exit code: *137' err.txt
check $? "a rank killed: the job ends, non-zero, with Open MPI's message" "exit $rc" "$(grep -v ETA err.txt)"
"$BRNRUN" infer tf.so --weights kill.st --input in.bin >out.txt 2>err.txt
rc=$?
[ "$rc" = 0 ] && [ "$(wc -l <out.txt)" = 10 ]
check $? "the last checkpoint loads" "exit $rc" "$(cat err.txt)"

done_testing
