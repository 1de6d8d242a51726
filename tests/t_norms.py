#!/usr/bin/python3
"""The statistics conventions of docs/norms.md, end to end against PyTorch:
a BatchNorm2d model trained in PyTorch maps onto brnc's weights as
mean <- running_mean, sigma <- sqrt(running_var + eps), gamma <- weight,
beta <- bias, both loaded at run time (_open) and folded in (brnc --weights);
and one brnc training step moves the statistics as PyTorch's momentum =
alpha does the mean (the sigma against numpy: running_var is unbiased).

The generated code runs in a small C driver rather than through ctypes, so
the test also runs under `make asan` (BRN_SAN). Run from the repository
root; BRN_BUILD names the build directory, BRN_CC the C compiler."""
import json
import os
import shlex
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from tap import done, ok  # tests/tap.py, beside this script

torch.set_default_dtype(torch.float64)

BUILD = os.path.abspath(os.environ.get("BRN_BUILD", "build"))
BRNC = os.path.join(BUILD, "brnc")
CC = os.environ.get("BRN_CC", "cc")
SAN = os.environ.get("BRN_SAN", "")
# brnc looks for schedules/ beside its binary, which build/asan/ is not.
os.environ.setdefault("BRN_SCHEDULES", os.path.abspath("schedules"))

# float32 code against a float64 reference: |brnc - torch| <= ATOL + RTOL |torch|.
ATOL, RTOL = 1e-4, 1e-3
# The moving statistics after one step are a few float32 sums away from
# float64; tighter, so that the unbiased-variance trap below is visible.
S_ATOL, S_RTOL = 1e-6, 1e-5

EPS = 1e-5      # PyTorch's BatchNorm2d default (brnc's default is 1e-3)
ALPHA = 0.1     # brnc alpha = PyTorch momentum = 1 - Keras momentum
BATCH = 4

MODEL = """# t_norms.py: conv with bias, batch_norm, relu, a dense head.
model bnmap;
batch %d;
input  x[2, 4, 4];
labels y[5];
c = conv(x, 3, kernel=3, pad=1);
n = batch_norm(c, eps=%r, alpha=%r);
a = relu(n);
f = flatten(a);
z = dense(f, 5);
loss softmax_cross_entropy(z, y);
output z;
""" % (BATCH, EPS, ALPHA)

# Runs one call of the generated API on raw float32/int32 files, so that
# Python only writes inputs and reads outputs.
DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bnmap.h"

static int fail(bnmap *m, int rc, const char *what)
{
	fprintf(stderr, "driver: %s: rc %d: %s\n", what, rc, bnmap_error(m));
	bnmap_close(m);
	return 1;
}

static int slurp(const char *path, void *dst, size_t bytes)
{
	FILE *f = fopen(path, "rb");
	size_t got = f ? fread(dst, 1, bytes, f) : 0;
	if (f)
		fclose(f);
	return got == bytes ? 0 : -1;
}

/* driver WEIGHTS|- X N OUT                infer; OUT gets n * OUTPUT_SIZE floats
 * driver WEIGHTS|- X N CKPT LABELS LR     one train step, then _save to CKPT */
