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


def forward(P, x, batch_stats, taps=None):
    """Logits; batch_stats: each norm normalizes with its input's own
    statistics, else with the moving ones. taps[a] collects the per-channel
    sum and sum of squares of norm a's input (float64)."""
    h = x
    for conv, a in (("c1", "a1"), ("c2", "a2")):
        h = F.conv2d(h, P[conv + ".weight"], P[conv + ".bias"], padding=1)
        if taps is not None:
            hd = h.double()
            taps[a][0] += hd.sum(dim=(0, 2, 3))
            taps[a][1] += (hd * hd).sum(dim=(0, 2, 3))
        if batch_stats:
            mu = h.mean(dim=(0, 2, 3))
            var = h.var(dim=(0, 2, 3), unbiased=False)
            sigma = torch.sqrt(var + EPS)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a fashion_cnn safetensors file (train --ckpt)")
    ap.add_argument("--data", default=os.environ.get("BRN_DATA", "/usr/share/datasets/fashion-mnist"),
                    help="IDX files (default $BRN_DATA, else Debian's dataset-fashion-mnist)")
    ap.add_argument("--batch", type=int, default=32,
                    help="test minibatch of the per-batch statistics (default 32)")
    ap.add_argument("--seed", type=int, default=1, help="shuffles the test set (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="PyTorch threads (default 1)")
    args = ap.parse_args()
    if args.batch < 1:
        fail("--batch must be at least 1")
    torch.set_num_threads(args.threads)
    P = read_safetensors(args.checkpoint)
    xtr, _ = load_set(args.data, "train")
    xte, yte = load_set(args.data, "t10k")
    with torch.no_grad():
        res = {"batch": args.batch}
        res["acc_moving"] = accuracy(P, xte, yte, 100, False)
        perm = torch.randperm(len(yte), generator=torch.Generator().manual_seed(args.seed))
        res["acc_batch"] = accuracy(P, xte[perm], yte[perm], args.batch, True)
        taps = {a: [0.0, 0.0] for a in NORMS}
        for i in range(0, len(xtr), 100):  # small chunks: 1000 is 10x slower (cache)
            forward(P, xtr[i:i + 100], False, taps)
        layers, mg, sg, nch = [], 0.0, 0.0, 0
        for a in NORMS:
            s, ss = taps[a]
            m = len(xtr) * {"a1": 28 * 28, "a2": 14 * 14}[a]
            pop_mean = s / m
            pop_sigma = torch.sqrt(torch.clamp(ss / m - pop_mean * pop_mean, min=0) + EPS)
            dm = ((P[a + ".mean"].double() - pop_mean).abs() / pop_sigma)
            ds = torch.log(P[a + ".sigma"].double() / pop_sigma).abs()
            layers.append({"norm": a, "mean_gap": float(dm.mean()), "sigma_gap": float(ds.mean())})
            mg += float(dm.sum())
            sg += float(ds.sum())
            nch += len(dm)
        res["layers"] = layers
        res["mean_gap"] = mg / nch
        res["sigma_gap"] = sg / nch
    print(json.dumps(res))


if __name__ == "__main__":
    main()
