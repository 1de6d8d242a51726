#!/usr/bin/python3
"""DESIGN.md §4 in PyTorch, written from the paper's equations, against the
reference interpreter: loss, every gradient, r and d, moving statistics,
weights and momentum after one and after several SGD steps, and inference.

The interpreter's numbers come from build/tests/interp_dump (float64 text);
the fixtures in tests/models/ are written one call per statement, so node
names are the statement targets. Everything here is float64; two double
implementations of the same math agree to ~1e-13, so 1e-6 relative leaves
room only for a semantic difference, never for rounding."""
import os
import re
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F

from tap import done, ok  # tests/tap.py, beside this script

torch.set_default_dtype(torch.float64)

BUILD = os.environ.get("BRN_BUILD", "build")
DUMP = os.path.join(BUILD, "tests", "interp_dump")
RTOL, ATOL = 1e-6, 1e-10



def close(got, want, what):
    """Interpreter value got against torch value want, elementwise
    |got - want| <= ATOL + RTOL * |want|."""
    got = torch.as_tensor(got).reshape(-1)
    want = want.detach().reshape(-1)
    if got.numel() != want.numel():
        ok(False, what, "%d values, expected %d" % (got.numel(), want.numel()))
        return
    err = (got - want).abs()
    bad = err > ATOL + RTOL * want.abs()
    i = int(err.argmax()) if err.numel() else 0
    ok(not bool(bad.any()), what,
       "worst at %d: interpreter %.17g, torch %.17g" % (i, float(got[i]), float(want[i])))


# --- the model language, one call per statement --------------------------------

def value(text):
    text = text.strip()
    if text.startswith("["):
        return [value(v) for v in text[1:-1].split(",")]
    if text in ("true", "false"):
        return text == "true"
    if text.startswith('"'):
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text  # a node name


