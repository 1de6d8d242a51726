#!/usr/bin/python3
"""brnc on ONNX models (docs/onnx.md), against PyTorch:

- torchvision resnet18 and mobilenet_v2 (10 classes, random weights and
  BatchNorm statistics, eval), exported as torch.onnx.export does by default
  (BatchNorm folded into the convs) and with the BatchNorms kept: brnc's C
  and OpenCL code give PyTorch's logits within 2e-4 of the largest logit;
- --emit brn prints a model that compiles to the same graph; --emit
  torch-names maps brnc's tensors onto the model's state_dict;
- --renorm --mode train on resnet18: 3 steps against the interpreter
  (build/tests/onnx_train_check, t_codegen's tolerances), then --emit onnx
  with the trained weights, loaded into torchvision's resnet18: PyTorch's
  eval outputs equal brnc's inference with those weights;
- every unsupported or malformed model: the exact message, exit status 1.

Run from the repository root; BRN_BUILD names the build directory, BRN_CC
the C compiler (for brnc --shared)."""
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import torch
    import torchvision
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # python3-torch, -torchvision, -onnx: make deps
    print("1..0 # SKIP %s" % e)
    sys.exit(0)

from tap import done, ok  # tests/tap.py, beside this script

BUILD = os.path.abspath(os.environ.get("BRN_BUILD", "build"))
BRNC = os.path.join(BUILD, "brnc")
BRNRUN = os.path.join(BUILD, "brnrun")
TRAIN_CHECK = os.path.join(BUILD, "tests", "onnx_train_check")
os.environ.setdefault("BRN_SCHEDULES", os.path.abspath("schedules"))
os.environ["CC"] = os.environ.get("BRN_CC", "cc")  # brnc --shared
TMP = tempfile.mkdtemp(prefix="brnc-onnx-")
REL = 2e-4  # of the largest logit


def brnc(*args):
    return subprocess.run([BRNC] + [str(a) for a in args], capture_output=True, text=True)


def at(name):
    return os.path.join(TMP, name)


def torchvision_model(name, seed):
    """Random weights and BatchNorm statistics away from their defaults."""
    torch.manual_seed(seed)
    m = getattr(torchvision.models, name)(num_classes=10)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    return m.eval()


def export(model, x, path, keep_bn):
    kw = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False) if keep_bn else {}
    torch.onnx.export(model, x, path, **kw)


