"""ONNX Runtime on the pruned torchvision models that `ecbench --mode torchvision` wrote.

`ecbench --mode torchvision --dir EXPORTED --out PRUNED` prunes 30% of each imported torchvision
architecture's parameters, extracts the smaller model and writes PRUNED/NAME-pruned30.onnx with
PRUNED/NAME-pruned30.io.safetensors (the NCHW input and the engine's output) and
PRUNED/report.json. This script checks each file with onnx's checker, runs it in ONNX Runtime on
that input, compares with the engine's output, and prints the table of docs/benchmarks.md
("Prunability across torchvision"):

    python Tools/torchvision_check.py PRUNED [--tolerance 1e-3]

A row passes when the file checks, ONNX Runtime runs it, and the largest difference is within
`tolerance` of the output's largest magnitude. Writes PRUNED/ort.json; exits 0.
"""
import argparse
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file


def check(path, io_path, tolerance):
    """(ok, relative difference or None, reason) for one pruned file."""
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as e:  # the checker's own message names the problem
        return False, None, f"onnx.checker: {str(e).splitlines()[0][:120]}"
    io = load_file(io_path)
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        shape = session.get_inputs()[0].shape
        x = io["input"]
        if len(shape) == 4 and shape[1] == x.shape[3] and shape[1] != x.shape[1]:
            x = x.transpose(0, 2, 3, 1)  # a channels-last interface
        y = session.run(None, {name: x})[0]
    except Exception as e:
        return False, None, f"ONNX Runtime: {str(e).splitlines()[0][:120]}"
    expected = io["output"]
    if y.shape != expected.shape:
        return False, None, f"output shape {list(y.shape)} vs the engine's {list(expected.shape)}"
    scale = max(1e-6, float(np.abs(expected).max()))
    rel = float(np.abs(y - expected).max()) / scale
    return rel <= tolerance, rel, "" if rel <= tolerance else f"differs from the engine by {rel:.2e} (relative)"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--tolerance", type=float, default=1e-3)
    a = p.parse_args()
    with open(os.path.join(a.dir, "report.json")) as f:
        rows = json.load(f)
    results = []
    print("| model | params | after 30% | import | output = ORT | train step | extracted = masked | ORT runs pruned | note |")
    print("|---|---:|---:|:-:|:-:|:-:|:-:|:-:|---|")
    for row in rows:
        name = row["name"]
        ort_ok, rel, reason = False, None, ""
        if row.get("prunedFile"):
            base = os.path.join(a.dir, row["prunedFile"])
            ort_ok, rel, reason = check(base, base.replace(".onnx", ".io.safetensors"), a.tolerance)
        note = (row.get("importError") or row.get("trainError") or row.get("pruneError") or reason or "")
        note = note.split(": ", 1)[-1] if note.startswith(name) else note
        mark = lambda b: "✓" if b else "✗"
        params = row.get("params")
        after = row.get("prunedParams")
        print(f"| {name} | {params if params is not None else '–'} | "
              f"{f'{after} ({after / params:.0%})' if after and params else '–'} | {mark(row['imported'])} | "
              f"{mark(row['matches'])} | {mark(row['trainStep'])} | {mark(row['pruned'])} | {mark(ort_ok)} | "
              f"{note[:110].replace('|', '/')} |", flush=True)
        results.append({"name": name, "ort_ok": ort_ok, "ort_relative_difference": rel, "reason": reason})
    imported = [r for r in rows if r["imported"]]
    complete = [r for r, o in zip(rows, results) if r["pruned"] and o["ort_ok"]]
    print(f"\nRESULT exported={len(rows)} imported={len(imported)} "
          f"pruned_extracted_ort={len(complete)} share_of_imported={len(complete) / max(1, len(imported)):.3f}")
    with open(os.path.join(a.dir, "ort.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
