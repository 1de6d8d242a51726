#!/usr/bin/python3
"""Whole networks against PyTorch (make bench-nets; bench/README.md).

The networks of examples/fashion_mnist/net.brn and bench/resnet18.brn,
written again in PyTorch, timed in examples/s at the same batch sizes and
thread count as our libraries:

  train (BN)   a training step with nn.BatchNorm2d: zero_grad, forward,
               cross-entropy, backward, SGD (momentum 0.9)
  train (BRN)  the same step with BatchRenorm2d below (Ioffe 2017)
  infer        a frozen TorchScript model,
               torch.jit.freeze(torch.jit.script(model.eval())), under
               torch.inference_mode() (freeze folds each norm into its conv)

Every figure is the median of --runs calls after --warmup calls.

With --brnrun PATH --libs DIR the same run also times our side, one case
right after the other, with BRN_THREADS set to --threads:
`brnrun bench DIR/<net>_<t|i><batch>.so` (--mode train for both train rows,
--mode infer for infer), and prints one table with the ratio ours / PyTorch
(> 1: we are faster). Without them it prints PyTorch's figures only.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# brnc's defaults: eps=1e-3, alpha (the rate of the new value) = 0.01.
EPS, ALPHA = 1e-3, 0.01


class BatchRenorm2d(nn.Module):
    """Batch Renormalization (Ioffe 2017, Algorithm 1), as brnc defines it
    (docs/norms.md): biased batch variance, eps inside the root, moving
    mean and moving sigma (not variance), r and d without gradient."""

    def __init__(self, c, eps=EPS, alpha=ALPHA, r_max=3.0, d_max=5.0):
        super().__init__()
        self.eps, self.alpha, self.r_max, self.d_max = eps, alpha, r_max, d_max
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_sigma", torch.ones(c))

    def forward(self, x):
        shape = (1, -1, 1, 1)
        if not self.training:
            xhat = (x - self.running_mean.view(shape)) / self.running_sigma.view(shape)
            return xhat * self.weight.view(shape) + self.bias.view(shape)
        mu = x.mean(dim=(0, 2, 3))
        sigma_b = torch.sqrt(x.var(dim=(0, 2, 3), unbiased=False) + self.eps)
        with torch.no_grad():
            r = torch.clamp(sigma_b / self.running_sigma, 1.0 / self.r_max, self.r_max)
            d = torch.clamp((mu - self.running_mean) / self.running_sigma,
                            -self.d_max, self.d_max)
            self.running_mean += self.alpha * (mu - self.running_mean)
            self.running_sigma += self.alpha * (sigma_b - self.running_sigma)
        xhat = (x - mu.view(shape)) / sigma_b.view(shape) * r.view(shape) + d.view(shape)
        return xhat * self.weight.view(shape) + self.bias.view(shape)


def bn(c, renorm):
    # PyTorch's momentum is brnc's alpha (docs/norms.md, convention 4)
    return BatchRenorm2d(c) if renorm else nn.BatchNorm2d(c, eps=EPS, momentum=ALPHA)


class Fashion(nn.Module):
    """examples/fashion_mnist/net.brn: [1, 28, 28] -> 10."""

    def __init__(self, renorm):
        super().__init__()
        self.c1, self.n1 = nn.Conv2d(1, 16, 3, padding=1), bn(16, renorm)
        self.c2, self.n2 = nn.Conv2d(16, 32, 3, padding=1), bn(32, renorm)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.n1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.n2(self.c2(x))), 2)
        return self.fc(torch.flatten(x, 1))


class Block(nn.Module):
    def __init__(self, cin, c, stride, renorm):
        super().__init__()
        self.ca, self.na = nn.Conv2d(cin, c, 3, stride, 1, bias=False), bn(c, renorm)
        self.cb, self.nb = nn.Conv2d(c, c, 3, 1, 1, bias=False), bn(c, renorm)
        # the 1x1 projection where the shape changes (TorchScript wants a
        # module in both cases)
        self.short = (nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), bn(c, renorm))
                      if stride != 1 or cin != c else nn.Identity())

    def forward(self, x):
        y = self.nb(self.cb(F.relu(self.na(self.ca(x)))))
        return F.relu(y + self.short(x))


class ResNet18(nn.Module):
    """bench/resnet18.brn: [3, 32, 32] -> 10."""

    def __init__(self, renorm):
        super().__init__()
        self.c0, self.n0 = nn.Conv2d(3, 64, 3, 1, 1, bias=False), bn(64, renorm)
        blocks, cin = [], 64
        for i, c in enumerate((64, 128, 256, 512)):
            for b in range(2):
                blocks.append(Block(cin, c, 2 if (b == 0 and i > 0) else 1, renorm))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        x = self.blocks(F.relu(self.n0(self.c0(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


NETS = {  # name: (model class, input shape, model name in the .brn)
    "fashion": (Fashion, (1, 28, 28), "fashion_cnn"),
    "resnet18": (ResNet18, (3, 32, 32), "resnet18"),
}


def timed(fn, warmup, runs):
    """Median seconds of one call over runs calls, after warmup calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def torch_train(net, batch, renorm, warmup, runs):
    cls, shape, _ = NETS[net]
    torch.manual_seed(1)
    model = cls(renorm).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    y = torch.arange(batch) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return batch / timed(step, warmup, runs)