def brn_infer(model, base, target, x, weights=None, extra=()):
    """Compiles model (ONNX) with brnc --shared and runs it with brnrun."""
    r = brnc(model, "--target", target, "--batch", x.shape[0], "--shared", "-o", base, *extra)
    if r.returncode:
        sys.stderr.write("# brnc: %s\n" % r.stderr)
        return None
    x.numpy().astype("<f4").tofile(base + ".x")
    r = subprocess.run([BRNRUN, "infer", base + ".so", "--weights", weights or base + ".safetensors",
                        "--input", base + ".x", "--output", base + ".y"], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write("# brnrun: %s\n" % r.stderr)
        return None
    return np.fromfile(base + ".y", dtype="<f4").reshape(x.shape[0], -1)


def close_logits(got, want, what):
    if got is None:
        ok(False, what, "did not build or run")
        return
    err = float(np.abs(got - want).max())
    scale = float(np.abs(want).max())
    ok(err <= REL * scale, "%s: max |brnc - torch| %.3g <= %g * %.3g" % (what, err, REL, scale),
       "largest difference %.3g" % err)


# --- torchvision models, BatchNorm folded and kept --------------------------------

def imported_models():
    for name, seed in (("resnet18", 1), ("mobilenet_v2", 2)):
        model = torchvision_model(name, seed)
        torch.manual_seed(seed + 10)
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            want = model(x).numpy()
        for keep in (False, True):
            tag = "%s_%s" % (name, "bn" if keep else "folded")
            path = at(tag + ".onnx")
            export(model, x, path, keep)
            for target in ("c", "opencl"):
                got = brn_infer(path, at(tag + "_" + target), target, x)
                close_logits(got, want, "%s, %s target" % (tag, target))
            if name == "resnet18" and keep:
                names_case(model, path)
                emit_brn_case(path, tag)


def names_case(model, path):
    """--emit torch-names: every brnc tensor maps onto a state_dict entry."""
    r = brnc(path, "--emit", "torch-names")
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    keys = set(model.state_dict())
    missing = [row[1] for row in rows if row[1] not in keys]
    ok(r.returncode == 0 and rows and not missing,
       "--emit torch-names: %d tensors, each a state_dict name" % len(rows), "not in state_dict: %s" % missing[:5])
    want = {"conv1.weight": "conv1.weight\tsame", "bn1.sigma": "bn1.running_var\tvar = sigma^2 - 9.99999975e-06",
            "fc.weight": "fc.weight\tsame"}
    got = {row[0]: "\t".join(row[1:]) for row in rows}
    ok(all(got.get(k) == v for k, v in want.items()), "--emit torch-names: conv1, bn1, fc rows",
       "got %s" % {k: got.get(k) for k in want})


def emit_brn_case(path, tag):
    """--emit brn prints a model that compiles to the graph of the ONNX one."""
    r = brnc(path, "--emit", "brn")
    brn = at(tag + ".brn")
    with open(brn, "w") as f:
        f.write(r.stdout)
    a, b = brnc(path, "--emit", "graph"), brnc(brn, "--emit", "graph")
    ok(r.returncode == 0 and a.returncode == 0 and a.stdout == b.stdout and a.stdout.count("\n") > 60,
       "--emit brn: the printed model has the same graph (%d lines)" % a.stdout.count("\n"),
       "brn: %s" % b.stderr)


# --- opsets 9 to 17 on a small model with the other operators ----------------------

class Small(torch.nn.Module):
    """ReLU6 (Clip: attributes before opset 11, inputs from it, with Casts
    of them in some), AvgPool2d with count_include_pad (PyTorch's default:
    Pad + AveragePool), a depthwise conv, view ->
    Reshape, x @ W + b -> MatMul + Add, softmax (its axis default changed in
    opset 13)."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.n1 = torch.nn.BatchNorm2d(8)
        self.pool = torch.nn.AvgPool2d(3, stride=2, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.n2 = torch.nn.BatchNorm2d(8)
        self.w = torch.nn.Parameter(torch.randn(128, 10) * 0.1)
        self.b = torch.nn.Parameter(torch.randn(10))

    def forward(self, x):
        x = self.pool(torch.nn.functional.relu6(self.n1(self.c1(x))))
        x = torch.nn.functional.max_pool2d(torch.relu(self.n2(self.c2(x))), 2)
        return torch.softmax(x.view(-1, 128) @ self.w + self.b, dim=1)


def opset_models():
    torch.manual_seed(5)
    model = Small()
    with torch.no_grad():
        for n in (model.n1, model.n2):
            n.running_mean.uniform_(-0.5, 0.5)
            n.running_var.uniform_(0.5, 2.0)
        model.n1.weight.uniform_(3, 5)  # so that relu6 clips at 6 too
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        want = model(x).numpy()
    for opset in (9, 11, 13, 17):
        for keep in (False, True):
            tag = "small_%d_%s" % (opset, "bn" if keep else "folded")
            kw = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False) if keep else {}
            torch.onnx.export(model, x, at(tag + ".onnx"), opset_version=opset, **kw)
            ops = sorted({n.op_type for n in onnx.load(at(tag + ".onnx")).graph.node})
            got = brn_infer(at(tag + ".onnx"), at(tag), "c", x)
            close_logits(got, want, "%s, opset %d: %s" % (tag, opset, " ".join(ops)))


# --- --renorm --mode train, then export --------------------------------------------

def train_and_export():
    model = torchvision_model("resnet18", 0)
    torch.manual_seed(13)
    # 48x48: layer4 is 2x2, so each batch_renorm has 16 values per channel
    # at batch 4 (at 1x1 the batch statistics of 4 values are too
    # ill-conditioned for float32 to follow float64 over several steps)
    x = torch.randn(4, 3, 48, 48)
    path = at("renorm.onnx")
    export(model, x, path, True)
    trained = at("trained.safetensors")
    r = subprocess.run([TRAIN_CHECK, path, "3", "0.001", trained], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("ok ") or line.startswith("not ok "):
            good = line.startswith("ok ")
            ok(good, "--renorm --mode train: " + line.split(" - ", 1)[-1], r.stderr)
    if r.returncode or not os.path.exists(trained):
        ok(False, "onnx_train_check ran", r.stderr)
        return
    out = at("trained.onnx")
    e = brnc(path, "--weights", trained, "--emit", "onnx", "-o", out)
    ok(e.returncode == 0 and os.path.exists(out), "--emit onnx writes the model", e.stderr)
    if e.returncode:
        return
    m = onnx.load(out)
    onnx.checker.check_model(m)
    values = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    state = model.state_dict()
    loaded = 0
    for key in state:
        if key in values:
            state[key] = torch.from_numpy(values[key].copy())
            loaded += 1
    model.load_state_dict(state)
    # gamma, beta, mean, var, conv and fc weights: all but num_batches_tracked
    ok(loaded == len([k for k in state if not k.endswith("num_batches_tracked")]),
       "the exported initializers load into torchvision's resnet18 (%d tensors)" % loaded)
    with torch.no_grad():
        want = model.eval()(x).numpy()
    got = brn_infer(path, at("trained_infer"), "c", x, weights=trained)
    close_logits(got, want, "trained weights: torch eval on the exported ONNX vs brnc")
    # and the BatchNorms trained by brnc export as PyTorch reads them back
    got = brn_infer(out, at("reimport"), "c", x)
    close_logits(got, want, "the exported ONNX imported again")


# --- errors --------------------------------------------------------------------------

def tiny(nodes=None, inputs=None, inits=None, opset=14, outputs=None):
    """x[1, 1, 8, 8] -> Conv(2, 3x3, pad 1) -> Relu -> y, or what is given."""
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    nodes = nodes if nodes is not None else [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu0")]
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "g", inputs, outputs, inits if inits is not None else [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def bad(name, model, want):
    path = at(name + ".onnx")
    if isinstance(model, bytes):
        with open(path, "wb") as f:
            f.write(model)
    else:
        onnx.save(model, path)
    r = brnc(path, "--emit", "graph")
    first = r.stderr.splitlines()[0] if r.stderr else ""
    full = want.replace("@", "brnc: " + path + ": error: ")
    ok(r.returncode == 1 and first == full, "%s: %s" % (name, want), "exit %d, got: %s" % (r.returncode, first))


def errors():
    onnx.save(tiny(), at("good.onnx"))
    r = brnc(at("good.onnx"), "--emit", "graph")
    ok(r.returncode == 0 and "relu0 = relu(conv0)" in r.stdout, "the tiny model compiles", r.stderr)
    good = open(at("good.onnx"), "rb").read()
    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv0", pads=[1, 1, 1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    reads = ("brnc reads Add, AveragePool, BatchNormalization, Cast, Clip, Constant, Conv, Dropout, Flatten, "
             "Gemm, GlobalAveragePool, Identity, MatMul, MaxPool, Pad, Relu, Reshape, Softmax")
    bad("unknown_op", tiny([conv, helper.make_node("LRN", ["c"], ["y"], name="lrn0", size=3)]),
        "@node 1 'lrn0' (LRN): unsupported operator; " + reads)
    bad("dynamic", tiny(inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, "h", 8])]),
        "@input 'x' has a dynamic or invalid dimension 2 'h'; brnc compiles static shapes "
        "(export with a fixed input size)")
    bad("no_initializer", tiny(inits=[]),
        "@node 0 'conv0' (Conv): input 1 'w' is neither an initializer, a graph input nor an earlier "
        "node's output")
    bad("truncated", good[:len(good) // 2],
        "@not an ONNX model: the protobuf data is malformed or truncated")
    bad("opset8", tiny(opset=8), "@opset 8 is not supported (brnc reads opsets 9 to 17)")
    bad("opset18", tiny(opset=18), "@opset 18 is not supported (brnc reads opsets 9 to 17)")
    bad("text", b"model m;\ninput x[1, 8, 8];\n",
        "@not an ONNX model: the protobuf data is malformed or truncated")
    bad("empty", b"", "@not an ONNX model: it has no graph")
    bad("asymmetric", tiny([helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", pads=[0, 0, 1, 1])]),
        "@node 0 'conv0' (Conv): asymmetric pads [0, 0, 1, 1] are not supported (brnc pads both sides alike)")
    bad("dilation", tiny([helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", dilations=[2, 2])]),
        "@node 0 'conv0' (Conv): dilation 2x2 is not supported (brnc has no dilated windows)")
    bad("clip", tiny([conv, helper.make_node("Clip", ["c"], ["y"], name="clip0", min=0.0, max=5.0)], opset=10),
        "@node 1 'clip0' (Clip): Clip(0, 5) is not supported; brnc has Clip(0, 6) as relu6 and Clip(0) as relu")
    bad("two_outputs", tiny(outputs=[y, helper.make_tensor_value_info("c", TensorProto.FLOAT, None)]),
        "@the graph has 2 outputs; brnc compiles models with one")
    bad("two_inputs", tiny(inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8]),
                                   helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 1, 8, 8])]),
        "@the graph has 2 inputs besides its initializers; brnc compiles models with one")
    bad("int_weight", tiny(inits=[numpy_helper.from_array(np.ones((2, 1, 3, 3), np.int64), "w")]),
        "@node 0 'conv0' (Conv): 'w' has data type 7; expected float (1)")
    bad("add_const", tiny([conv, helper.make_node("Add", ["c", "w"], ["y"], name="add0")]),
        "@node 1 'add0' (Add): adding a constant is supported only as the bias right after a MatMul")
    bad("ceil", tiny([conv, helper.make_node("MaxPool", ["c"], ["y"], name="pool0", kernel_shape=[2, 2],
                                             ceil_mode=1)]),
        "@node 1 'pool0' (MaxPool): ceil_mode=1 is not supported (brnc rounds output sizes down)")
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    bad("pad_maxpool", tiny([helper.make_node("Pad", ["x", "pads"], ["p"], name="pad0"),
                             helper.make_node("MaxPool", ["p"], ["y"], name="pool0", kernel_shape=[3, 3])],
                            inits=[w, pads]),
        "@node 1 'pool0' (MaxPool): input 0 'p' comes from a Pad, which brnc reads only right before a Conv "
        "or an AveragePool")
    bad("pad_value", tiny([helper.make_node("Pad", ["x", "pads", "one"], ["y"], name="pad0")],
                          inits=[w, pads, numpy_helper.from_array(np.ones((1,), np.float32), "one")]),
        "@node 0 'pad0' (Pad): padding with a value other than 0 is not supported (brnc pads with zeros)")
    # the .brn front end checks the translated model: its errors point into
    # the text --emit brn prints
    r = brnc(at("good.onnx"), "--batch", "0")
    ok(r.returncode == 2, "usage errors stay usage errors (exit %d)" % r.returncode)
    with open(at("m.brn"), "w") as f:
        f.write("model m;\ninput x[1, 8, 8];\nc = relu(x);\n")
    r = brnc(at("m.brn"), "--renorm")
    ok(r.returncode == 2 and r.stderr.startswith("brnc: --renorm and --emit brn|onnx|torch-names apply to ONNX "
                                                 "models, and '%s' is not one" % at("m.brn")),
       "--renorm on a .brn model: a usage error", r.stderr)
    r = brnc(at("missing.onnx"))
    ok(r.returncode == 1 and r.stderr.startswith("brnc: " + at("missing.onnx") + ": error: cannot open: No such file"),
       "a missing file: cannot open", r.stderr)


try:
    errors()
    opset_models()
    imported_models()
    train_and_export()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
sys.exit(done())
