#!/usr/bin/python3
"""report.py: the tables and plots of a `reproduce` results directory.

Reads every run under OUT/runs (result.tsv, gap.json, log.csv) and writes

  OUT/results.tsv   one row per run
  OUT/results.md    per setting and schedule, mean +- sample std over seeds:
                    test accuracy with moving statistics (the C model's),
                    with per-batch statistics of iid test batches, and the
                    distance of the moving statistics from the population
                    ones (gap.py); then Welch's t-test of every Batch Renorm
                    schedule against Batch Norm in the same setting
  OUT/accuracy.png  test accuracy against epoch, one panel per setting
  OUT/gap.png       the statistics gap per setting and schedule

gap.py's accuracy with moving statistics (PyTorch) must agree with the C
trainer's to 0.002 for every run; report.py fails when it does not.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

VARIANTS = ("bn", "brn", "brn-slow", "brn-fixed")
NAMES = {"bn": "batch_norm", "brn": "batch_renorm", "brn-slow": "batch_renorm, slow ramp",
         "brn-fixed": "batch_renorm, fixed bounds"}
SETTINGS = {
    "mb32-iid": "minibatch 32, iid", "mb4-iid": "minibatch 4, iid", "mb2-iid": "minibatch 2, iid",
    "mb32-2x16": "minibatch 32, 2 labels x 16", "mb32-4x8": "minibatch 32, 4 labels x 8",
    "mb4-2x2": "minibatch 4, 2 labels x 2",
}
CROSS_CHECK = 0.002


def fail(msg):
    sys.stderr.write("report.py: %s\n" % msg)
    sys.exit(1)


# --- statistics -----------------------------------------------------------------

def mean_std(xs):
    """Mean and sample standard deviation (n - 1); std 0 for one value."""
    n = len(xs)
    m = sum(xs) / n
    if n < 2:
        return m, 0.0
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1))


def betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """Regularized incomplete beta I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lnfront = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
               + a * math.log(x) + b * math.log1p(-x))
    # the continued fraction converges fast on this side of the mean
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lnfront) * betacf(a, b, x) / a
    return 1.0 - math.exp(lnfront) * betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t, df):
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def welch(xs, ys):
    """Welch's t-test of mean(xs) - mean(ys): (t, df, two-sided p), or None
    when both samples have no spread (the test is undefined)."""
    mx, sx = mean_std(xs)
    my, sy = mean_std(ys)
    vx, vy = sx * sx / len(xs), sy * sy / len(ys)
    if vx + vy == 0.0 or len(xs) < 2 or len(ys) < 2:
        return None
    t = (mx - my) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx * vx / (len(xs) - 1) + vy * vy / (len(ys) - 1))
    return t, df, t_two_sided_p(t, df)


# --- runs -------------------------------------------------------------------------

def read_run(d):
    with open(os.path.join(d, "result.tsv")) as f:
        s, v, seed, acc, secs = f.read().split()
    with open(os.path.join(d, "gap.json")) as f:
        gap = json.load(f)
    for k in ("acc_moving", "acc_batch", "mean_gap", "sigma_gap", "batch_mean_gap", "batch_sigma_gap"):
        if k not in gap:
            fail("%s/gap.json has no %s: written by an older gap.py; remove %s/result.tsv and "
                 "run reproduce again" % (d, k, d))
    curve = []
    with open(os.path.join(d, "log.csv")) as f:
        for line in f.read().split("\n")[1:]:
            if line:
                step, _, acc_e = line.split(",")
                curve.append((int(step), float(acc_e)))
    return {"setting": s, "variant": v, "seed": int(seed), "acc": float(acc), "seconds": int(secs),
            "acc_moving": gap["acc_moving"], "acc_batch": gap["acc_batch"],
            "mean_gap": gap["mean_gap"], "sigma_gap": gap["sigma_gap"],
            "batch_mean_gap": gap["batch_mean_gap"], "batch_sigma_gap": gap["batch_sigma_gap"],
            "curve": curve}


def variants_of(setting):
    return VARIANTS if "iid" not in setting else VARIANTS[:2]


def fmt(xs, digits=4):
    m, s = mean_std(xs)
    return "%.*f ± %.*f" % (digits, m, digits, s)


