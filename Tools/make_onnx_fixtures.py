#!/usr/bin/env python3
"""Make the ONNX import fixtures in Tests/Fixtures/onnx/ with real frameworks.

Run once, by a developer, from the repository root (any Python >= 3.11 starts it):

    python Tools/make_onnx_fixtures.py            # all four fixtures
    python Tools/make_onnx_fixtures.py --only torch_opmix

The test suite never runs this: it reads the committed .onnx and .expected.json files only.

The script makes (or reuses) a venv at .build/fixture-env (git ignores .build/) and re-runs itself
inside it. The venv is made with exactly:

    python3 -m venv .build/fixture-env
    .build/fixture-env/bin/pip install "torch==2.13.0,!=2.13.0+cpu" torchvision==0.28.0 \
        tensorflow-cpu==2.21.0 tf2onnx==1.17.0 keras==3.15.1 onnx==1.23.2 onnxruntime==1.32.0 \
        numpy==2.4.6 protobuf==7.36.2

Why these pins:
- torch 2.13.0 is the default PyPI build (it reports itself as 2.13.0+cu130 and bundles CUDA 13
  libraries, about 3 GB; it runs on CPU). The CPU-only build (2.13.0+cpu) is not usable here: the
  download.pytorch.org CPU index is not reachable from our machines, and the torchvision 0.28.0
  wheel on PyPI is linked against the CUDA build of torch (libtorch_cuda.so, libc10_cuda.so), so
  with torch 2.13.0+cpu `import torchvision` fails with "operator torchvision::nms does not exist".
  The `!=2.13.0+cpu` keeps pip from choosing the +cpu wheel where an index offers both (pip ranks
  a local version above the plain one). Where the CPU index is reachable, the lighter pair is
  torch==2.13.0+cpu with torchvision==0.28.0+cpu from https://download.pytorch.org/whl/cpu.
- tensorflow-cpu 2.21.0 + tf2onnx 1.17.0 + keras 3.15.1 + protobuf 7.36.2 + onnx 1.23.2 install
  together without conflicts (`pip check` is clean) and tf2onnx.convert.from_keras converts a
  Keras 3 functional model; no downgrade was needed. numpy 2.4.6 is what tensorflow 2.21 accepts.

Data: real Fashion-MNIST from /usr/share/datasets/fashion-mnist (Debian package
dataset-fashion-mnist), IDX files read with gzip + numpy; preprocessing is pixels / 255 as float32.

Every model is trained briefly (seeded, fixed hyper-parameters, 2 threads), exported to ONNX
opset 13, checked with onnx.checker (full_check) and run with ONNX Runtime on all 10,000 test
images; NAME.expected.json beside NAME.onnx is written by this script only.
"""
import argparse
import collections
import gzip
import hashlib
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO, ".build", "fixture-env")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
PINS = [
    "torch==2.13.0,!=2.13.0+cpu",
    "torchvision==0.28.0",
    "tensorflow-cpu==2.21.0",
    "tf2onnx==1.17.0",
    "keras==3.15.1",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "numpy==2.4.6",
    "protobuf==7.36.2",
]
# distribution name -> version that must be installed (torch's reports a local tag, checked by prefix)
EXPECTED_VERSIONS = {
    "torch": "2.13.0",
    "torchvision": "0.28.0",
    "tensorflow-cpu": "2.21.0",
    "tf2onnx": "1.17.0",
    "keras": "3.15.1",
    "onnx": "1.23.2",
    "onnxruntime": "1.32.0",
    "numpy": "2.4.6",
    "protobuf": "7.36.2",
}
DATA_DIR = "/usr/share/datasets/fashion-mnist"
OUT_DIR = os.path.join(REPO, "Tests", "Fixtures", "onnx")
THREADS = 2
OPSET = 13
SEED = 0
FIRST = 16
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# ----------------------------------------------------------------------------------------------
# venv bootstrap (shared with Tools/export_torchvision.py)

def _venv_ok():
    check = ("import importlib.metadata as m, json, sys; exp = json.loads(sys.argv[1]); "
             "bad = [(k, m.version(k), v) for k, v in exp.items() "
             "if m.version(k).split('+')[0] != v]; print(bad); sys.exit(1 if bad else 0)")
    try:
        r = subprocess.run([VENV_PYTHON, "-c", check, json.dumps(EXPECTED_VERSIONS)],
                           capture_output=True, text=True)
    except OSError:
        return False
    return r.returncode == 0


