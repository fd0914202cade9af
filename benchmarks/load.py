"""Sustained mixed load on a live server over loopback: throughput and tail latency, then a full consistency check.

Traffic is ``bragserve.loadgen`` (ingest, delete, query with write-back gates, proposed write-backs) with an
API key on every request (authentication and rate limiting are part of the measured path). The baseline, measured
in the same run on the same server, is one client asking one question at a time with nothing else running; the
loaded latencies are reported as ratios to it. After each load level every acknowledged write is verified.

    bragserve bench load [--seconds 30] [--clients 1,4,8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import ROOT, Server, machine, percentiles, pyplot, save_plot, table, write_results
from bragserve.loadgen import Ledger, MixedTraffic, verify
from bragserve.store.keys import KeyStore


def _baseline(http: httpx.Client, questions: list[str], rounds: int) -> dict:
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        r = http.post("/query", json={"query": questions[i % len(questions)], "k": 3, "writeback": True})
        r.raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def run(seconds: float, clients: list[int], baseline_rounds: int, seed: int) -> dict:
    demo = json.loads((ROOT / "examples" / "demo.json").read_text())["documents"]
    questions = ["Who first climbed Mount Everest?", "What did Alexander Fleming discover?", "Why is Mars red?",
                 "When did the French Revolution begin?", "How do honeybees communicate?"]
    results: dict = {"levels": {}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "load"
        token = KeyStore(index).create(role="admin", name="load-benchmark", rate_per_minute=0)[1]
        headers = {"Authorization": f"Bearer {token}"}
        with Server(index) as server, httpx.Client(base_url=server.url, headers=headers, timeout=300) as http:
            http.post("/documents", json={"documents": demo}).raise_for_status()
            http.post("/query", json={"query": questions[0]}).raise_for_status()  # warm caches and threads
            base = _baseline(http, questions, baseline_rounds)
            results["baseline_query_ms"] = base
            for n in clients:
                ledger = MixedTraffic(server.url, Ledger(), headers=headers, seed=seed + n).run(
                    threads=n, seconds=seconds, max_ops=100_000)
                elapsed = seconds  # the run is bounded by time; ops completed within it
                ops = {op: percentiles([s * 1000 for s in v]) | {"count": len(v)}
                       for op, v in sorted(ledger.latencies.items())}
                total = sum(len(v) for v in ledger.latencies.values())
                problems = verify(server.url, ledger, headers=headers)
                level = {"clients": n, "seconds": seconds, "operations": total,
                         "throughput_ops_per_s": round(total / elapsed, 2), "ops": ops,
                         "errors": ledger.errors[:20], "error_count": len(ledger.errors),
                         "stale_reads": len(ledger.stale_reads), "verify_problems": problems,
                         "decisions": dict(ledger.decisions),
                         "query_p99_vs_baseline_p50": round(ops.get("query", {}).get("p99", 0) / base["p50"], 2)}
                results["levels"][str(n)] = level
                rows.append({"clients": n, "ops/s": level["throughput_ops_per_s"],
                             **{f"{op} p50/p99 ms": f"{v['p50']:.0f}/{v['p99']:.0f}" for op, v in ops.items()},
                             "query p99 / base p50": level["query_p99_vs_baseline_p50"],
                             "errors": len(ledger.errors), "verify": "ok" if not problems else len(problems)})
            results["corpus_after"] = http.get("/readyz").json()
    print(f"baseline: one client, query with gates, p50 {base['p50']:.1f} ms, p99 {base['p99']:.1f} ms")
    print(table(rows, list(rows[0])))
    payload = {"benchmark": "load", "machine": machine(),
               "parameters": {"seconds": seconds, "clients": clients, "baseline_rounds": baseline_rounds,
                              "seed": seed, "mix": MixedTraffic("", Ledger()).mix, "auth": "admin key, unlimited"},
               "results": results}
    write_results("load", payload, rows)
    _plot(results)
    return payload


def _plot(results: dict) -> None:
    plt = pyplot()
    levels = results["levels"]
    xs = [int(n) for n in levels]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(xs, [levels[str(n)]["throughput_ops_per_s"] for n in xs], marker="o")
    a.set_xlabel("concurrent clients")
    a.set_ylabel("operations / s (mixed)")
    ops = sorted({op for lv in levels.values() for op in lv["ops"]})
    for op in ops:
        b.plot(xs, [levels[str(n)]["ops"].get(op, {}).get("p99", float("nan")) for n in xs], marker="o",
               label=f"{op} p99")
    b.axhline(results["baseline_query_ms"]["p50"], color="grey", linestyle="--", label="baseline query p50")
    b.set_xlabel("concurrent clients")
    b.set_ylabel("ms")
    b.set_yscale("log")
    b.legend(fontsize=8)
    save_plot(fig, "load")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0, help="Duration of each load level.")
    parser.add_argument("--clients", default="1,4,8", help="Comma-separated concurrent client counts.")
    parser.add_argument("--baseline-rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run(args.seconds, [int(c) for c in args.clients.split(",")], args.baseline_rounds, args.seed)


if __name__ == "__main__":
    main()
