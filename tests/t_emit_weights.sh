#!/bin/bash
# brnc --emit weights: the tensors a weights file holds, their shapes and
# counts, and the total. The listing is checked exactly for a small model,
# and against brnc itself: a safetensors file written from the listing of
# tests/models/tiny_fashion.brn is one brnc --weights folds in. TAP.
export LC_ALL=C
BRNC="$(realpath "${BRN_BUILD:-build}/brnc")"
PY=${PYTHON:-/usr/bin/python3}
MODEL="$(realpath tests/models/tiny_fashion.brn)"
. tests/tap.sh
cd "$tmp" || exit 1

cat >m.brn <<'EOF2'
model m;
input x[3, 8, 8];
c = conv(x, 4, kernel=3, bias=false);
n = batch_norm(c);
d = dense(flatten(n), 10);
EOF2
cat >want.txt <<'EOF2'
# tensors of model m, as weights files name them: name, shape, values
c.weight [4, 3, 3, 3] 108
n.gamma [4] 4
n.beta [4] 4
n.mean [4] 4 statistic
n.sigma [4] 4 statistic
d.weight [10, 144] 1440
d.bias [10] 10
total 7 tensors, 1574 values (1566 trainable), 6296 bytes as float32
EOF2
"$BRNC" --emit weights m.brn >out.txt 2>err.txt
rc=$?
diff want.txt out.txt >diff.txt
check $? "--emit weights lists names, shapes, counts and the total" "exit $rc" "$(cat diff.txt err.txt)"
check $([ "$rc" = 0 ] && [ ! -e m.h ] && [ ! -e m.c ] && echo 0) "--emit weights writes no files"

# the listing of tiny_fashion, turned into a weights file, is one brnc takes
"$BRNC" --emit weights "$MODEL" >tf.txt 2>err.txt
cat >"$tmp/gen.py" <<'EOF2'
import json, struct, sys
h, data = {}, b""
for line in open(sys.argv[1]):
    if line.startswith("#") or line.startswith("total"):
        continue
    name, rest = line.split(" ", 1)
    shape = [int(v) for v in rest[rest.index("[") + 1:rest.index("]")].split(",")]
    count = int(rest[rest.index("]") + 1:].split()[0])
    n = 1
    for v in shape:
        n *= v
    assert n == count, line
    h[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
    data += struct.pack("<%df" % n, *([1.0] * n))
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(hb)) + hb + data)
EOF2
"$PY" - tf.txt tf.safetensors <"$tmp/gen.py"
"$BRNC" "$MODEL" --weights tf.safetensors -o tf >out.txt 2>err.txt
check $? "a weights file written from the listing folds in (names and shapes agree)" "$(cat err.txt)"
"$BRNC" --emit weights --mode train "$MODEL" >train.txt 2>err.txt
cmp -s tf.txt train.txt
check $? "--mode train lists the same tensors" "$(cat err.txt)"

# every difference between a weights file and the model at once, with a guess for a misspelt name
sed -e 's/^z\.bias /z.bais /' -e 's/^c\.weight \[4, 1, 3, 3\] 36/c.weight [4, 1, 5, 5] 100/' -e '/^a\.batch_renorm\.sigma /d' \
	tf.txt >bad.txt
"$PY" - bad.txt bad.safetensors <"$tmp/gen.py"
"$BRNC" "$MODEL" --weights bad.safetensors -o bad >out.txt 2>err.txt
rc=$?
want="brnc: error: bad.safetensors does not match the model in 4 ways: 'c.weight' is [4, 1, 5, 5] in the file, [4, 1, 3, 3] in the model; 'z.bais' is not in the model (did you mean 'z.bias'?); 'a.batch_renorm.sigma' [4] is missing; 'z.bias' [10] is missing"
[ "$rc" = 1 ] && [ "$(cat err.txt)" = "$want" ] && [ ! -e bad.c ]
check $? "--weights: a wrong shape, a misspelt and a missing tensor, reported together" "exit $rc" \
	"got:      $(cat err.txt)" "expected: $want"

done_testing