def write_md(path, runs, settings, args, wall):
    out = []
    w = out.append
    every = sum(runs.values(), [])
    w("# reproduce: Batch Norm vs Batch Renorm on Fashion-MNIST")
    w("")
    w("%d runs: %d epochs of %d examples, seeds 1..%d; %d s of training and measuring "
      "in all (%.1f min on %d jobs at a time)." % (len(every), args.epochs, args.subset, args.seeds,
                                                 sum(r["seconds"] for r in every),
                                                 wall / 60.0, args.jobs))
    w("")
    w("Mean ± sample std over seeds. acc: test accuracy with the moving statistics "
      "(C trainer). batch-stat acc: each norm uses the statistics of its own iid test "
      "minibatch of the training minibatch size. Statistics gaps (gap.py), against the "
      "population statistics of each norm's input (all 60000 training images): "
      "moving: mean over channels of |moving mean − population mean| / population sigma, "
      "and of |ln(moving sigma / population sigma)|; training batches: the same for the "
      "statistics of 500 training minibatches drawn as the run drew them.")
    w("")
    w("| setting | norm | acc | batch-stat acc | moving: mean gap | sigma gap "
      "| training batches: mean gap | sigma gap |")
    w("|---|---|---|---|---|---|---|---|")
    for s in settings:
        for v in variants_of(s):
            rs = runs[(s, v)]
            w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                SETTINGS[s], NAMES[v], fmt([r["acc"] for r in rs]),
                fmt([r["acc_batch"] for r in rs]),
                *(fmt([r[k] for r in rs], 3) for k in ("mean_gap", "sigma_gap",
                                                        "batch_mean_gap", "batch_sigma_gap"))))
    w("")
    w("Welch's t-test, test accuracy (moving statistics), each Batch Renorm schedule "
      "against Batch Norm in the same setting; two-sided p.")
    w("")
    w("| setting | schedule | Δ acc | t | df | p |")
    w("|---|---|---|---|---|---|")
    for s in settings:
        bn = [r["acc"] for r in runs[(s, "bn")]]
        for v in variants_of(s)[1:]:
            xs = [r["acc"] for r in runs[(s, v)]]
            d = mean_std(xs)[0] - mean_std(bn)[0]
            t = welch(xs, bn)
            if t is None:
                w("| %s | %s | %+.4f | – | – | – |" % (SETTINGS[s], NAMES[v], d))
            else:
                w("| %s | %s | %+.4f | %.2f | %.1f | %.3g |" % (SETTINGS[s], NAMES[v], d, *t))
    w("")
    with open(path, "w") as f:
        f.write("\n".join(out))