int main(int argc, char **argv)
{
	if (argc != 5 && argc != 7)
		return 2;
	int n = atoi(argv[3]);
	float x[BNMAP_BATCH * BNMAP_INPUT_SIZE], out[BNMAP_BATCH * BNMAP_OUTPUT_SIZE];
	if (n < 1 || n > BNMAP_BATCH || slurp(argv[2], x, (size_t)n * BNMAP_INPUT_SIZE * sizeof(float)))
		return 2;
	bnmap *m;
	int rc = bnmap_open(&m, strcmp(argv[1], "-") ? argv[1] : NULL);
	if (rc)
		return fail(m, rc, "open");
	if (argc == 5) {
		if ((rc = bnmap_infer(m, x, n, out)))
			return fail(m, rc, "infer");
		FILE *f = fopen(argv[4], "wb");
		if (!f || fwrite(out, sizeof(float), (size_t)n * BNMAP_OUTPUT_SIZE, f) != (size_t)n * BNMAP_OUTPUT_SIZE)
			return 2;
		fclose(f);
	} else {
#ifdef BNMAP_TRAIN
		int32_t y[BNMAP_BATCH];
		float loss;
		if (slurp(argv[5], y, (size_t)n * sizeof(int32_t)))
			return 2;
		if ((rc = bnmap_train_step(m, x, y, n, (float)atof(argv[6]), &loss)))
			return fail(m, rc, "train_step");
		if ((rc = bnmap_save(m, argv[4])))
			return fail(m, rc, "save");
		printf("%.9g\n", loss);
#else
		return 2;
#endif
	}
	bnmap_close(m);
	return 0;
}
"""



def worst(got, want, atol, rtol):
    """Largest |got - want| / (atol + rtol |want|): <= 1 passes."""
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    want = np.asarray(want, dtype=np.float64).reshape(-1)
    if got.shape != want.shape:
        return float("inf"), 0
    r = np.abs(got - want) / (atol + rtol * np.abs(want))
    r[np.isnan(r)] = np.inf
    i = int(np.argmax(r)) if r.size else 0
    return (float(r[i]) if r.size else 0.0), i


def close(got, want, what, atol=ATOL, rtol=RTOL):
    w, i = worst(got, want, atol, rtol)
    got, want = np.asarray(got).reshape(-1), np.asarray(want).reshape(-1)
    detail = "worst at %d: brnc %.9g, want %.9g" % (i, got[i], want[i]) if got.shape == want.shape \
        else "%d values, expected %d" % (got.size, want.size)
    ok(w <= 1, "%s (within %g + %g|x|)" % (what, atol, rtol), detail)


# --- safetensors, written and read by hand ----------------------------------------

def st_write(path, tensors, step=0):
    """8-byte little-endian header length, a JSON header (dtype, shape,
    data_offsets into the data that follows), then the F32 data."""
    header, blobs, off = {"__metadata__": {"step": str(step)}}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(np.asarray(t, dtype="<f4"))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, d in header.items():
        b, e = d["data_offsets"]
        assert d["dtype"] == "F32", d
        out[name] = np.frombuffer(data[8 + hlen + b:8 + hlen + e], dtype="<f4").reshape(d["shape"])
    return out, meta


# --- the PyTorch model -----------------------------------------------------------

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv2d(2, 3, 3, padding=1, bias=True)
        self.n = torch.nn.BatchNorm2d(3, eps=EPS, momentum=ALPHA)
        self.z = torch.nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        return self.z(torch.flatten(F.relu(self.n(self.c(x))), 1))


def brnc_weights(net):
    """The mapping of docs/norms.md: PyTorch names and statistics to brnc's."""
    bn = net.n
    return {
        "c.weight": net.c.weight.detach(),             # [K, C/groups, KH, KW], as PyTorch
        "c.bias": net.c.bias.detach(),
        "n.gamma": bn.weight.detach(),
        "n.beta": bn.bias.detach(),
        "n.mean": bn.running_mean,
        "n.sigma": torch.sqrt(bn.running_var + bn.eps),  # a std, eps inside
        "z.weight": net.z.weight.detach(),             # [out, in], in = C, H, W flattened
        "z.bias": net.z.bias.detach(),
    }


def make_net(gen):
    """A net with non-trivial everything: a few SGD steps in train mode move
    the running statistics far from (0, 1); gamma and beta are set."""
    net = Net()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        net.n.weight.copy_(1 + 0.5 * torch.rand(3, generator=gen))
    net.n.momentum = 0.5
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    net.train()
    for _ in range(4):
        x = torch.randn(BATCH, 2, 4, 4, generator=gen) * 2 + 1
        y = torch.randint(0, 5, (BATCH,), generator=gen)
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    net.n.momentum = ALPHA
    with torch.no_grad():       # what brnc will read: float32 values
        for t in list(net.parameters()) + [net.n.running_mean, net.n.running_var]:
            t.copy_(t.float().double())
    return net


# --- brnc --------------------------------------------------------------------------