def torch_infer(net, batch, warmup, runs):
    cls, shape, _ = NETS[net]
    torch.manual_seed(1)
    model = cls(False)
    # one training step's worth of statistics is not needed: freeze folds
    # whatever the norms hold; randomize them so nothing is an identity
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    frozen = torch.jit.freeze(torch.jit.script(model.eval()))
    x = torch.randn(batch, *shape)
    with torch.inference_mode():
        return batch / timed(lambda: frozen(x), warmup, runs)


def ours(brnrun, libs, threads, net, batch, train, warmup, runs):
    """examples/s of our library from `brnrun bench` (the median call)."""
    lib = os.path.join(libs, f"{NETS[net][2]}_{'t' if train else 'i'}{batch}.so")
    cmd = [brnrun, "bench", lib, "--iters", str(runs), "--warmup", str(warmup)]
    if train:
        cmd.append("--train")
    env = dict(os.environ, BRN_THREADS=str(threads))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    m = re.search(r"([0-9.]+) examples/s$", p.stdout.strip())
    if p.returncode != 0 or not m:
        sys.exit(f"torch_bench: {' '.join(cmd)} failed (exit {p.returncode}):\n"
                 f"{p.stdout}{p.stderr}")
    return float(m.group(1))


def cases(spec):
    """'fashion:1,4,32 resnet18:1,32' -> [('fashion', 1), ...]"""
    out = []
    for item in spec.split():
        net, _, batches = item.partition(":")
        if net not in NETS or not batches:
            sys.exit(f"torch_bench: bad case '{item}' (nets: {', '.join(NETS)}; "
                     "write NET:B1,B2)")
        out += [(net, int(b)) for b in batches.split(",")]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--cases", default="fashion:1,4,32 resnet18:1,32")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20,
                    help="timed calls per case (fewer for big cases, see --budget)")
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds: a case whose first warm-up call is slow gets "
                         "max(3, budget / that time) runs, at most --runs")
    ap.add_argument("--brnrun", help="our side: path of brnrun")
    ap.add_argument("--libs", help="our side: the folder of <net>_<t|i><batch>.so")
    a = ap.parse_args()
    if bool(a.brnrun) != bool(a.libs):
        sys.exit("torch_bench: --brnrun and --libs go together")
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    both = bool(a.brnrun)
    print(f"threads: PyTorch {torch.get_num_threads()} (torch {torch.__version__}), "
          f"ours BRN_THREADS={a.threads}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    head = "| network | batch | mode | ours ex/s | PyTorch ex/s | ours/PyTorch |"
    if not both:
        head = "| network | batch | mode | PyTorch ex/s |"
    rows = [head, "|---|---:|---|" + ("---:|" * (3 if both else 1))]

    def runs_for(seconds):
        return max(3, min(a.runs, int(a.budget / max(seconds, 1e-9))))

    for net, batch in cases(a.cases):
        # a probe call sizes the number of runs of this case (both sides)
        t0 = time.perf_counter()
        torch_train(net, batch, True, 0, 1)
        n = runs_for((time.perf_counter() - t0) * 3)  # ours is slower; be generous
        w = min(a.warmup, 1) if n < a.runs else a.warmup
        us_train = ours(a.brnrun, a.libs, a.threads, net, batch, True, w, n) if both else None
        bn_ = torch_train(net, batch, False, w, n)
        brn = torch_train(net, batch, True, w, n)
        us_inf = ours(a.brnrun, a.libs, a.threads, net, batch, False, a.warmup, a.runs) if both else None
        inf = torch_infer(net, batch, a.warmup, a.runs)
        print(f"torch_bench: {net} batch {batch}: train {n} runs, infer {a.runs} runs",
              file=sys.stderr, flush=True)  # progress: the table comes at the end
        for mode, u, t in (("train (BRN)", us_train, brn), ("train (BN)", us_train, bn_),
                           ("infer", us_inf, inf)):
            if both:
                rows.append(f"| {net} | {batch} | {mode} | {u:.1f} | {t:.1f} | {u / t:.3g} |")
            else:
                rows.append(f"| {net} | {batch} | {mode} | {t:.1f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
