#!/usr/bin/python3
"""gap.py: the train/inference gap of a trained fashion_cnn checkpoint.

Batch Renorm exists because a network trained with batch statistics is run
at inference with moving statistics, and the two differ. For one checkpoint
of net.brn or net_bn.brn (the same layers; the norm makes no difference at
inference) this prints one JSON object:

  acc_moving  test accuracy, every norm with its moving mean and sigma (what
              the C model's fashion_cnn_infer computes: a cross-check)
  acc_batch   test accuracy, every norm with the statistics of its own test
              minibatch (iid: the test set shuffled by --seed, cut into
              minibatches of --batch; mean and biased variance over n, H, W)
  layers      per norm: the moving statistics against the population ones,
              the mean and sigma of the norm's input over the whole training
              set, the network run as at inference (moving statistics in
              the norms before it):
                mean_gap   mean over channels of |mean - pop_mean| / pop_sigma
                sigma_gap  mean over channels of |ln(sigma / pop_sigma)|
              pop_sigma = sqrt(population variance + eps), as brnc's sigma.
  mean_gap, sigma_gap   the same averaged over every channel of every norm
  batch_mean_gap, batch_sigma_gap   the same distances for the statistics of
              training minibatches drawn as the run drew them (--sampler,
              --labels-per-batch; --batches of them) against the population
              ones: what a norm that uses batch statistics saw in training
              and inference does not see (the network run as above)

The network is written here in PyTorch from the .brn (an independent
implementation, not brnc's code); the tensor names and shapes of the
checkpoint are checked against it.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-3  # net.brn and net_bn.brn use the language's default eps
NORMS = ("a1", "a2")
SHAPES = {
    "c1.weight": (16, 1, 3, 3), "c1.bias": (16,),
    "c2.weight": (32, 16, 3, 3), "c2.bias": (32,),
    "logits.weight": (10, 1568), "logits.bias": (10,),
}


def fail(msg):
    sys.stderr.write("gap.py: %s\n" % msg)
    sys.exit(1)


def read_safetensors(path):
    """{name: float32 tensor}; the norm tensors keyed as 'a1.mean' etc."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail("%s: not a safetensors file" % path)
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    body = blob[8 + hlen:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        lo, hi = t["data_offsets"]
        a = np.frombuffer(body[lo:hi], dtype="<f4").reshape(t["shape"])
        parts = name.split(".")
        if parts[0] in NORMS and len(parts) == 3:  # a1.batch_renorm.mean
            name = parts[0] + "." + parts[2]
        out[name] = torch.from_numpy(a.copy())
    want = dict(SHAPES)
    for a, c in (("a1", 16), ("a2", 32)):
        for k in ("gamma", "beta", "mean", "sigma"):
            want["%s.%s" % (a, k)] = (c,)
    for name, shape in want.items():
        if name not in out:
            fail("%s: no tensor %s: not a fashion_cnn checkpoint" % (path, name))
        if tuple(out[name].shape) != shape:
            fail("%s: %s has shape %s, fashion_cnn's is %s" %
                 (path, name, list(out[name].shape), list(shape)))
    return out


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        blob = f.read()
    ndim = blob[3]
    dims = struct.unpack(">" + "I" * ndim, blob[4:4 + 4 * ndim])
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_set(data, prefix):
    def find(kind):
        for suffix in ("", ".gz"):
            p = os.path.join(data, "%s-%s%s" % (prefix, kind, suffix))
            if os.path.exists(p):
                return p
        fail("no %s-%s[.gz] in %s" % (prefix, kind, data))
    x = read_idx(find("images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find("labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def moments(h):
    """Per-channel mean and sigma of h over n, H, W: biased variance, + eps."""
    return h.mean(dim=(0, 2, 3)), torch.sqrt(h.var(dim=(0, 2, 3), unbiased=False) + EPS)


def forward(P, x, batch_stats, taps=None, seen=None):
    """Logits; batch_stats: each norm normalizes with its input's own
    statistics, else with the moving ones. taps[a] collects the per-channel
    count, sum and sum of squares of norm a's input (float64); seen[a] gets
    moments() of norm a's input over this batch."""
    h = x
    for conv, a in (("c1", "a1"), ("c2", "a2")):
        h = F.conv2d(h, P[conv + ".weight"], P[conv + ".bias"], padding=1)
        if taps is not None:
            hd = h.double()
            taps[a][0] += hd[:, 0].numel()
            taps[a][1] += hd.sum(dim=(0, 2, 3))
            taps[a][2] += (hd * hd).sum(dim=(0, 2, 3))
        if seen is not None:
            seen[a] = moments(h.double())
        if batch_stats:
            mu, sigma = moments(h)
        else:
            mu, sigma = P[a + ".mean"], P[a + ".sigma"]
        h = (h - mu[None, :, None, None]) / sigma[None, :, None, None]
        h = h * P[a + ".gamma"][None, :, None, None] + P[a + ".beta"][None, :, None, None]
        h = F.max_pool2d(F.relu(h), 2)
    return F.linear(h.flatten(1), P["logits.weight"], P["logits.bias"])


def accuracy(P, x, y, batch, batch_stats):
    correct = 0
    for i in range(0, len(y), batch):
        logits = forward(P, x[i:i + batch], batch_stats)
        correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return correct / len(y)


def train_batches(y, batch, sampler, labels_per_batch, count, seed):
    """count minibatches of the training labels y drawn as train.c's
    sampler draws them: iid, or labels_per_batch distinct labels with
    batch / labels_per_batch examples each (not the run's own batches: the
    same kind)."""
    rng = np.random.default_rng(seed)
    y = y.numpy()
    by_label = [np.flatnonzero(y == c) for c in range(10)]
    for _ in range(count):
        if sampler == "iid":
            yield torch.from_numpy(rng.choice(len(y), batch, replace=False))
        else:
            labels = rng.choice(10, labels_per_batch, replace=False)
            per = batch // labels_per_batch
            yield torch.from_numpy(np.concatenate([rng.choice(by_label[c], per, replace=False)
                                                   for c in labels]))


def gaps(mean, sigma, pop_mean, pop_sigma):
    """Per-channel |mean - pop_mean| / pop_sigma and |ln(sigma / pop_sigma)|."""
    return (mean.double() - pop_mean).abs() / pop_sigma, torch.log(sigma.double() / pop_sigma).abs()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a fashion_cnn safetensors file (train --ckpt)")
    ap.add_argument("--data", default=os.environ.get("BRN_DATA", "/usr/share/datasets/fashion-mnist"),
                    help="IDX files (default $BRN_DATA, else Debian's dataset-fashion-mnist)")
    ap.add_argument("--batch", type=int, default=32,
                    help="test minibatch of the per-batch statistics (default 32)")
    ap.add_argument("--seed", type=int, default=1, help="shuffles the test set (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="PyTorch threads (default 1)")
    ap.add_argument("--sampler", choices=("iid", "noniid"), default="iid",
                    help="how the run drew its training minibatches (default iid)")
    ap.add_argument("--labels-per-batch", type=int, default=2,
                    help="labels in a noniid minibatch (default 2)")
    ap.add_argument("--batches", type=int, default=500,
                    help="training minibatches of the batch statistics gap (default 500)")
    args = ap.parse_args()
    if args.batch < 1:
        fail("--batch must be at least 1")
    if args.sampler == "noniid" and (args.labels_per_batch < 1 or args.labels_per_batch > 10 or
                                     args.batch % args.labels_per_batch):
        fail("--labels-per-batch must be 1..10 and divide --batch")
    torch.set_num_threads(args.threads)
    P = read_safetensors(args.checkpoint)
    xtr, ytr = load_set(args.data, "train")
    xte, yte = load_set(args.data, "t10k")
    with torch.no_grad():
        res = {"batch": args.batch}
        res["acc_moving"] = accuracy(P, xte, yte, 100, False)
        perm = torch.randperm(len(yte), generator=torch.Generator().manual_seed(args.seed))
        res["acc_batch"] = accuracy(P, xte[perm], yte[perm], args.batch, True)
        taps = {a: [0, 0.0, 0.0] for a in NORMS}
        for i in range(0, len(xtr), 100):  # small chunks: 1000 is 10x slower (cache)
            forward(P, xtr[i:i + 100], False, taps)
        pop = {}
        for a in NORMS:
            m, s, ss = taps[a]
            pop_mean = s / m
            pop[a] = (pop_mean, torch.sqrt(torch.clamp(ss / m - pop_mean * pop_mean, min=0) + EPS))
        seen_gap = {a: [0.0, 0.0] for a in NORMS}
        for idx in train_batches(ytr, args.batch, args.sampler, args.labels_per_batch,
                                 args.batches, args.seed):
            seen = {}
            forward(P, xtr[idx], False, seen=seen)
            for a in NORMS:
                dm, ds = gaps(*seen[a], *pop[a])
                seen_gap[a][0] += dm / args.batches
                seen_gap[a][1] += ds / args.batches
        layers, tot = [], {}
        for a in NORMS:
            dm, ds = gaps(P[a + ".mean"], P[a + ".sigma"], *pop[a])
            row = {"mean_gap": dm, "sigma_gap": ds,
                   "batch_mean_gap": seen_gap[a][0], "batch_sigma_gap": seen_gap[a][1]}
            layers.append(dict({"norm": a}, **{k: float(v.mean()) for k, v in row.items()}))
            for k, v in row.items():
                tot.setdefault(k, []).append(v)
        res["layers"] = layers
        for k, v in tot.items():  # over every channel of every norm
            res[k] = float(torch.cat(v).mean())
    print(json.dumps(res))


if __name__ == "__main__":
    main()