def plot(out, runs, settings, epochs, subset):
    """Writes the data files and gnuplot scripts; runs gnuplot when there."""
    pdir = os.path.join(out, "plot")
    os.makedirs(pdir, exist_ok=True)
    panels = []
    for s in settings:
        cols = []
        for v in variants_of(s):
            rs = runs[(s, v)]
            per_step = {}
            for r in rs:
                for step, acc in r["curve"]:
                    per_step.setdefault(step, []).append(acc)
            cols.append((v, per_step))
        path = os.path.join(pdir, "acc-%s.dat" % s)
        batch = int(s[2:].split("-")[0])
        with open(path, "w") as f:
            f.write("# epoch " + " ".join("%s_mean %s_std" % (v, v) for v, _ in cols) + "\n")
            for step in sorted(cols[0][1]):
                row = ["%.3f" % (step * batch / subset)]
                for _, per in cols:
                    m, sd = mean_std(per.get(step, [float("nan")]))
                    row.append("%.4f %.4f" % (m, sd))
                f.write(" ".join(row) + "\n")
        plots = ", ".join("'%s' using 1:%d:%d with yerrorlines title '%s'" %
                          (path, 2 + 2 * i, 3 + 2 * i, NAMES[v]) for i, (v, _) in enumerate(cols))
        panels.append("set title '%s'\nplot %s" % (SETTINGS[s], plots))
    rows = (len(settings) + 1) // 2
    gp = os.path.join(pdir, "accuracy.gp")
    with open(gp, "w") as f:
        f.write("set terminal png size 1100,%d noenhanced\n" % (340 * rows))
        f.write("set output '%s'\n" % os.path.join(out, "accuracy.png"))
        f.write("set multiplot layout %d,%d title 'test accuracy (moving statistics) "
                "against epoch, mean and std over seeds'\n" % (rows, 2 if len(settings) > 1 else 1))
        f.write("set xlabel 'epoch'\nset ylabel 'test accuracy'\nset key bottom right\n"
                "set grid\nset xrange [0.5:%g]\n" % (epochs + 0.5))
        f.write("\n".join(panels) + "\nunset multiplot\n")
    gap_dat = os.path.join(pdir, "gap.dat")
    with open(gap_dat, "w") as f:
        keys = ("mean_gap", "sigma_gap", "batch_mean_gap", "batch_sigma_gap")
        f.write("# label " + " ".join("%s std" % k for k in keys) + "\n")
        for s in settings:
            for v in variants_of(s):
                rs = runs[(s, v)]
                f.write('"%s %s" ' % (s, v) + " ".join(
                    "%.4f %.4f" % mean_std([r[k] for r in rs]) for k in keys) + "\n")
    gp2 = os.path.join(pdir, "gap.gp")
    with open(gp2, "w") as f:
        f.write("set terminal png size 1400,480 noenhanced\nset output '%s'\n" % os.path.join(out, "gap.png"))
        f.write("set title 'statistics of each norm against the population ones "
                "(mean and std over seeds)'\n"
                "set style data histograms\nset style histogram errorbars gap 1 lw 1\n"
                "set style fill solid 0.6 border -1\nset xtics rotate by -40 font ',8'\n"
                "set grid ytics\nset key top left\nset yrange [0:*]\n"
                "plot '%s' using 2:3:xtic(1) title 'moving: mean gap (|dmu| / sigma)', "
                "'' using 4:5 title 'moving: sigma gap (|ln ratio|)', "
                "'' using 6:7 title 'training batches: mean gap', "
                "'' using 8:9 title 'training batches: sigma gap'\n" % gap_dat)
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed: the plot scripts are in %s" % pdir
    for g in (gp, gp2):
        r = subprocess.run(["gnuplot", g], capture_output=True, text=True)
        if r.returncode:
            return "gnuplot %s failed: %s" % (g, r.stderr.strip())
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the results directory of reproduce (--out)")
    ap.add_argument("--settings", default=" ".join(SETTINGS), help="space-separated settings")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--subset", type=int, default=60000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--wall", type=int, default=0, help="wall seconds of the whole reproduce")
    args = ap.parse_args()
    settings = args.settings.split()
    for s in settings:
        if s not in SETTINGS:
            fail("unknown setting '%s'" % s)
    runs, missing, bad = {}, [], []
    for s in settings:
        for v in variants_of(s):
            runs[(s, v)] = []
            for seed in range(1, args.seeds + 1):
                d = os.path.join(args.out, "runs", "%s-%s-s%d" % (s, v, seed))
                if not os.path.exists(os.path.join(d, "result.tsv")):
                    missing.append(d)
                    continue
                r = read_run(d)
                if abs(r["acc"] - r["acc_moving"]) > CROSS_CHECK:
                    bad.append("%s: C %.4f, PyTorch %.4f" % (d, r["acc"], r["acc_moving"]))
                runs[(s, v)].append(r)
    if missing:
        fail("%d runs are not done, e.g. %s" % (len(missing), missing[0]))
    with open(os.path.join(args.out, "results.tsv"), "w") as f:
        f.write("setting\tnorm\tseed\tacc\tacc_moving_torch\tacc_batch\tmean_gap\tsigma_gap"
                "\tbatch_mean_gap\tbatch_sigma_gap\tseconds\n")
        for rs in runs.values():
            for r in rs:
                f.write("%s\t%s\t%d\t%.4f\t%.4f\t%.4f\t%.5f\t%.5f\t%.5f\t%.5f\t%d\n" % (
                    r["setting"], r["variant"], r["seed"], r["acc"], r["acc_moving"],
                    r["acc_batch"], r["mean_gap"], r["sigma_gap"], r["batch_mean_gap"],
                    r["batch_sigma_gap"], r["seconds"]))
    write_md(os.path.join(args.out, "results.md"), runs, settings, args, args.wall)
    note = plot(args.out, runs, settings, args.epochs, args.subset)
    if note:
        sys.stderr.write("report.py: %s\n" % note)
    print("report.py: wrote %s" % os.path.join(args.out, "results.md"))
    if bad:
        fail("the C and PyTorch accuracies differ by more than %g: %s" % (CROSS_CHECK, "; ".join(bad)))


if __name__ == "__main__":
    main()
