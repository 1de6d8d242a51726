#!/usr/bin/python3
"""make bench-kernels: brnc's conv and dense kernels one by one against
oneDNN's primitives, on the same machine, in the same run.

oneDNN's side is `bench --kernels` (bench/bench.c): per case, the median
time of its forward (training, no post-ops), backward-data and
backward-weights primitives, layouts of its choosing. Ours: each case as a
small .brn model (a cheap depthwise 1x1 conv or dense before the case's
layer, so that the layer's input needs dL/dx), built with `brnc --mode
train --shared`, its train step run by `brnrun bench` with BRN_PROFILE=1;
a pass's time is the sum of the mean times of that layer's kernels:
  forward          conv_pack + conv_fwd        (dense_fwd)
  backward-data    conv_pack_t + conv_bwd_data   (dense_bwd_data)
  backward-weights conv_dy16 + conv_bwd_weight, SGD step fused (dense_bwd_weight)
See bench/README.md.
"""
import argparse
import os
import re
import subprocess
import sys

PASSES = (("fwd", "forward", ("conv_pack", "conv_fwd", "dense_fwd")),
          ("bwd_data", "backward-data", ("conv_pack_t", "conv_bwd_data", "dense_bwd_data")),
          ("bwd_weights", "backward-weights", ("conv_dy16", "conv_bwd_weight", "dense_bwd_weight")))


def onednn_cases(bench, env):
    out = subprocess.run([bench, "--kernels"], env=env, check=True, capture_output=True, text=True).stdout
    cases = []
    for line in out.splitlines():
        if line.startswith("case "):
            f = dict(kv.split("=", 1) for kv in line.split()[2:])
            f["name"] = line.split()[1]
            cases.append(f)
    if not cases:
        sys.exit("kernels.py: bench --kernels printed no case")
    return cases


def model_text(c):
    n, ch, k = int(c["n"]), int(c["c"]), int(c["k"])
    if int(c["kernel"]) == 0:
        return (f"model kb_{c['name']};\nbatch {n};\ninput x[64];\nlabels y[10];\n"
                f"pre = dense(x, {ch});\nk = dense(pre, {k});\nlogits = dense(k, 10);\n"
                "loss softmax_cross_entropy(logits, y);\noutput logits;\n")
    hw = int(c["hw"])
    return (f"model kb_{c['name']};\nbatch {n};\ninput x[{ch}, {hw}, {hw}];\nlabels y[10];\n"
            f"pre = conv(x, {ch}, kernel=1, groups={ch});\n"
            f"k = conv(pre, {k}, kernel={c['kernel']}, stride={c['stride']}, pad={c['pad']}, groups={c['groups']});\n"
            "g = global_avgpool(k);\nlogits = dense(flatten(g), 10);\n"
            "loss softmax_cross_entropy(logits, y);\noutput logits;\n")


def ours(c, args, env):
    base = os.path.join(args.dir, "kb_" + c["name"])
    with open(base + ".brn", "w") as f:
        f.write(model_text(c))
    subprocess.run([args.brnc, base + ".brn", "--target", "c", "--mode", "train", "--shared", "-o", base],
                   check=True)
    env = dict(env, BRN_PROFILE="1")
    r = subprocess.run([args.brnrun, "bench", base + ".so", "--train", "--iters", str(args.iters),
                        "--warmup", "2"], env=env, check=True, capture_output=True, text=True)
    mean = {}  # kernel kind -> mean us per launch, the case layer's kernels only
    for line in r.stderr.splitlines():
        m = re.match(r"brn_t\d+_k_(\w+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", line.strip())
        if m:
            mean[m.group(1)] = float(m.group(4))
    if not mean:
        sys.exit("kernels.py: no profile table from brnrun bench:\n" + r.stderr)
    return {key: sum(mean.get(k, 0.0) for k in kinds) / 1e3 for key, _, kinds in PASSES}


def gflop(c):
    n, ch, k = int(c["n"]), int(c["c"]), int(c["k"])
    kern = int(c["kernel"])
    if kern == 0:
        return 2.0 * n * ch * k * 1e-9
    o = (int(c["hw"]) + 2 * int(c["pad"]) - kern) // int(c["stride"]) + 1
    return 2.0 * n * k * (ch // int(c["groups"])) * kern * kern * o * o * 1e-9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, help="the bench program (bench/bench.c)")
    ap.add_argument("--brnc", required=True)
    ap.add_argument("--brnrun", required=True)
    ap.add_argument("--dir", required=True, help="where the case models are built")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    env = dict(os.environ, BRN_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    cases = onednn_cases(args.bench, env)
    print(f"per-kernel cases, {args.threads} threads: ours (mean per launch, BRN_PROFILE) "
          "against oneDNN (median), ms")
    print(f"{'case':<46} {'pass':<17} {'ours ms':>9} {'oneDNN ms':>9} {'ours GF/s':>9} "
          f"{'oDNN GF/s':>9} {'fraction':>8}")
    for c in cases:
        t = ours(c, args, env)
        desc = (f"{c['name']} N={c['n']} {c['c']}->{c['k']}" +
                (f" {c['hw']}x{c['hw']} k{c['kernel']} s{c['stride']} g{c['groups']}"
                 if int(c["kernel"]) else ""))
        g = gflop(c)
        for key, label, _ in PASSES:
            mine, theirs = t[key], float(c[key])
            print(f"{desc:<46} {label:<17} {mine:9.3f} {theirs:9.3f} {g / mine * 1e3:9.1f} "
                  f"{g / theirs * 1e3:9.1f} {theirs / mine:8.2f}")
    print("fraction = oneDNN time / ours = our GF/s as a fraction of oneDNN's (1: as fast).\n"
          "oneDNN: implementation " + ", ".join(sorted({c['impl'] for c in cases})) + ".")


if __name__ == "__main__":
    main()