def sh(cmd, what):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        how = "signal %d" % -r.returncode if r.returncode < 0 else "exit %d" % r.returncode
        sys.stderr.write("# %s (%s): %s\n" % (what, how, " ".join(map(shlex.quote, cmd))))
        for line in (r.stdout + r.stderr).splitlines()[-20:]:
            sys.stderr.write("#   %s\n" % line)
    return r


def build(tmp, tag, mode, weights=None):
    """brnc MODEL --mode MODE [--weights W] -o tmp/tag/bnmap, linked with the
    driver into tmp/tag/driver; its path, or None."""
    d = os.path.join(tmp, tag)
    os.makedirs(d, exist_ok=True)
    cmd = [BRNC, os.path.join(tmp, "bnmap.brn"), "--target", "c", "--mode", mode, "-o",
           os.path.join(d, "bnmap")]
    if weights:
        cmd += ["--weights", weights]
    if sh(cmd, "brnc").returncode != 0:
        return None
    with open(os.path.join(d, "driver.c"), "w") as f:
        f.write(DRIVER)
    exe = os.path.join(d, "driver")
    cmd = [CC] + shlex.split(SAN) + ["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
                                     "-Iruntime", "-I" + d, os.path.join(d, "driver.c"),
                                     os.path.join(d, "bnmap.c"), "-o", exe, "-L" + BUILD, "-lbrnrt",
                                     "-Wl,-rpath," + BUILD, "-lOpenCL", "-lm"]
    return exe if sh(cmd, "cc").returncode == 0 else None


def infer(exe, weights, x, tmp):
    xin, out = os.path.join(tmp, "x.f32"), os.path.join(tmp, "out.f32")
    np.asarray(x, dtype="<f4").tofile(xin)
    if os.path.exists(out):
        os.remove(out)
    r = sh([exe, weights or "-", xin, str(x.shape[0]), out], "infer")
    return np.fromfile(out, dtype="<f4").reshape(x.shape[0], -1) if r.returncode == 0 else None


def train_step(exe, weights, x, y, lr, ckpt, tmp):
    xin, yin = os.path.join(tmp, "x.f32"), os.path.join(tmp, "y.i32")
    np.asarray(x, dtype="<f4").tofile(xin)
    np.asarray(y, dtype="<i4").tofile(yin)
    r = sh([exe, weights, xin, str(x.shape[0]), ckpt, yin, repr(lr)], "train step")
    return float(r.stdout) if r.returncode == 0 else None


# --- the checks --------------------------------------------------------------------

def check_infer(tmp, gen):
    """Eval-mode PyTorch against brnc with the mapped weights, loaded at run
    time and folded in by brnc --weights."""
    net = make_net(gen)
    net.eval()
    rm, rv = net.n.running_mean, net.n.running_var
    ok(float(rm.abs().min()) > 1e-2 and float((rv - 1).abs().min()) > 1e-2,
       "the running statistics are far from (0, 1): mean %s, var %s" % (rm.tolist(), rv.tolist()))
    wpath = os.path.join(tmp, "bnmap.safetensors")
    st_write(wpath, brnc_weights(net))

    x = (torch.randn(BATCH, 2, 4, 4, generator=gen) * 2 + 1).float().double()
    with torch.no_grad():
        want = net(x).numpy()
    for tag, weights, folded in [("infer-open", wpath, None), ("infer-folded", None, wpath)]:
        exe = build(tmp, tag, "infer", folded)
        ok(exe is not None, "%s: brnc and cc build the model" % tag)
        if exe is None:
            continue
        for n in (BATCH, 1):
            got = infer(exe, weights, x[:n].numpy(), tmp)
            if got is None:
                ok(False, "%s n=%d: runs" % (tag, n))
                continue
            close(got, want[:n], "%s n=%d: equals PyTorch's eval output" % (tag, n))

    # The trap: sigma is a std with eps inside; passing the variance, or the
    # std without eps, does not give PyTorch's output.
    bad = dict(brnc_weights(net))
    bad["n.sigma"] = net.n.running_var
    wbad = os.path.join(tmp, "bad.safetensors")
    st_write(wbad, bad)
    exe = os.path.join(tmp, "infer-open", "driver")
    got = infer(exe, wbad, x.numpy(), tmp) if os.path.exists(exe) else None
    ok(got is not None and worst(got, want, ATOL, RTOL)[0] > 10,
       "the variance as sigma is far from PyTorch's output (the check can tell)")


