#!/usr/bin/env python3
"""Fits the α–β + compute model of docs/scaling.md to `launch/bench scale`'s measurements
(.build/scale/results.tsv) and projects it to 8–64 nodes. Standard library only.

Model (S = gradient bytes, n = hosts):
  allreduce   A(n, m) = 2(n−1)·α + 2(n−1)/n · m/B         ring (reduce-scatter + all-gather);
                                                           α, B per link
  compute     C(n)    = C1 · (1 + σ·(n−1))                 C1: the 1-host step; σ per model: what
                                                           each further host costs the others
                                                           here, where all hosts share 2 cores
                                                           (on real nodes σ = 0)
  blocking    T_b(n)  = C(n) + A(n, S)
  overlapped  T_o(n)  = C(n) + max(0, A(n, S) − h·C(n))    h per model: the share of a step the
                                                           buckets' sums hide behind (backward
                                                           once the first bucket is ready)
α and 1/B: least squares (relative error) on the allreduce-alone probes of 2 and 4 hosts
(1 KiB, 1 MiB, the whole gradient). σ: linear least squares (relative error) on the blocking
steps; h: grid search on the overlapped steps. Fitted twice: on every measurement (in-sample
errors), and on 1 and 2 hosts only (then the 4-host steps are predictions: out-of-sample errors).
Projections use σ = 0 (nodes with their own cores) and the fitted h.
"""
import argparse
import csv
import sys

NODES = [1, 2, 4, 8, 16, 32, 64]


def ring(n):
    return 2.0 * (n - 1), 2.0 * (n - 1) / n


def fit_alpha_beta(probes):
    """probes: [(n, bytes, seconds)] → (alpha s, seconds per byte), least squares on relative error."""
    # minimise Σ ((a·x + b·y − t) / t)² over x=α, y=1/B, both ≥ 0
    s11 = s12 = s22 = r1 = r2 = 0.0
    for n, m, t in probes:
        a, b = ring(n)
        a, b, w = a / t, b * m / t, 1.0
        s11 += a * a; s12 += a * b; s22 += b * b; r1 += a * w; r2 += b * w
    det = s11 * s22 - s12 * s12
    alpha = (r1 * s22 - r2 * s12) / det
    inv_b = (s11 * r2 - s12 * r1) / det
    if alpha < 0:
        alpha, inv_b = 0.0, r2 / s22
    if inv_b < 0:
        alpha, inv_b = r1 / s11, 0.0
    return alpha, inv_b


