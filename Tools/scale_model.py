#!/usr/bin/env python3
"""Fits the α–β + compute model of docs/scaling.md to `launch/bench scale`'s measurements
(.build/scale/results.tsv) and projects it to 8–64 nodes. Standard library only.

Model (S = gradient bytes, n = hosts, m = bytes of one sum):

  compute       C(n)   = C1 · max(1, n / cores)        C1: the measured 1-host step. Not fitted:
                                                        in the lab n ranks share `cores` cores,
                                                        so beyond `cores` hosts each computes
                                                        n / cores times slower; nodes with their
                                                        own cores have C(n) = C1.
  link          L(n,m) = 2(n−1)·α + 2(n−1)/n · m/B      per-link α–β: the bytes each host sends
                                                        and receives in a ring / alltoall +
                                                        allgather sum — what the trainer does:
                                                        blocking, the rank-ordered sum for n ≥ 3
                                                        and MPI_Allreduce for n = 2; overlapped,
                                                        the two-phase Ialltoallv + Iallgatherv
                                                        for every n ≥ 2 (commit 0c0785d).
  lab           A(n,m) = 2(n−1)·α + max(2(n−1)/n · m/B, 2(n−1)·m/R)
                                                        R: the aggregate rate of the one-machine
                                                        lab — every host's bytes (2(n−1)·m in
                                                        all) cross one kernel's bridge and veths
                                                        on the same cores. A cluster with a
                                                        switch has no such term: the projection
                                                        drops it (A = L).
  blocking      T_b(n) = C(n) + A(n, S)
  overlapped    T_o(n) = C(n) + A_o(n, S) − min(A_o(n, S), h · b · C(n))
                                                        A_o: A's form with its own B and R,
                                                        fitted to the overlapped sums alone
                                                        (the step's buckets started one after
                                                        another on the non-blocking stream,
                                                        then waited for) — in the lab they do
                                                        not run at the flat sum's rates.
                                                        b = 2/3: backward's share of the compute
                                                        (two products per layer, forward one);
                                                        h ∈ [0, 1] per model: the share of
                                                        backward the bucket sums run behind.
                                                        The overlapped sums move the same bytes
                                                        as the blocking one for every n ≥ 2: on
                                                        2 ranks they no longer use Open MPI's
                                                        MPI_Iallreduce (a reduce then a
                                                        broadcast below 4 ranks, 2·S one way
                                                        after the other) but the two-phase
                                                        exchange, 2(n−1)/n · S per host.

α, B, R per link from the allreduce-alone probes of 2 and 4 hosts (not from the training
steps): α from the 1 KiB probes as pure latency, t = 2(n−1)·α (relative least squares); B and R
from the 1 MiB and whole-gradient probes, least squares on time, so the gradient-sized sums the
steps make weigh most; A_o's B and R the same way from the bucketed whole-gradient probes. h: grid search (relative error) on the overlapped steps. Two fits of h:
on every measurement (in-sample errors), and on 1 and 2 hosts only (with C1 and the probes of 2
and 4 hosts, every 4-host step is then a prediction). The communication time measured inside
the training steps (comm_ms) is printed, never used.
"""
import argparse
import csv
import math
import sys

NODES = [1, 2, 4, 8, 16, 32, 64]
BACKWARD_SHARE = 2.0 / 3.0


def pct(x):
    """A signed percentage without "-0%"."""
    s = f"{x:+.0f}%"
    return "+0%" if s == "-0%" else s


def link_bytes(n, m):
    """Bytes each host sends (and receives) in one sum: ring / alltoall + allgather."""
    return 2.0 * (n - 1) / n * m


def lab_allreduce(n, m, fit, aggregate=True):
    """A(n, m) in seconds — blocking and overlapped sums alike; fit = (alpha, inv_b, inv_r)."""
    if n == 1:
        return 0.0
    alpha, inv_b, inv_r = fit
    per_link = link_bytes(n, m) * inv_b
    machine = 2.0 * (n - 1) * m * inv_r if aggregate else 0.0
    return 2.0 * (n - 1) * alpha + max(per_link, machine)


