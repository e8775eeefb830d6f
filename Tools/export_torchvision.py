#!/usr/bin/env python3
"""Export every torchvision classification architecture to ONNX, to see what an importer meets.

    python Tools/export_torchvision.py [OUT_DIR] [--only NAME ...] [--timeout 300]

(--only re-exports those models and updates their entries in an existing OUT_DIR/manifest.json.)

OUT_DIR defaults to .build/torchvision-onnx/ (not committed). Runs in the same pinned venv as
Tools/make_onnx_fixtures.py (.build/fixture-env; see that script's header for the pip command),
making it first if needed.

For each name in torchvision.models.list_models(module=torchvision.models) (the classification
models only; detection, segmentation, video, optical flow and quantized models live in
submodules): build it with weights=None (random, seeded, nothing downloaded) and num_classes=10;
give all-zero weight tensors small random values and BatchNorm random scale/shift and running
statistics measured on random inputs (see make_outputs_informative: a fresh torchvision model's
output is otherwise all zeros for ViT, ~1e11 for inception_v3, and blind to BatchNorm); eval mode, input NCHW [1,3,64,64] (a model that fails to run or to export at 64x64 is tried at
224x224, and the size and the errors are recorded); export with the TorchScript exporter (torch.onnx.export(dynamo=False),
default TrainingMode.EVAL, so BatchNormalization is folded into the Conv before it, fixed
shapes) at opset 13, or at 17 when 13 fails; run the file in ONNX Runtime on a seeded random
input, saved as NAME.input.npy with the output as NAME.output.npy. Each model runs in its own
process with a time limit, so a hang or a crash is recorded as a failure and the run goes on.

Writes OUT_DIR/manifest.json and prints "N exported of M" and the op types seen, by how many
models use each.
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_onnx_fixtures as fx  # noqa: E402  (venv bootstrap, thread limits, graph report)

DEFAULT_OUT = os.path.join(fx.REPO, ".build", "torchvision-onnx")
SIZES = (64, 224)
OPSETS = (13, 17)
SEED = 0
CALIBRATION_BATCHES = 2  # the docstring of make_outputs_informative says these numbers
CALIBRATION_BATCH = 8


def make_outputs_informative(model, size):
    """torchvision's own initialisation leaves a fresh model whose eval-mode output says little:
    every BatchNorm has running mean 0 / variance 1 / scale 1 / shift 0 (nearly the identity, so
    an importer that dropped BatchNorm would still match; deep nets without residuals, e.g.
    inception_v3, reach outputs of 1e11), and some layers start at exactly zero (the ViT head, so
    the output is all zeros). So, seeded: every weight tensor that is all zeros gets N(0, 0.02);
    every BatchNorm's scale and shift get U(0.5, 1.5) and N(0, 0.1); then the running statistics
    are measured on 2 train-mode forward passes of 8 random N(0,1) inputs at the export size
    (cumulative average, no gradients, no other change; auxiliary classifiers off meanwhile).
    Returns what was changed."""
    import torch
    gen = torch.Generator().manual_seed(SEED + 1)
    changed = {"zero_tensors_reinitialized": [], "batchnorm_layers_recalibrated": 0}
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if param.dim() >= 2 and not param.any():
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)
                changed["zero_tensors_reinitialized"].append(pname)
        bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for bn in bns:
            if bn.affine:
                bn.weight.copy_(torch.rand(bn.weight.shape, generator=gen) + 0.5)
                bn.bias.copy_(torch.randn(bn.bias.shape, generator=gen) * 0.1)
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration passes
        if bns:
            # auxiliary classifiers (googlenet aux1/aux2, inception_v3 AuxLogits, which needs
            # 299x299) run only in train mode and are not exported: off while calibrating
            aux = {a: getattr(model, a) for a in ("aux1", "aux2", "AuxLogits") if getattr(model, a, None) is not None}
            for a in aux:
                setattr(model, a, None)
            model.train()
            for _ in range(CALIBRATION_BATCHES):
                model(torch.randn((CALIBRATION_BATCH, 3, size, size), generator=gen))
            model.eval()
            for a, module in aux.items():
                setattr(model, a, module)
            for bn in bns:
                bn.momentum = 0.1
        changed["batchnorm_layers_recalibrated"] = len(bns)
    return changed


def _first_line(text):
    return text.strip().splitlines()[0] if text.strip() else text


def worker(name, out):
    """Builds, exports and runs one model; writes OUT/NAME.result.json."""
    import numpy as np
    import onnx
    import torch
    import torchvision
    torch.set_num_threads(fx.THREADS)
    result = {"name": name, "export_ok": False}
    t0 = time.time()
    errors = {}
    result["errors"] = errors
    path = os.path.join(out, name + ".onnx")
    # The exporter writes a model over 2 GB with one external-data file per tensor, named after
    # the tensor, beside the .onnx; it exports into a folder of its own and is then saved as
    # NAME.onnx + NAME.onnx.data so that models cannot overwrite each other's tensors.
    staging = os.path.join(out, f".staging-{name}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    staged = os.path.join(staging, name + ".onnx")
    for old in (path, path + ".data"):
        if os.path.exists(old):
            os.remove(old)
    try:
        x = None
        for size in SIZES:  # a model that fails to run or to export at 64x64 is tried at 224x224
            torch.manual_seed(SEED)
            model = torchvision.models.get_model(name, weights=None, num_classes=10).eval()
            result["param_count"] = int(sum(p.numel() for p in model.parameters()))
            candidate = torch.from_numpy(
                np.random.default_rng(SEED).standard_normal((1, 3, size, size)).astype(np.float32))
            try:
                with torch.no_grad():
                    model(candidate)
            except Exception as e:  # noqa: BLE001 (recorded, next size tried)
                errors[f"forward_{size}"] = f"{type(e).__name__}: {e}"[:1000]
                continue
            result["weights_adjusted"] = make_outputs_informative(model, size)
            with torch.no_grad():
                expected = model(candidate)
            for opset in OPSETS:
                try:
                    torch.onnx.export(model, (candidate,), staged, dynamo=False, opset_version=opset,
                                      input_names=["input"], output_names=["logits"])
                    result["opset"] = opset
                    break
                except Exception as e:  # noqa: BLE001 (recorded, next opset tried)
                    errors[f"export_{size}_opset_{opset}"] = f"{type(e).__name__}: {e}"[:1000]
            if "opset" in result:
                x = candidate
                break
        if x is None:
            raise RuntimeError(f"no size in {SIZES} and opset in {OPSETS} works: " +
                               "; ".join(f"{k}: {_first_line(v)}" for k, v in errors.items()))
        result["input_shape"] = list(x.shape)
        if x.shape[-1] != SIZES[0]:
            result["input_size_note"] = f"fails at {SIZES[0]}x{SIZES[0]}, see errors"
        result["file"] = os.path.basename(path)
        result["export_seconds"] = round(time.time() - t0, 1)
        model_proto = onnx.load(staged, load_external_data=False)
        external = any(i.data_location == onnx.TensorProto.EXTERNAL for i in model_proto.graph.initializer)
        if external:
            full = onnx.load(staged)
            onnx.save_model(full, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=name + ".onnx.data", size_threshold=1024)
            del full
            result["external_data_file"] = name + ".onnx.data"
        else:
            shutil.move(staged, path)
        shutil.rmtree(staging, ignore_errors=True)
        model_proto = onnx.load(path, load_external_data=False)
        result["size_bytes"] = os.path.getsize(path) + (
            os.path.getsize(path + ".data") if external else 0)
        try:
            onnx.checker.check_model(path, full_check=True)
            result["onnx_checker"] = "ok"
        except Exception as e:  # noqa: BLE001
            result["onnx_checker"] = f"{type(e).__name__}: {e}"[:500]
        ops, notes = fx.graph_report(model_proto)
        result["ops"] = ops
        result["graph"] = {k: notes[k] for k in ("node_count", "initializer_count", "constant_node_count",
                                                  "batchnorm_nodes", "pad_nodes", "asymmetric_or_auto_pads",
                                                  "reshape_shape_inputs_from", "opset_imports", "domains")}
        result["graph"]["identity_nodes"] = len(notes["identity_nodes"])
        session = fx.ort_session(path)
        inp = x.numpy()
        got = session.run(None, {session.get_inputs()[0].name: inp})[0]
        np.save(os.path.join(out, name + ".input.npy"), inp)
        np.save(os.path.join(out, name + ".output.npy"), got)
        result["output_shape"] = list(got.shape)
        result["max_abs_diff_torch_vs_onnxruntime"] = float(np.abs(got - expected.numpy()).max())
        result["max_abs_torch_output"] = float(np.abs(expected.numpy()).max())
        result["max_rel_diff_torch_vs_onnxruntime"] = (
            result["max_abs_diff_torch_vs_onnxruntime"] / max(result["max_abs_torch_output"], 1e-30))
        result["export_ok"] = True
    except Exception as e:  # noqa: BLE001
        result["error"] = f"{type(e).__name__}: {e}"[:2000]
        result["traceback"] = traceback.format_exc()[-3000:]
    shutil.rmtree(staging, ignore_errors=True)
    result["errors"] = errors or None
    result["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(out, name + ".result.json"), "w") as f:
        json.dump(result, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", default=DEFAULT_OUT)
    p.add_argument("--only", action="append", help="export only this model (repeatable)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per model before it counts as failed")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    fx.limit_threads()
    fx.ensure_venv(os.path.abspath(__file__), sys.argv[1:])
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    if args.worker:
        worker(args.worker, out)
        return

    import torchvision
    names = torchvision.models.list_models(module=torchvision.models)
    total = len(names)
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            sys.exit(f"not torchvision classification models: {unknown}")
        names = [n for n in names if n in args.only]
    print(f"== torchvision {torchvision.__version__}: {total} classification models; exporting "
          f"{len(names)} to {out}", flush=True)
    results = []
    t0 = time.time()
    for i, name in enumerate(names, 1):
        result_path = os.path.join(out, name + ".result.json")
        if os.path.exists(result_path):
            os.remove(result_path)
        start = time.time()
        try:
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), out, "--worker", name],
                                  capture_output=True, text=True, timeout=args.timeout)
            if os.path.exists(result_path):
                with open(result_path) as f:
                    result = json.load(f)
                os.remove(result_path)
            else:
                result = {"name": name, "export_ok": False,
                          "error": f"worker exited with code {proc.returncode} and wrote no result: "
                                   f"{proc.stderr[-1500:]}"}
        except subprocess.TimeoutExpired:
            result = {"name": name, "export_ok": False,
                      "error": f"timed out after {args.timeout:.0f} s (build, export or ONNX Runtime run)"}
        result.setdefault("seconds", round(time.time() - start, 1))
        results.append(result)
        status = (f"ok opset {result['opset']} input {result['input_shape']} "
                  f"{result['param_count']:,} params, |out| {result['max_abs_torch_output']:.3g}, "
                  f"diff {result['max_abs_diff_torch_vs_onnxruntime']:.2g}"
                  if result["export_ok"] else "FAILED " + result["error"].splitlines()[0][:200])
        print(f"[{i}/{len(names)}] {name}: {status} ({time.time() - start:.0f} s)", flush=True)

    manifest_path = os.path.join(out, "manifest.json")
    if args.only and os.path.exists(manifest_path):
        # a partial run updates those models' entries in the manifest of an earlier full run
        with open(manifest_path) as f:
            previous = {r["name"]: r for r in json.load(f)["models"]}
        previous.update({r["name"]: r for r in results})
        results = [previous[n] for n in torchvision.models.list_models(module=torchvision.models)
                   if n in previous]
        print(f"== merged into {manifest_path}: {len(results)} models", flush=True)
    ok = [r for r in results if r["export_ok"]]
    usage = collections.Counter(op for r in ok for op in r["ops"])
    nodes = collections.Counter()
    for r in ok:
        nodes.update(r["ops"])
    op_types = [{"op": op, "models": n, "nodes": nodes[op]}
                for op, n in sorted(usage.items(), key=lambda kv: (-kv[1], kv[0]))]
    import importlib.metadata as m
    manifest = {
        "torchvision": m.version("torchvision"),
        "torch": m.version("torch"),
        "onnx": m.version("onnx"),
        "onnxruntime": m.version("onnxruntime"),
        "exporter": "torch.onnx.export(dynamo=False) (TorchScript-based), TrainingMode.EVAL "
                    "(BatchNormalization folded into Conv), constant folding on, fixed input shape",
        "weights": f"random (weights=None), torch.manual_seed({SEED}) before each model is built; "
                   "then " + " ".join(make_outputs_informative.__doc__.split("So, seeded: ")[1].split("Returns")[0].split()),
        "input": f"numpy.random.default_rng({SEED}).standard_normal((1, 3, S, S)), float32; S = 64, "
                 "or 224 for a model that fails to run or to export at 64",
        "models_total": total,
        "models_tried": len(results),
        "exported": len(ok),
        "failed": [{"name": r["name"], "error": r["error"]} for r in results if not r["export_ok"]],
        "op_types": op_types,
        "seconds_this_run": round(time.time() - t0, 1),
        "models": results,
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"== {len(ok)} exported of {len(results)} (torchvision {m.version('torchvision')} lists "
          f"{total} classification models); {time.time() - t0:.0f} s; manifest {out}/manifest.json")
    print("== op types (models using it, nodes in all): " +
          ", ".join(f"{o['op']} {o['models']}/{o['nodes']}" for o in op_types))


if __name__ == "__main__":
    main()
