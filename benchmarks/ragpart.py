"""RAGPart search: what each way of searching the C(N, k) views costs in time, memory and recall.

    bragserve bench ragpart [--sizes 2000,10000] [--queries 200]

The corpus is ingested through the service (the default policy: N = 5 fragments per chunk, embedded on their own
and stored in SQLite), then every RAGPart search is built from the same stored fragments, in process:
- ``fragments`` (the default, ``ragpart.index = "fragments"``): one product with the N fragment vectors of every
  chunk, summed into each view's exact cosine;
- ``views-fp32`` / ``views-fp16`` / ``views-sq8`` (``ragpart.index = "views"``): one FAISS index per view, its vectors
  stored as ``ragpart.encoding``.
Reference: views-fp32, the paper's method with no rounding beyond the stored fragments. Recall is measured against it:
the share of each view's top-``depth`` it finds, how often a view's list comes out identical, and how often the
final vote-ranked top-k (what a query returns) is the same. Baseline in the same run: a plain FAISS Flat search of
the chunk vectors, so the latency is also reported as a ratio. Texts and questions: benchmarks/perf.py's passages
(SQuAD dev and NLI sentences, one or two sentences each) and SQuAD dev questions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, machine, percentiles, pyplot, save_plot, table, write_results
from benchmarks.perf import questions_and_passages

VARIANTS = ("fragments", "views-fp32", "views-fp16", "views-sq8")


def build(texts: list[str], directory: Path):
    """A service over ``texts`` ingested with the default policy (fragments stored)."""
    from bragserve.policy import Policy
    from bragserve.settings import load_settings
    from bragserve.ingest import NewDocument
    from bragserve.service import Service

    service = Service.open(load_settings(index_dir=directory), Policy())
    for i in range(0, len(texts), 256):
        service.ingest(documents=[NewDocument(t, id=f"p{i + j}") for j, t in enumerate(texts[i:i + 256])])
    return service


def searches(service, views_k: int) -> dict:
    from bragserve.retrieval.ragpart import ragpart_index

    out = {}
    for name in VARIANTS:
        index, _, encoding = name.partition("-")
        search = ragpart_index(service.corpus, fragments=5, dim=service.embedder.dim, index=index,
                               encoding=encoding or "fp32")
        started = time.perf_counter()
        search.prepare(views_k)
        out[name] = (search, round(time.perf_counter() - started, 2))
    return out


def timed(fn, items: list) -> tuple[list, list[float]]:
    fn(items[0])  # warm up
    results, samples = [], []
    for item in items:
        started = time.perf_counter()
        results.append(fn(item))
        samples.append((time.perf_counter() - started) * 1000)
    return results, samples


def top_k(hits: list[list[int]], k: int) -> list[int]:
    from bragserve.retrieval.ragpart import rank_votes

    return [v.vid for v in rank_votes(hits, intersection=False)[:k]]


def run_size(texts: list[str], vectors: np.ndarray, args: argparse.Namespace, work: Path) -> dict:
    service = build(texts, work / f"corpus-{len(texts)}")
    try:
        out: dict = {"chunks": service.index.count()}
        _, plain_ms = timed(lambda q: service.index.search(q, args.k), list(vectors))
        out["plain_search_ms"] = percentiles(plain_ms)
        built = searches(service, args.views_k)
        hits_of, samples_of = {}, {}
        for name, (search, _) in built.items():
            hits_of[name], samples_of[name] = timed(lambda q, s=search: s.search(q, args.views_k, args.depth),
                                                    list(vectors))
        reference = hits_of["views-fp32"]
        for name, (search, build_s) in built.items():
            hits, samples = hits_of[name], samples_of[name]
            ref_views = [view for query in reference for view in query]
            got_views = [view for query in hits for view in query]
            out[name] = {
                "search_ms": percentiles(samples),
                "vs_plain_p50": round(float(np.median(samples)) / out["plain_search_ms"]["p50"], 2),
                "memory_mb": round(search.memory_bytes() / 1e6, 1),
                "build_s": build_s,
                "view_recall": round(float(np.mean([len(set(g) & set(r)) / max(len(r), 1)
                                                    for g, r in zip(got_views, ref_views)])), 4),
                "views_identical": round(float(np.mean([g == r for g, r in zip(got_views, ref_views)])), 4),
                "top_k_identical": round(float(np.mean([top_k(g, args.k) == top_k(r, args.k)
                                                        for g, r in zip(hits, reference)])), 4),
            }
        return out
    finally:
        service.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--views-k", type=int, default=3, help="k of C(5, k) views (the default policy's 3).")
    parser.add_argument("--depth", type=int, default=23,
                        help="Passages per view: 23 is what a k=5 query with RAGMask and the echo filter asks for.")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    asked, pool = questions_and_passages(args.data, max(sizes), args.seed)
    started = time.perf_counter()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        from bragserve.embedding import Embedder

        vectors = Embedder().encode(asked[:args.queries])
        for n in sizes:
            print(f"corpus of {n} chunks ...", flush=True)
            results[str(n)] = run_size(pool[:n], vectors, args, Path(tmp))
    rows = [{"chunks": n, "search": name, "p50 ms": r[name]["search_ms"]["p50"],
             "p95 ms": r[name]["search_ms"]["p95"], "x plain": r[name]["vs_plain_p50"],
             "memory MB": r[name]["memory_mb"], "view recall": r[name]["view_recall"],
             "views identical": r[name]["views_identical"], "top-k identical": r[name]["top_k_identical"]}
            for n, r in ((int(n), r) for n, r in results.items()) for name in VARIANTS]
    print(table(rows, list(rows[0])))
    payload = {"benchmark": "ragpart", "machine": machine(), "seconds": round(time.perf_counter() - started, 1),
               "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "results": results}
    write_results("ragpart", payload, rows)
    plot(results, sizes)
    return payload


def plot(results: dict, sizes: list[int]) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for name in VARIANTS:
        a.plot(sizes, [results[str(n)][name]["search_ms"]["p50"] for n in sizes], marker="o", label=name)
        b.plot(sizes, [results[str(n)][name]["memory_mb"] for n in sizes], marker="o", label=name)
    a.plot(sizes, [results[str(n)]["plain_search_ms"]["p50"] for n in sizes], linestyle="--", label="plain search")
    a.set(xlabel="chunks", ylabel="p50 ms per query (in process)", title="RAGPart search latency", xscale="log")
    b.set(xlabel="chunks", ylabel="MB held", title="RAGPart memory (vectors only)", xscale="log")
    for ax in (a, b):
        ax.legend()
    save_plot(fig, "ragpart")