def split_args(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        cur += ch
    if cur.strip():
        parts.append(cur)
    pos, kw = [], {}
    for p in parts:
        if "=" in p:
            k, v = p.split("=", 1)
            kw[k.strip()] = value(v)
        else:
            pos.append(value(p))
    return pos, kw


def parse(path):
    m = {"schedule": "paper", "nodes": []}
    src = re.sub(r"#[^\n]*", "", open(path).read())
    for st in (s.strip() for s in src.split(";")):
        if not st:
            continue
        if re.match(r"(model|batch|schedule|output)\b", st):
            k, v = st.split(None, 1)
            m[k] = value(v)
        elif re.match(r"(input|labels)\b", st):
            k, rest = st.split(None, 1)
            name, dims = re.match(r"(\w+)\s*\[(.*)\]", rest).groups()
            m[k] = (name, [int(d) for d in dims.split(",")])
        elif st.startswith("loss"):
            op, args = re.match(r"loss\s+(\w+)\((.*)\)$", st, re.S).groups()
            m["loss"] = split_args(args)[0]
        else:
            name, op, args = re.match(r"(\w+)\s*=\s*(\w+)\((.*)\)$", st, re.S).groups()
            pos, kw = split_args(args)
            m["nodes"].append((name, op, pos, kw))
    return m


def pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


def ramp(t, t0, t1, v0, v1):
    if t <= t0:
        return v0
    if t >= t1:
        return v1
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def bound(v, which, t):
    """r_max or d_max at step t: a number, or the shipped schedules written
    out here from schedules/*.lua's documentation (the paper, section 4)."""
    if not isinstance(v, str):
        return float(v)
    if v == "bn":
        return 1.0 if which == "r_max" else 0.0
    assert v == "paper", v
    if which == "r_max":
        return ramp(t, 5000, 40000, 1.0, 3.0)
    return ramp(t, 5000, 25000, 0.0, 5.0)


# --- §4 ------------------------------------------------------------------------

def norm_train(x, P, name, renorm, eps, r_max, d_max):
    """Batch renormalization, Algorithm 1 of the paper; batch_norm: r = 1, d = 0."""
    mu, sigma = P[name + ".mean"], P[name + ".sigma"]
    mu_b = x.mean(dim=(0, 2, 3))
    sig_b = torch.sqrt(((x - mu_b.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3)) + eps)
    if renorm:
        r = torch.clamp(sig_b / sigma, 1 / r_max, r_max).detach()
        d = torch.clamp((mu_b - mu) / sigma, -d_max, d_max).detach()
    else:
        r, d = torch.ones_like(mu_b), torch.zeros_like(mu_b)
    v = lambda t: t.view(1, -1, 1, 1)
    x_hat = (x - v(mu_b)) / v(sig_b) * v(r) + v(d)
    y = v(P[name + ".gamma"]) * x_hat + v(P[name + ".beta"])
    return y, (mu_b.detach(), sig_b.detach(), r, d)


def forward(m, P, x, y, t, train):
    """Returns the loss, the output and, per norm node, (mu_B, sigma_B, r, d)."""
    V = {m["input"][0]: x}
    stats = {}
    n = x.shape[0]
    for name, op, pos, kw in m["nodes"]:
        a = V[pos[0]]
        if op == "conv":
            b = P.get(name + ".bias")
            V[name] = F.conv2d(a, P[name + ".weight"], b, stride=pair(kw.get("stride", 1)),
                               padding=pair(kw.get("pad", 0)), groups=kw.get("groups", 1))
        elif op in ("batch_norm", "batch_renorm"):
            eps = kw.get("eps", 1e-3)
            if train:
                sched = m["schedule"]
                r_max = bound(kw.get("r_max", sched), "r_max", t)
                d_max = bound(kw.get("d_max", sched), "d_max", t)
                V[name], stats[name] = norm_train(a, P, name, op == "batch_renorm", eps, r_max, d_max)
            else:
                v = lambda s: P[name + "." + s].view(1, -1, 1, 1)
                V[name] = v("gamma") * (a - v("mean")) / v("sigma") + v("beta")
        elif op == "relu":
            V[name] = F.relu(a)
        elif op == "add":
            V[name] = a + V[pos[1]]
        elif op == "maxpool":
            k = pair(pos[1])
            V[name] = F.max_pool2d(a, k, stride=pair(kw.get("stride", pos[1])),
                                   padding=pair(kw.get("pad", 0)))
        elif op == "avgpool":
            k = pair(pos[1])
            V[name] = F.avg_pool2d(a, k, stride=pair(kw.get("stride", pos[1])),
                                   padding=pair(kw.get("pad", 0)), count_include_pad=False)
        elif op == "global_avgpool":
            V[name] = a.mean(dim=(2, 3), keepdim=True)
        elif op == "flatten":
            V[name] = a.reshape(n, -1, 1, 1)
        elif op == "dense":
            V[name] = F.linear(a.reshape(n, -1), P[name + ".weight"],
                               P.get(name + ".bias")).reshape(n, -1, 1, 1)
        elif op == "softmax":
            V[name] = F.softmax(a, dim=1)
        else:
            raise ValueError(op)
    loss = None
    if "loss" in m:
        loss = F.cross_entropy(V[m["loss"][0]].reshape(n, -1), y)
    return loss, V[m["output"]], stats


def alpha_of(m, name):
    return next(kw.get("alpha", 0.01) for nm, op, pos, kw in m["nodes"] if nm == name)


# --- one comparison --------------------------------------------------------------

def read_dump(path):
    D = {}
    with open(path) as f:
        lines = f.read().split("\n")
    for i in range(0, len(lines) - 1, 2):
        name, count = lines[i].split()
        vals = [float(v) for v in lines[i + 1].split()] if int(count) else []
        D[name] = torch.tensor(vals)
    return D


def case(model, seed, n, steps, lr, start=0):
    m = parse(os.path.join("tests", "models", model + ".brn"))
    tag = "%s seed %d n %d start %d" % (m["model"], seed, n, start)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "dump.txt")
        rc = subprocess.run([DUMP, "tests/models/%s.brn" % model, str(seed), str(n), str(steps),
                             repr(lr), out, str(start)]).returncode
        ok(rc == 0, "%s: interp_dump runs" % tag)
        if rc != 0:
            return
        D = read_dump(out)

    # parameters and state from the interpreter's initial values (the
    # initializer is not what is tested here)
    P, trainable = {}, []
    for k, v in D.items():
        if k.startswith("init.") and not k.endswith(".momentum"):
            name = k[5:]
            P[name] = v.clone()
            if ("init." + name + ".momentum") in D:
                trainable.append(name)
    # the weight shapes: [K, C/groups, KH, KW] and [out, in]
    dims = {m["input"][0]: m["input"][1]}
    for name, op, pos, kw in m["nodes"]:
        a = dims[pos[0]]
        if op == "conv":
            kh, kw_ = pair(kw.get("kernel", 3))
            P[name + ".weight"] = P[name + ".weight"].reshape(pos[1], a[0] // kw.get("groups", 1), kh, kw_)
            sh, sw = pair(kw.get("stride", 1))
            ph, pw = pair(kw.get("pad", 0))
            dims[name] = [pos[1], (a[1] + 2 * ph - kh) // sh + 1, (a[2] + 2 * pw - kw_) // sw + 1]
        elif op in ("maxpool", "avgpool"):
            kh, kw_ = pair(pos[1])
            sh, sw = pair(kw.get("stride", pos[1]))
            ph, pw = pair(kw.get("pad", 0))
            dims[name] = [a[0], (a[1] + 2 * ph - kh) // sh + 1, (a[2] + 2 * pw - kw_) // sw + 1]
        elif op == "global_avgpool":
            dims[name] = [a[0], 1, 1]
        elif op == "flatten":
            dims[name] = [a[0] * a[1] * a[2], 1, 1]
        elif op == "dense":
            P[name + ".weight"] = P[name + ".weight"].reshape(pos[1], a[0])
            dims[name] = [pos[1], 1, 1]
        else:
            dims[name] = a
    for name in trainable:
        P[name].requires_grad_(True)
    opt = torch.optim.SGD([P[k] for k in trainable], lr=lr, momentum=0.9, dampening=0)

    xshape = [n] + m["input"][1]
    clipped = unclipped = 0
    for s in range(steps):
        x = D["x.%d" % s].reshape(xshape).clone().requires_grad_(s == 0)
        y = D["y.%d" % s].long()
        opt.zero_grad()
        loss, _, stats = forward(m, P, x, y, start + s, True)
        loss.backward()
        close(D["loss.%d" % s], loss, "%s: loss of step %d" % (tag, s + 1))
        with torch.no_grad():
            for name, (mu_b, sig_b, r, d) in stats.items():
                al = alpha_of(m, name)
                P[name + ".mean"] += al * (mu_b - P[name + ".mean"])
                P[name + ".sigma"] += al * (sig_b - P[name + ".sigma"])
        opt.step()
        if s > 0:
            continue
        close(D["grad.x"], x.grad, "%s: dL/dx" % tag)
        for name in trainable:
            close(D["grad." + name], P[name].grad, "%s: dL/d %s" % (tag, name))
        for name, (mu_b, sig_b, r, d) in stats.items():
            if "r." + name in D:
                close(D["r." + name], r, "%s: r of %s" % (tag, name))
                close(D["d." + name], d, "%s: d of %s" % (tag, name))
                sched = m["schedule"]
                kw = next(k for nm, op, p, k in m["nodes"] if nm == name)
                r_max = bound(kw.get("r_max", sched), "r_max", start)
                inside = (r < r_max - 1e-12) & (r > 1 / r_max + 1e-12)
                clipped += int((~inside).sum())
                unclipped += int(inside.sum())
        for k in P:
            close(D["step1." + k], P[k], "%s: %s after one step" % (tag, k))
            if k in trainable:
                close(D["step1." + k + ".momentum"], opt.state[P[k]]["momentum_buffer"],
                      "%s: %s.momentum after one step" % (tag, k))
    for k in P:
        close(D["final." + k], P[k], "%s: %s after %d steps" % (tag, k, steps))
        if k in trainable:
            close(D["final." + k + ".momentum"], opt.state[P[k]]["momentum_buffer"],
                  "%s: %s.momentum after %d steps" % (tag, k, steps))
    with torch.no_grad():
        _, out, _ = forward(m, P, D["x.0"].reshape(xshape), D["y.0"].long(), start + steps, False)
    close(D["infer"], out, "%s: inference with the moving statistics" % tag)
    ok(int(D["step"][0]) == start + steps, "%s: step counter %d" % (tag, start + steps))
    return clipped, unclipped


def main():
    if not os.access(DUMP, os.X_OK):
        print("1..0 # SKIP %s is not built (make tests-build)" % DUMP)
        return 0
    totals = [0, 0]
    for args in [("every_op", 7, 6, 3, 0.1), ("every_op", 11, 3, 2, 0.05),
                 ("residual", 3, 8, 3, 0.1), ("small_renorm", 5, 4, 3, 0.2),
                 ("small_renorm", 5, 4, 3, 0.2, 4999), ("small_renorm", 9, 4, 2, 0.2, 20000),
                 ("residual", 4, 5, 1, 0.3, 40000), ("gemm", 6, 7, 2, 0.1)]:
        cu = case(*args)
        if cu:
            totals[0] += cu[0]
            totals[1] += cu[1]
    ok(totals[0] > 0 and totals[1] > 0,
       "r is clipped on some channels (%d) and not on others (%d)" % tuple(totals))
    return done()


if __name__ == "__main__":
    sys.exit(main())