def ensure_venv(script, argv):
    """Re-run `script` inside .build/fixture-env, making the venv first if it is missing or wrong."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not _venv_ok():
        if not os.path.exists(VENV_PYTHON):
            print(f"== making venv {VENV}", flush=True)
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        print("== pip install " + " ".join(PINS), flush=True)
        subprocess.run([VENV_PYTHON, "-m", "pip", "install", *PINS], check=True)
        if not _venv_ok():
            sys.exit(f"the venv at {VENV} does not have the pinned versions {EXPECTED_VERSIONS}")
    os.execv(VENV_PYTHON, [VENV_PYTHON, script, *argv])


def limit_threads():
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(THREADS)
    # OpenMP threads that wait by sleeping, not spinning: on a machine that other jobs share,
    # spinning made a 2-thread training step ~4x slower (2.5 s vs 0.66 s for MobileNetV2 at
    # batch 128); same threads and same partition of work, so the same numbers.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def package_versions():
    import importlib.metadata as m
    return {k: m.version(k) for k in EXPECTED_VERSIONS}


# ----------------------------------------------------------------------------------------------
# data

def read_idx(path):
    import numpy as np
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} bytes for dims {dims}")
    return arr.reshape(dims)


def load_fashion_mnist():
    """(train_x, train_y, test_x, test_y): x float32 [N,28,28] = pixels / 255, y int64 [N]."""
    import numpy as np
    out = []
    for split, n in (("train", 60000), ("t10k", 10000)):
        images = read_idx(f"{DATA_DIR}/{split}-images-idx3-ubyte.gz")
        labels = read_idx(f"{DATA_DIR}/{split}-labels-idx1-ubyte.gz")
        assert images.shape == (n, 28, 28) and labels.shape == (n,), (images.shape, labels.shape)
        out += [images.astype(np.float32) / np.float32(255), labels.astype(np.int64)]
    return out


# ----------------------------------------------------------------------------------------------
# ONNX helpers

def graph_report(model):
    """Op counts and the facts about how the exporter wrote the graph that an importer cares about."""
    g = model.graph
    producers = {o: n for n in g.node for o in n.output}
    inits = {i.name for i in g.initializer}

    def source(name):
        if name == "":
            return "absent"
        if name in inits:
            return "initializer"
        if name in producers:
            return producers[name].op_type
        return "graph input"

    ops = collections.Counter(n.op_type for n in g.node)
    domains = sorted({n.domain or "ai.onnx" for n in g.node})
    pads = []
    for n in g.node:
        if n.op_type == "Pad":
            mode = next((a.s.decode() for a in n.attribute if a.name == "mode"), "constant")
            pads.append({"node": n.name, "mode": mode, "pads_from": source(n.input[1])})
    conv_pads = []
    for n in g.node:
        if n.op_type in ("Conv", "MaxPool", "AveragePool"):
            attrs = {a.name: list(a.ints) if a.ints else (a.i if a.type == 2 else a.s.decode() if a.s else None)
                     for a in n.attribute}
            p = attrs.get("pads")
            if p and (p[:len(p) // 2] != p[len(p) // 2:]):
                conv_pads.append({"node": n.name, "op": n.op_type, "pads": p})
            if attrs.get("auto_pad") not in (None, "NOTSET"):
                conv_pads.append({"node": n.name, "op": n.op_type, "auto_pad": attrs["auto_pad"]})
    reshapes = collections.Counter(source(n.input[1]) for n in g.node if n.op_type == "Reshape")
    clips = collections.Counter(
        ("attributes" if any(a.name in ("min", "max") for a in n.attribute) else
         "inputs from " + "/".join(source(i) for i in n.input[1:]))
        for n in g.node if n.op_type == "Clip")
    identities = [{"output": n.output[0], "input": n.input[0], "input_from": source(n.input[0])}
                  for n in g.node if n.op_type == "Identity"]
    notes = {
        "node_count": len(g.node),
        "initializer_count": len(g.initializer),
        "initializer_elements": int(sum(_numel(i.dims) for i in g.initializer)),
        "constant_node_count": ops.get("Constant", 0),
        "domains": domains,
        "batchnorm_nodes": ops.get("BatchNormalization", 0),
        "pad_nodes": pads,
        "asymmetric_or_auto_pads": conv_pads,
        "reshape_shape_inputs_from": dict(sorted(reshapes.items())),
        "clip_min_max_from": dict(sorted(clips.items())),
        "identity_nodes": identities,
        "input_dims": [_dims(i) for i in g.input if i.name not in inits],
        "output_dims": [_dims(o) for o in g.output],
        "ir_version": model.ir_version,
        "opset_imports": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
    }
    return dict(sorted(ops.items())), notes


def _numel(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def _dims(value_info):
    t = value_info.type.tensor_type
    return {"name": value_info.name,
            "dims": [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]}


def check_onnx(path, require_batchnorm):
    import onnx
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path)
    ops, notes = graph_report(model)
    if require_batchnorm and ops.get("BatchNormalization", 0) == 0:
        raise SystemExit(f"{path}: the exporter folded every BatchNormalization into a Conv "
                         f"(ops {ops}); this fixture must keep them")
    return model, ops, notes


def ort_session(path):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_run(session, x, batch=500):
    import numpy as np
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def write_expected(name, path, *, framework, layout, input_shape, output_is_softmax, param_count,
                   non_trainable_count, train, framework_outputs_all, test_x_layout, test_y,
                   require_batchnorm, exporter, framework_layers, extra=None):
    """Checks the exported file, runs it in ONNX Runtime and writes NAME.expected.json."""
    import numpy as np
    model, ops, notes = check_onnx(path, require_batchnorm)
    session = ort_session(path)
    ort_out = ort_run(session, test_x_layout)
    fw_acc = float((framework_outputs_all.argmax(axis=1) == test_y).mean())
    ort_acc = float((ort_out.argmax(axis=1) == test_y).mean())
    first = ort_out[:FIRST].astype(np.float32)
    diff = float(np.abs(framework_outputs_all[:FIRST].astype(np.float64) - first.astype(np.float64)).max())
    diff_all = float(np.abs(framework_outputs_all.astype(np.float64) - ort_out.astype(np.float64)).max())
    pred_agree = int((framework_outputs_all.argmax(axis=1) == ort_out.argmax(axis=1)).sum())
    first_u8 = np.round(test_x_layout[:FIRST] * 255).astype(np.uint8)
    expected = {
        "name": name,
        "file": os.path.basename(path),
        "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "size_bytes": os.path.getsize(path),
        "framework": framework,
        "exporter": exporter,
        "opset": OPSET,
        "input_name": session.get_inputs()[0].name,
        "input_layout": layout,
        "input_shape": input_shape,
        "output_name": session.get_outputs()[0].name,
        "output_is_softmax": output_is_softmax,
        "preprocessing": "pixels / 255",
        "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist, " + DATA_DIR + "), test split t10k",
        "class_names": CLASS_NAMES,
        "param_count": param_count,
        "param_count_means": "trainable parameters (BatchNorm scale and shift included); "
                             "non_trainable_count is the BatchNorm running mean and variance",
        "non_trainable_count": non_trainable_count,
        "framework_layers": framework_layers,
        "train": train,
        "framework_test_accuracy": fw_acc,
        "onnxruntime_test_accuracy": ort_acc,
        "onnxruntime_version": package_versions()["onnxruntime"],
        "test_images": int(len(test_y)),
        "argmax_agreement_framework_vs_onnxruntime": pred_agree,
        "first_count": FIRST,
        "first_images_sha256": hashlib.sha256(first_u8.tobytes()).hexdigest(),
        "first_images_sha256_of": f"the first {FIRST} t10k images, 784 uint8 pixels each, row-major, "
                                  "exactly the bytes after the IDX header (one channel, so NCHW and "
                                  "NHWC give the same bytes)",
        "first_outputs": [[float(v) for v in row] for row in first],
        "first_labels": [int(v) for v in test_y[:FIRST]],
        "max_abs_diff_framework_vs_onnxruntime": diff,
        "max_abs_diff_framework_vs_onnxruntime_all_test": diff_all,
        "ops": ops,
        "graph": notes,
        "versions": package_versions(),
    }
    if extra:
        expected.update(extra)
    with open(os.path.join(OUT_DIR, name + ".expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"   {name}: params {param_count}, framework acc {fw_acc:.4f}, ORT acc {ort_acc:.4f}, "
          f"max diff {diff:.3g}, {os.path.getsize(path)} bytes", flush=True)
    print(f"   ops {ops}", flush=True)
    return expected


# ----------------------------------------------------------------------------------------------
# PyTorch models

def torch_models():
    import torch
    from torch import nn
    import torch.nn.functional as F

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = None
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            identity = x if self.shortcut is None else self.shortcut(x)
            return F.relu(out + identity)

    class ResNet(nn.Module):
        """stem conv3x3 1->16 (no bias) + BN + ReLU @28; basic blocks (conv3x3+BN+ReLU, conv3x3+BN,
        + shortcut, ReLU): 16->16 identity shortcut @28, 16->32 stride 2 with conv1x1 stride 2 + BN
        projection shortcut @14, 32->64 the same @7; AdaptiveAvgPool2d(1); flatten; Linear 64->10."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            self.layer1 = BasicBlock(16, 16, 1)
            self.layer2 = BasicBlock(16, 32, 2)
            self.layer3 = BasicBlock(32, 64, 2)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.layer3(self.layer2(self.layer1(self.stem(x))))
            return self.fc(torch.flatten(self.pool(x), 1))

    def conv_bn(cin, cout, k, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU6())
        return nn.Sequential(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            self.use_res = stride == 1 and cin == cout
            self.block = nn.Sequential(
                conv_bn(cin, hidden, 1),                          # 1x1 expand + BN + ReLU6
                conv_bn(hidden, hidden, 3, stride, groups=hidden),  # 3x3 depthwise + BN + ReLU6
                conv_bn(hidden, cout, 1, act=False),              # 1x1 project + BN (linear)
            )

        def forward(self, x):
            return x + self.block(x) if self.use_res else self.block(x)

    class MobileNetV2(nn.Module):
        """stem 1->16 s1; IR 16->16 s1 (Add); IR 16->24 s2; IR 24->24 s1 (Add); IR 24->48 s2;
        1x1 48->512 + BN + ReLU6; global average pool; Dropout(0.2); Linear 512->10. Expansion 6."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                conv_bn(1, 16, 3),
                InvertedResidual(16, 16, 1, 6),
                InvertedResidual(16, 24, 2, 6),
                InvertedResidual(24, 24, 1, 6),
                InvertedResidual(24, 48, 2, 6),
                conv_bn(48, 512, 1),
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(512, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    class SqueezeExcite(nn.Module):
        def __init__(self, c, r):
            super().__init__()
            self.fc1 = nn.Conv2d(c, c // r, 1)
            self.fc2 = nn.Conv2d(c // r, c, 1)

        def forward(self, x):
            s = F.adaptive_avg_pool2d(x, 1)
            s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
            return x * s

    def channel_shuffle(x, groups):
        # the ShuffleNet way, sizes read from the tensor (as torchvision's shufflenet does)
        n, c, h, w = x.size()
        x = x.view(n, groups, c // groups, h, w)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(n, c, h, w)

    class OpMix(nn.Module):
        """conv 1->32 + Hardswish @28; MaxPool(3,2,1) @14; squeeze-excite (GAP, 1x1, ReLU, 1x1,
        Hardsigmoid, Mul); chunk in two halves, conv3x3 + LeakyReLU(0.1) on the second, cat;
        channel shuffle (g=2); ZeroPad2d((0,1,0,1)) then conv3x3 stride 2 32->64 @7; x*sigmoid(x);
        conv3x3 64->64 + Hardswish; AvgPool(3,2,1,count_include_pad=False) @4; Dropout(0.25);
        flatten (C*H*W = 64*4*4) ; Linear 1024->10."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 32, 3, 1, 1)
            self.act = nn.Hardswish()
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self.se = SqueezeExcite(32, 4)
            self.half_conv = nn.Conv2d(16, 16, 3, 1, 1)
            self.leaky = nn.LeakyReLU(0.1)
            self.pad = nn.ZeroPad2d((0, 1, 0, 1))
            self.down = nn.Conv2d(32, 64, 3, stride=2, padding=0)
            self.conv = nn.Conv2d(64, 64, 3, 1, 1)
            self.avgpool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
            self.dropout = nn.Dropout(0.25)
            self.fc = nn.Linear(64 * 4 * 4, 10)

        def forward(self, x):
            x = self.maxpool(self.act(self.stem(x)))
            x = self.se(x)
            a, b = torch.chunk(x, 2, dim=1)
            x = torch.cat([a, self.leaky(self.half_conv(b))], dim=1)
            x = channel_shuffle(x, 2)
            x = self.down(self.pad(x))
            x = x * torch.sigmoid(x)
            x = self.act(self.conv(x))
            x = self.dropout(self.avgpool(x))
            return self.fc(torch.flatten(x, 1))

    class WithSoftmax(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.softmax(self.net(x), dim=1)

    return {"ResNet": ResNet, "MobileNetV2": MobileNetV2, "OpMix": OpMix, "WithSoftmax": WithSoftmax}


def make_torch_fixture(name, net, data, *, epochs, batch, lr, softmax_wrapper=None, keep_bn):
    import numpy as np
    import torch
    train_x, train_y, test_x, test_y = data
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    xs = torch.from_numpy(train_x).unsqueeze(1)
    ys = torch.from_numpy(train_y)
    test = torch.from_numpy(test_x).unsqueeze(1)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    start = time.time()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(xs), generator=gen)
        total = 0.0
        for i in range(0, len(xs), batch):
            idx = perm[i:i + batch]
            optimizer.zero_grad()
            loss = loss_fn(net(xs[idx]), ys[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        print(f"   {name} epoch {epoch + 1}/{epochs}: train loss {total / len(xs):.4f} "
              f"({time.time() - start:.0f} s)", flush=True)
    print(f"   {name}: trained in {time.time() - start:.0f} s", flush=True)

    net.eval()
    exported = softmax_wrapper(net).eval() if softmax_wrapper else net
    with torch.no_grad():
        outputs = torch.cat([exported(test[i:i + 1000]) for i in range(0, len(test), 1000)]).numpy()

    path = os.path.join(OUT_DIR, name + ".onnx")
    output_name = "probabilities" if softmax_wrapper else "logits"
    # The TorchScript-based exporter (dynamo=False). In TrainingMode.EVAL it runs the eval
    # peephole pass, which folds every BatchNormalization into the Conv before it; PRESERVE
    # exports the module in the mode it is in (eval here), skips that pass and keeps the
    # BatchNormalization nodes (inference form, one output, running statistics as inputs).
    torch.onnx.export(
        exported, (test[:2],), path,
        dynamo=False,
        opset_version=OPSET,
        input_names=["input"], output_names=[output_name],
        dynamic_axes={"input": {0: "N"}, output_name: {0: "N"}},
        training=torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL,
        do_constant_folding=True,
    )
    param_count = sum(p.numel() for p in net.parameters())
    buffers = sum(b.numel() for n, b in net.named_buffers() if not n.endswith("num_batches_tracked"))
    return write_expected(
        name, path,
        framework=f"pytorch {torch.__version__}",
        layout="NCHW", input_shape=[1, 28, 28],
        output_is_softmax=softmax_wrapper is not None,
        param_count=int(param_count), non_trainable_count=int(buffers),
        train={"epochs": epochs, "batch": batch, "optimizer": "Adam (torch defaults, no weight decay)",
               "lr": lr, "seed": SEED, "loss": "cross-entropy on logits", "shuffle": "torch.randperm per epoch",
               "augmentation": "none", "threads": THREADS},
        framework_outputs_all=outputs, test_x_layout=test.numpy(), test_y=test_y,
        require_batchnorm=keep_bn,
        exporter="torch.onnx.export(dynamo=False, training=" +
                 ("TrainingMode.PRESERVE" if keep_bn else "TrainingMode.EVAL") +
                 f", do_constant_folding=True, opset_version={OPSET}), model in eval mode, "
                 "dynamic batch axis 'N'",
        framework_layers=dict(sorted(collections.Counter(
            type(m).__name__ for m in exported.modules() if not list(m.children())).items())),
        extra={"architecture": " ".join(type(net).__doc__.split()),
               "output_activation": "softmax(logits, dim=1) from an export wrapper; trained on the logits"
               if softmax_wrapper else "none (the last Linear: logits)"},
    )


# ----------------------------------------------------------------------------------------------
# Keras model

def make_keras_fixture(name, data, *, epochs, batch, lr):
    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    import keras
    from keras import layers
    import tf2onnx
    train_x, train_y, test_x, test_y = data
    keras.utils.set_random_seed(SEED)

    inp = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv")(inp)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    a = layers.Conv2D(16, 1, activation="relu", name="branch_a_1x1")(x)
    b = layers.Conv2D(16, 1, name="branch_b_1x1")(x)
    b = layers.Conv2D(32, 3, padding="same", activation="relu", name="branch_b_3x3")(b)
    c = layers.MaxPooling2D(3, strides=1, padding="same", name="branch_c_pool")(x)
    c = layers.Conv2D(16, 1, name="branch_c_1x1")(c)
    x = layers.Concatenate(axis=-1, name="concat")([a, b, c])
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    out = layers.Dense(10, name="logits")(x)
    model = keras.Model(inp, out, name="keras_concat")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    xs = train_x[..., None]
    test = test_x[..., None]
    start = time.time()
    model.fit(xs, train_y, batch_size=batch, epochs=epochs, shuffle=True, verbose=2)
    print(f"   {name}: trained in {time.time() - start:.0f} s", flush=True)
    outputs = model.predict(test, batch_size=1000, verbose=0)

    path = os.path.join(OUT_DIR, name + ".onnx")
    spec = (tf.TensorSpec((None, 28, 28, 1), tf.float32, name="image"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET, output_path=path)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return write_expected(
        name, path,
        framework=f"tensorflow {tf.__version__} / keras {keras.__version__}",
        layout="NHWC", input_shape=[28, 28, 1],
        output_is_softmax=False,
        param_count=trainable, non_trainable_count=non_trainable,
        train={"epochs": epochs, "batch": batch, "optimizer": "Adam (keras defaults)", "lr": lr,
               "seed": SEED, "loss": "sparse categorical cross-entropy from logits",
               "shuffle": "keras fit shuffle=True", "augmentation": "none", "threads": THREADS},
        framework_outputs_all=outputs, test_x_layout=test, test_y=test_y,
        require_batchnorm=False,
        exporter=f"tf2onnx {tf2onnx.__version__} convert.from_keras(opset={OPSET}, "
                 "input_signature=(TensorSpec((None,28,28,1), float32, name='image'),))",
        framework_layers=dict(sorted(collections.Counter(
            type(layer).__name__ for layer in model.layers).items())),
        extra={"architecture": "conv3x3 1->32 same + ReLU @28; MaxPool 2 @14; inception block: "
                               "A conv1x1 32->16 + ReLU, B conv1x1 32->16 -> conv3x3 16->32 same + ReLU, "
                               "C MaxPool 3x3 stride 1 same -> conv1x1 32->16; Concatenate channels "
                               "(A,B,C = 64); BatchNormalization; MaxPool 2 @7; Flatten (H,W,C order, "
                               "3136); Dense 64 ReLU; Dense 10",
               "output_activation": "none (the last Dense layer has no activation: logits)"},
    )


# ----------------------------------------------------------------------------------------------

FIXTURES = ["torch_resnet", "torch_mobilenetv2", "keras_concat", "torch_opmix"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", action="append", choices=FIXTURES, help="make only this fixture (repeatable)")
    args = p.parse_args()
    limit_threads()
    ensure_venv(os.path.abspath(__file__), sys.argv[1:])

    os.makedirs(OUT_DIR, exist_ok=True)
    t0 = time.time()
    data = load_fashion_mnist()
    print(f"== Fashion-MNIST: {len(data[0])} train, {len(data[2])} test; versions {package_versions()}", flush=True)
    wanted = args.only or FIXTURES
    torch_fixtures = [n for n in wanted if n.startswith("torch_")]
    if torch_fixtures:
        import torch
        torch.set_num_threads(THREADS)
        torch.set_num_interop_threads(THREADS)
        models = torch_models()
    for name in wanted:
        print(f"== {name}", flush=True)
        start = time.time()
        if name == "torch_resnet":
            torch.manual_seed(SEED)
            make_torch_fixture(name, models["ResNet"](), data, epochs=2, batch=128, lr=2e-3, keep_bn=True)
        elif name == "torch_mobilenetv2":
            torch.manual_seed(SEED)
            make_torch_fixture(name, models["MobileNetV2"](), data, epochs=1, batch=128, lr=2e-3, keep_bn=True)
        elif name == "torch_opmix":
            torch.manual_seed(SEED)
            make_torch_fixture(name, models["OpMix"](), data, epochs=2, batch=128, lr=2e-3,
                               softmax_wrapper=models["WithSoftmax"], keep_bn=False)
        elif name == "keras_concat":
            make_keras_fixture(name, data, epochs=2, batch=128, lr=1e-3)
        print(f"   ({time.time() - start:.0f} s)", flush=True)
    print(f"== done in {time.time() - t0:.0f} s; wrote {OUT_DIR}", flush=True)


if __name__ == "__main__":
    main()