def fit_link(probes, aggregate):
    """probes: [(n, bytes, seconds)] → (alpha, 1/B, 1/R).

    α: from the 1 KiB probes as pure latency (they pass within the token bucket's burst), least
    squares on relative error. B and R: from the
    probes of 1 MiB and more (bandwidth-bound), least squares on time itself, so the sums the
    steps move (the whole gradient) weigh as much as they take; log-grid search, then a finer one.
    """
    small = [p for p in probes if p[1] <= 1024]
    large = [p for p in probes if p[1] > 1024]
    sxx = sum((2.0 * (n - 1) / t) ** 2 for n, m, t in small)
    sxy = sum(2.0 * (n - 1) / t for n, m, t in small)
    alpha = max(0.0, sxy / sxx) if sxx > 0 else 0.0

    def error(inv_b, inv_r):
        return sum((lab_allreduce(n, m, (alpha, inv_b, inv_r), aggregate) - t) ** 2 for n, m, t in large)

    def search(b_lo, b_hi, r_lo, r_hi, steps):
        best = (float("inf"), 0.0, 0.0)
        for i in range(steps + 1):
            b = b_lo * (b_hi / b_lo) ** (i / steps)
            rs = [r_lo * (r_hi / r_lo) ** (j / steps) for j in range(steps + 1)] + [float("inf")] if aggregate else [float("inf")]
            for r in rs:
                inv_r = 0.0 if math.isinf(r) else 1.0 / r
                err = error(1.0 / b, inv_r)
                if err < best[0]:
                    best = (err, b, r)
        return best

    # B: 1 MB/s … 100 GB/s; R: 10 MB/s … 1 TB/s, or none; then a finer pass around the best.
    _, b, r = search(1e6, 1e11, 1e7, 1e12, 100)
    k = (1e11 / 1e6) ** (1 / 100) * 1.01
    if math.isinf(r):
        _, b, r = search(b / k, b * k, 1, 1, 40) if not aggregate else search(b / k, b * k, 1e7, 1e12, 40)
    else:
        _, b, r = search(b / k, b * k, r / k, r * k, 40)
    return alpha, 1.0 / b, (0.0 if math.isinf(r) else 1.0 / r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--cores", type=int, required=True)
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.results), delimiter="\t"))
    for r in rows:
        for k in ("hosts", "overlap", "gradient_bytes", "params"):
            r[k] = int(r[k])
        for k in ("step_ms", "comm_ms", "allreduce_1k_ms", "allreduce_1m_ms", "allreduce_grad_ms", "bucketed_grad_ms"):
            r[k] = float(r.get(k) or "nan") / 1e3  # seconds; the bucketed probe only on overlapped rows
    models = sorted({r["model"] for r in rows}, key=lambda m: [r["params"] for r in rows if r["model"] == m][0])
    links = [l for l in ("10gbit", "1gbit") if any(r["link"] == l for r in rows)]
    cores = args.cores
    c1s = {r["model"]: (r["step_ms"], r["gradient_bytes"], r["params"]) for r in rows if r["hosts"] == 1}
    models = [m for m in models if m in c1s]

    def compute(model, n):
        return c1s[model][0] * max(1.0, n / cores)

    # ---- communication: α, B, R per link from the probes --------------------------------------
    probes = {l: [] for l in links}
    bucket_probes = {l: [] for l in links}
    for r in rows:
        if r["hosts"] > 1:
            probes[r["link"]] += [(r["hosts"], 1024, r["allreduce_1k_ms"]), (r["hosts"], 1 << 20, r["allreduce_1m_ms"]),
                                  (r["hosts"], r["gradient_bytes"], r["allreduce_grad_ms"])]
            bucket_probes[r["link"]].append((r["hosts"], 1024, r["allreduce_1k_ms"]))
            if r["overlap"] and not math.isnan(r["bucketed_grad_ms"]):
                bucket_probes[r["link"]].append((r["hosts"], r["gradient_bytes"], r["bucketed_grad_ms"]))
    link_fit = {l: fit_link(probes[l], aggregate=True) for l in links}
    plain_fit = {l: fit_link(probes[l], aggregate=False) for l in links}
    # The overlapped steps' sums: the same bytes, in buckets on the non-blocking stream, fitted to
    # their own probes (the whole gradient summed alone that way). With no such probe (an older
    # results file) they are charged the blocking fit.
    bucket_fit = {l: fit_link(bucket_probes[l], aggregate=True) if any(m > 1024 for _, m, _ in bucket_probes[l])
                  else link_fit[l] for l in links}

    print("## Communication fit (allreduce alone, 2 and 4 hosts)\n")
    def rate(inv):
        return f"{1 / inv / 1e6:.0f} MB/s" if inv > 0 else "none"

    print("| link | α (per message step) | per-link bandwidth B | lab aggregate rate R | "
          "per-link α–β alone (no R): α, B | overlapped sums (buckets): B, R |")
    print("|---|---|---|---|---|---|")
    for l in links:
        a, ib, ir = link_fit[l]
        pa, pib, _ = plain_fit[l]
        _, bib, bir = bucket_fit[l]
        print(f"| {l} | {a * 1e6:.1f} µs | {rate(ib)} | {rate(ir)} | {pa * 1e6:.1f} µs, {rate(pib)} | "
              f"{rate(bib)}, {rate(bir)} |")

    print("\n### Probes vs fit\n")
    print("| link | hosts | message | probes (median per configuration) | lab fit A(n, m) | error | per-link α–β alone | error |")
    print("|---|---|---|---|---|---|---|---|")
    worst_probe = {}
    for l in links:
        keyed = {}
        for n, m, t in probes[l]:
            keyed.setdefault((n, m), []).append(t)
        for (n, m), ts in sorted(keyed.items()):
            pa = lab_allreduce(n, m, link_fit[l])
            pp = lab_allreduce(n, m, plain_fit[l], aggregate=False)
            errs = [(pa - t) / t * 100 for t in ts]
            errs_p = [(pp - t) / t * 100 for t in ts]
            e = max(errs, key=abs)
            ep = max(errs_p, key=abs)
            if m > (1 << 20):
                worst_probe[(l, n)] = max(worst_probe.get((l, n), 0.0), abs(e))
            name = "1 KiB" if m == 1024 else "1 MiB" if m == 1 << 20 else f"{m / 1e6:.1f} MB"
            fmt = (lambda x: f"{x * 1e3:.3f} ms") if m <= 1 << 20 else (lambda x: f"{x * 1e3:.1f} ms")
            print(f"| {l} | {n} | {name} | {' / '.join(fmt(t) for t in ts)} | {fmt(pa)} | {pct(e)} | {fmt(pp)} | {pct(ep)} |")

    print("\n### Overlapped sums: bucketed probes vs their fit\n")
    print("| link | hosts | gradient | bucketed sums alone | fit A_o(n, S) | error | blocking sum alone (same configuration) |")
    print("|---|---|---|---|---|---|---|")
    for l in links:
        for r in sorted((r for r in rows if r["link"] == l and r["overlap"] and not math.isnan(r["bucketed_grad_ms"])),
                        key=lambda r: (r["gradient_bytes"], r["hosts"])):
            n, m, t = r["hosts"], r["gradient_bytes"], r["bucketed_grad_ms"]
            a = lab_allreduce(n, m, bucket_fit[l])
            print(f"| {l} | {n} | {m / 1e6:.1f} MB | {t * 1e3:.1f} ms | {a * 1e3:.1f} ms | {pct((a - t) / t * 100)} "
                  f"| {r['allreduce_grad_ms'] * 1e3:.1f} ms |")

    # ---- steps ------------------------------------------------------------------------------
    def predict(r, h):
        n, model = r["hosts"], r["model"]
        c = compute(model, n)
        if not r["overlap"]:
            return c + lab_allreduce(n, r["gradient_bytes"], link_fit[r["link"]])
        a = lab_allreduce(n, r["gradient_bytes"], bucket_fit[r["link"]])
        return c + a - min(a, h[model] * BACKWARD_SHARE * c)

    def fit_h(max_hosts):
        h = {}
        for m in models:
            over = [r for r in rows if r["model"] == m and r["overlap"] and r["hosts"] <= max_hosts]
            best = (float("inf"), 0.0)
            for i in range(101):
                hh = i / 100
                err = sum(((predict(r, {m: hh}) - r["step_ms"]) / r["step_ms"]) ** 2 for r in over)
                best = min(best, (err, hh))
            h[m] = best[1]
        return h

    h_all, h_small = fit_h(4), fit_h(2)
    print("\n## Overlap: fitted h (share of backward the bucket sums hide behind)\n")
    print("| fitted on | " + " | ".join(models) + " |")
    print("|---|" + "---|" * len(models))
    print("| 1, 2, 4 hosts | " + " | ".join(f"{h_all[m]:.2f}" for m in models) + " |")
    print("| 1, 2 hosts | " + " | ".join(f"{h_small[m]:.2f}" for m in models) + " |")

    print("\n## Measured vs model\n")
    print(f"C(n) = C1 · max(1, n/{cores}); blocking rows: A from the blocking probes' fit, overlapped rows: A_o from "
          "the bucketed probes' fit (both with the lab's aggregate term).\n")
    print("| model | link | hosts | mode | measured step | communication (measured) | compute C(n) | model, fitted on all | error | model, from 1–2 hosts + 4-host probes | error |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    worst = {}
    speedups = {}
    for model in models:
        for r in sorted([r for r in rows if r["model"] == model], key=lambda r: (links.index(r["link"]), r["hosts"], r["overlap"])):
            pf, ps = predict(r, h_all), predict(r, h_small)
            ef, es = (pf - r["step_ms"]) / r["step_ms"] * 100, (ps - r["step_ms"]) / r["step_ms"] * 100
            mode = "overlapped" if r["overlap"] else "blocking"
            if r["hosts"] == 4:
                worst[(model, r["link"], mode)] = (ef, es)
            print(f"| {model} | {r['link']} | {r['hosts']} | {mode} | {r['step_ms'] * 1e3:.1f} ms | {r['comm_ms'] * 1e3:.1f} ms "
                  f"| {compute(model, r['hosts']) * 1e3:.1f} ms | {pf * 1e3:.1f} ms | {pct(ef)} "
                  f"| {ps * 1e3:.1f} ms{' (predicted)' if r['hosts'] == 4 else ''} | {pct(es)} |")
        for link in links:
            b = [r for r in rows if r["model"] == model and r["link"] == link and r["hosts"] == 4 and r["overlap"] == 0]
            o = [r for r in rows if r["model"] == model and r["link"] == link and r["hosts"] == 4 and r["overlap"] == 1]
            if b and o:
                speedups[(model, link)] = b[0]["step_ms"] / o[0]["step_ms"]

    print("\n### 4-host errors (fitted on all / predicted from 1–2 hosts + 4-host probes)\n")
    print("| model | link | blocking | overlapped |")
    print("|---|---|---|---|")
    for model in models:
        for link in links:
            cells = []
            for mode in ("blocking", "overlapped"):
                if (model, link, mode) in worst:
                    ef, es = worst[(model, link, mode)]
                    ok = "within 15%" if max(abs(ef), abs(es)) <= 15 else "**misses 15%**"
                    cells.append(f"{pct(ef)} / {pct(es)} ({ok})")
                else:
                    cells.append("—")
            print(f"| {model} | {link} | " + " | ".join(cells) + " |")
    if worst:
        wi = max(abs(v[0]) for v in worst.values())
        wo = max(abs(v[1]) for v in worst.values())
        wb = max(max(abs(v[0]), abs(v[1])) for k, v in worst.items() if k[2] == "blocking")
        print(f"\nLargest 4-host error: {wi:.0f}% fitted on every measurement, {wo:.0f}% predicted from 1 and 2 hosts "
              f"(+ the 4-host probes); blocking rows alone: {wb:.0f}%.")

    # ---- projection ---------------------------------------------------------------------------
    def cluster_fit(link):
        """(blocking, overlapped) per-link α–β without the lab's aggregate term."""
        return tuple((fit[link][0], fit[link][1], 0.0) for fit in (link_fit, bucket_fit))

    print("\n## Projection: nodes with their own cores, a switch (no lab term), batch per node fixed\n")
    print("Step time (ms) blocking / overlapped, and scaling efficiency C1/T (blocking / overlapped). C(n) = C1, "
          "A = per-link α–β 2(n−1)α + 2(n−1)/n·S/B, the same bytes blocking and overlapped (α and each "
          "mode's own B from the lab fit), h fitted on every measurement.\n")
    header = "| model | link | " + " | ".join(f"{n} nodes" for n in NODES) + " | bandwidth limit (2S/B, no α) |"
    print(header)
    print("|" + "---|" * (len(NODES) + 3))
    for model in models:
        c1, size, params = c1s[model]
        for link in links:
            fit, ofit = cluster_fit(link)
            cells = []
            for n in NODES:
                tb = c1 + lab_allreduce(n, size, fit, aggregate=False)
                a = lab_allreduce(n, size, ofit, aggregate=False)
                to = c1 + a - min(a, h_all[model] * BACKWARD_SHARE * c1)
                cells.append(f"{tb * 1e3:.0f} / {to * 1e3:.0f} ({c1 / tb * 100:.0f}% / {c1 / to * 100:.0f}%)")
            ib = fit[1]
            a_inf = 2 * size * ofit[1]
            t_inf = c1 + a_inf - min(a_inf, h_all[model] * BACKWARD_SHARE * c1)
            print(f"| {model} | {link} | " + " | ".join(cells) + f" | {c1 / (c1 + 2 * size * ib) * 100:.0f}% / {c1 / t_inf * 100:.0f}% |")

    print("\nSame, at 100M parameters (S = 400 MB), compute scaled with the parameters from mlp-12m "
          "(same batch; a lower bound on what a 100M model computes per byte):\n")
    print("| link | " + " | ".join(f"{n} nodes" for n in NODES) + " |")
    print("|" + "---|" * (len(NODES) + 1))
    big = models[-1]
    c1b = c1s[big][0] * 100e6 / c1s[big][2]
    for link in links:
        fit, ofit = cluster_fit(link)
        cells = []
        for n in NODES:
            tb = c1b + lab_allreduce(n, 400e6, fit, aggregate=False)
            a = lab_allreduce(n, 400e6, ofit, aggregate=False)
            to = c1b + a - min(a, h_all[big] * BACKWARD_SHARE * c1b)
            cells.append(f"{tb:.2f} / {to:.2f} s ({c1b / tb * 100:.0f}% / {c1b / to * 100:.0f}%)")
        print(f"| {link} | " + " | ".join(cells) + " |")

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