def solve(a, b):
    """Gaussian elimination with partial pivoting (a small dense system)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda i: abs(m[i][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-15:
            continue
        for i in range(n):
            if i != c:
                f = m[i][c] / m[c][c]
                for j in range(c, n + 1):
                    m[i][j] -= f * m[c][j]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-15 else 0.0 for i in range(n)]


def allreduce(n, m, alpha, inv_b):
    if n == 1:
        return 0.0
    a, b = ring(n)
    return a * alpha + b * m * inv_b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--cores", type=int, required=True)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.results), delimiter="\t"))
    for r in rows:
        for k in ("hosts", "overlap", "gradient_bytes", "params"):
            r[k] = int(r[k])
        for k in ("step_ms", "comm_ms", "allreduce_1k_ms", "allreduce_1m_ms", "allreduce_grad_ms"):
            r[k] = float(r[k]) / 1e3  # seconds
    models = sorted({r["model"] for r in rows}, key=lambda m: [r["params"] for r in rows if r["model"] == m][0])
    links = ["10gbit", "1gbit"]
    links = [l for l in links if any(r["link"] == l for r in rows)]
    cores = args.cores

    def contention(n):
        return max(1.0, n / cores)

    # α, β per link from every probe of 2 and 4 hosts (all models: the same link).
    link_fit = {}
    for link in links:
        probes = []
        for r in rows:
            if r["link"] == link and r["hosts"] > 1:
                probes += [(r["hosts"], 1024, r["allreduce_1k_ms"]), (r["hosts"], 1 << 20, r["allreduce_1m_ms"]),
                           (r["hosts"], r["gradient_bytes"], r["allreduce_grad_ms"])]
        link_fit[link] = fit_alpha_beta(probes)

    print("## α–β fit (allreduce alone, 2 and 4 hosts)\n")
    print("| link | α (per message step) | effective bandwidth B |")
    print("|---|---|---|")
    for link in links:
        alpha, inv_b = link_fit[link]
        print(f"| {link} | {alpha * 1e6:.1f} µs | {(1 / inv_b / 1e6) if inv_b > 0 else float('inf'):.0f} MB/s |")

    speedups = {}
    c1s = {}
    for r in rows:
        if r["hosts"] == 1:
            c1s[r["model"]] = (r["step_ms"], r["gradient_bytes"], r["params"])
    models = [m for m in models if m in c1s]

    def comm(r):
        alpha, inv_b = link_fit[r["link"]]
        return allreduce(r["hosts"], r["gradient_bytes"], alpha, inv_b)

    def fit(max_hosts):
        """σ per model, ρ per link (blocking steps), h per model (overlapped), on rows ≤ max_hosts."""
        used = [r for r in rows if 1 < r["hosts"] <= max_hosts]
        unknowns = [("sigma", m) for m in models]
        k = len(unknowns)
        ata = [[0.0] * k for _ in range(k)]
        atb = [0.0] * k
        for r in used:
            if r["overlap"]:
                continue
            c1 = c1s[r["model"]][0]
            t = r["step_ms"]
            row = [0.0] * k
            row[unknowns.index(("sigma", r["model"]))] = c1 * (r["hosts"] - 1) / t
            rhs = (t - c1 - comm(r)) / t
            for i in range(k):
                atb[i] += row[i] * rhs
                for j in range(k):
                    ata[i][j] += row[i] * row[j]
        x = solve(ata, atb)
        sigma = {m: x[unknowns.index(("sigma", m))] for m in models}
        rho = {l: 1.0 for l in links}
        h = {}
        for m in models:
            over = [r for r in used if r["model"] == m and r["overlap"]]
            best = (float("inf"), 0.0)
            for i in range(101):
                hh = i / 100
                err = sum(((predict(r, sigma, rho, {m: hh}) - r["step_ms"]) / r["step_ms"]) ** 2 for r in over)
                best = min(best, (err, hh))
            h[m] = best[1]
        return sigma, rho, h

    def predict(r, sigma, rho, h):
        c1 = c1s[r["model"]][0]
        c = c1 * (1 + sigma[r["model"]] * (r["hosts"] - 1))
        a = rho[r["link"]] * comm(r)
        return c + (max(0.0, a - h[r["model"]] * c) if r["overlap"] else a)

    full, small = fit(4), fit(2)
    print("\n## Fitted parameters\n")
    print("| fitted on | σ (per model) | h (per model) |")
    print("|---|---|---|")
    for name, (sigma, rho, h) in (("1, 2, 4 hosts", full), ("1, 2 hosts", small)):
        print(f"| {name} | " + ", ".join(f"{m} {sigma[m]:.2f}" for m in models) + " | " + ", ".join(f"{m} {h[m]:.2f}" for m in models) + " |")

    print("\n## Measured vs model\n")
    print("| model | link | hosts | mode | measured step | communication (measured) | model, fitted on all | error | model, fitted on ≤ 2 hosts | error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    worst = {"in": 0.0, "out": 0.0}
    for model in models:
        for r in sorted([r for r in rows if r["model"] == model], key=lambda r: (links.index(r["link"]), r["hosts"], r["overlap"])):
            pf, ps = predict(r, *full), predict(r, *small)
            ef, es = (pf - r["step_ms"]) / r["step_ms"] * 100, (ps - r["step_ms"]) / r["step_ms"] * 100
            if r["hosts"] == 4:
                worst["in"] = max(worst["in"], abs(ef))
                worst["out"] = max(worst["out"], abs(es))
            mode = "overlapped" if r["overlap"] else "blocking"
            print(f"| {model} | {r['link']} | {r['hosts']} | {mode} | {r['step_ms'] * 1e3:.1f} ms | {r['comm_ms'] * 1e3:.1f} ms "
                  f"| {pf * 1e3:.1f} ms | {ef:+.0f}% | {ps * 1e3:.1f} ms{' (predicted)' if r['hosts'] == 4 else ''} | {es:+.0f}% |")
        for link in links:
            b = [r for r in rows if r["model"] == model and r["link"] == link and r["hosts"] == 4 and r["overlap"] == 0]
            o = [r for r in rows if r["model"] == model and r["link"] == link and r["hosts"] == 4 and r["overlap"] == 1]
            if b and o:
                speedups[(model, link)] = b[0]["step_ms"] / o[0]["step_ms"]
    print(f"\nLargest 4-host error: {worst['in']:.0f}% fitted on every measurement, "
          f"{worst['out']:.0f}% predicted from 1 and 2 hosts.")
    sigma, rho, h = full
    fits = {m: (c1s[m][0], c1s[m][1], c1s[m][2], h[m]) for m in models}

    print("\n## Projection: nodes with their own cores (no sharing), batch per node fixed\n")
    print("Step time (ms) blocking / overlapped, and scaling efficiency C1/T (overlapped); σ = 0, h as fitted on every measurement.\n")
    header = "| model | link | " + " | ".join(f"{n} nodes" for n in NODES) + " |"
    print(header)
    print("|" + "---|" * (len(NODES) + 2))
    for model, (c1, size, params, h) in fits.items():
        for link in links:
            alpha, inv_b = link_fit[link]
            cells = []
            for n in NODES:
                a = rho[link] * allreduce(n, size, alpha, inv_b)
                tb, to = c1 + a, c1 + max(0.0, a - h * c1)
                cells.append(f"{tb * 1e3:.0f} / {to * 1e3:.0f} ({c1 / to * 100:.0f}%)")
            print(f"| {model} | {link} | " + " | ".join(cells) + " |")

    print("\n## Compression payloads at 100M parameters (one broadcast per decision, not per step)\n")
    # A 100M-parameter stack of 4096-wide layers: 100e6 / 4096² ≈ 6 layers, 24,414 channels.
    params, width = 100_000_000, 4096
    channels = params // width
    header_bytes = 40
    rows_p = [
        ("pruning masks (1 bit per prunable channel)", header_bytes + (channels + 7) // 8),
        ("LSQ scales, per tensor (weight + activation step per layer)", header_bytes + 2 * 4 * (params // (width * width) + 1)),
        ("LSQ scales, per output channel", header_bytes + 4 * channels),
        ("sparsity masks, 1×16 blocks (1 bit per block)", header_bytes + (params // 16 + 7) // 8),
        ("(for scale) the gradient allreduce, every step", 4 * params),
    ]
    print("| payload | bytes (before zstd) | at 1 Gbit/s | at 10 Gbit/s |")
    print("|---|---|---|---|")
    for name, b in rows_p:
        print(f"| {name} | {b:,} | {b * 8 / 1e9 * 1e3:.2f} ms | {b * 8 / 1e10 * 1e3:.3f} ms |")

    if ("mlp-12m", "1gbit") in speedups or ("mlp-12m", "10gbit") in speedups:
        s1 = speedups.get(("mlp-12m", "1gbit"), float("nan"))
        s10 = speedups.get(("mlp-12m", "10gbit"), float("nan"))
        print(f"\nRESULT overlap_speedup_1gbit={s1:.2f} overlap_speedup_10gbit={s10:.2f}")
    for (model, link), s in sorted(speedups.items()):
        print(f"overlap speedup, 4 hosts, {model}, {link}: {s:.2f}×")


if __name__ == "__main__":
    sys.exit(main())