def check_train(tmp, gen, n):
    """One brnc step from the mapped state against PyTorch's train-mode
    BatchNorm2d(momentum = alpha) on the same n examples."""
    tag = "train n=%d of %d" % (n, BATCH)
    d = os.path.join(tmp, "train")
    exe = os.path.join(d, "driver")
    if not os.path.exists(d):
        ok(build(tmp, "train", "train") is not None, "train: brnc and cc build the model")
    if not os.path.exists(exe):
        ok(False, "%s: the model is built" % tag)
        return
    net = Net()
    net.load_state_dict(make_net(gen).state_dict())
    wpath = os.path.join(d, "start-%d.safetensors" % n)
    st_write(wpath, brnc_weights(net))    # no .momentum: a training model starts it at 0
    mu0 = net.n.running_mean.clone().numpy()
    sigma0 = torch.sqrt(net.n.running_var + EPS).numpy()

    x = (torch.randn(n, 2, 4, 4, generator=gen) * 2 + 1).float().double()
    y = torch.randint(0, 5, (n,), generator=gen)
    ckpt = os.path.join(d, "ckpt-%d.safetensors" % n)
    loss = train_step(exe, wpath, x.numpy(), y.numpy(), 0.1, ckpt, tmp)
    ok(loss is not None, "%s: runs" % tag)
    if loss is None:
        return
    saved, meta = st_read(ckpt)
    ok(meta.get("step") == "1", "%s: the checkpoint says step 1 (got %r)" % (tag, meta.get("step")))

    net.train()
    with torch.no_grad():
        c = net.c(x)
        want_loss = F.cross_entropy(net(x), y).item()   # updates running_* once
    close([loss], [want_loss], "%s: loss equals PyTorch's train mode (biased variance, eps inside)" % tag)
    close(saved["n.mean"], net.n.running_mean.numpy(),
          "%s: mean equals PyTorch's running_mean with momentum = alpha = %g" % (tag, ALPHA),
          S_ATOL, S_RTOL)
    keras = 0.99 if ALPHA == 0.01 else 1 - ALPHA
    mu_b = c.mean(dim=(0, 2, 3)).numpy()
    close(saved["n.mean"], keras * mu0 + (1 - keras) * mu_b,
          "%s: mean equals Keras' moving_mean with momentum = 1 - alpha" % tag, S_ATOL, S_RTOL)

    var_b = c.var(dim=(0, 2, 3), unbiased=False).numpy()    # over n*H*W values
    want_sigma = sigma0 + ALPHA * (np.sqrt(var_b + EPS) - sigma0)
    close(saved["n.sigma"], want_sigma,
          "%s: sigma += alpha (sqrt(biased batch var + eps) - sigma)" % tag, S_ATOL, S_RTOL)
    unbiased = np.sqrt(net.n.running_var.numpy() + EPS)
    ok(worst(saved["n.sigma"], unbiased, S_ATOL, S_RTOL)[0] > 10,
       "%s: sqrt(PyTorch's running_var + eps) is not sigma (running_var is unbiased)" % tag,
       "brnc %s, sqrt(running_var + eps) %s" % (saved["n.sigma"].tolist(), unbiased.tolist()))
    wrong = ALPHA * mu0 + (1 - ALPHA) * mu_b
    ok(worst(saved["n.mean"], wrong, S_ATOL, S_RTOL)[0] > 10,
       "%s: rate 1 - alpha would be far off (the check can tell)" % tag)


def main():
    if not os.access(BRNC, os.X_OK):
        print("1..0 # SKIP %s is not built (make all)" % BRNC)
        return 0
    gen = torch.Generator().manual_seed(20170210)
    with tempfile.TemporaryDirectory(prefix="brnc-norms-") as tmp:
        with open(os.path.join(tmp, "bnmap.brn"), "w") as f:
            f.write(MODEL)
        check_infer(tmp, gen)
        for n in (BATCH, 3):
            check_train(tmp, gen, n)
    return done()


if __name__ == "__main__":
    sys.exit(main())
