"""Core throughput and latency over real HTTP: ingest docs/s and chunks/s (vs raw encode of the same texts,
measured in the same run), /query latency, and write-back gate latency (POST /writebacks with a 3-sentence cited
answer), on the demo corpus and on ~10k synthetic chunks from SQuAD.

Run: .venv/bin/python -m benchmarks.core --squad ../shared/data/squad/dev-v1.1.json --chunks 10000
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import ROOT, Server, machine, percentiles, pyplot, save_plot, table, write_results


def synthetic_docs(squad: Path, n_chunks: int, seed: int) -> list[dict]:
    """One document per SQuAD sentence: it and the next one (the last alone), one chunk each, ~10.4k in all."""
    from bragserve.text import split_sentences

    data = json.loads(squad.read_text())["data"]
    docs = []
    for a, article in enumerate(data):
        for p, para in enumerate(article["paragraphs"]):
            sents = [s.text for s in split_sentences(para["context"])]
            for i in range(len(sents)):
                docs.append({"id": f"sq-{a}-{p}-{i}", "text": " ".join(sents[i:i + 2])})
    random.Random(seed).shuffle(docs)
    return docs[:n_chunks]


def ingest(http: httpx.Client, docs: list[dict], batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(docs), batch):
        r = http.post("/documents", json={"documents": docs[i:i + batch]})
        r.raise_for_status()
    return time.perf_counter() - started


def query_latency(http: httpx.Client, questions: list[str], **body: object) -> dict:
    samples = []
    for q in questions:
        started = time.perf_counter()
        r = http.post("/query", json={"query": q, **body})
        r.raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def writeback_latency(http: httpx.Client, questions: list[str], answers: int | None = None,
                      full_path: int = 0) -> dict:
    """POST /writebacks with a 3-sentence answer: the first sentence of each of the top 3 passages, cited.

    The request time includes retrieving the query's passages again (attribution checks the
    citations against them). The percentiles and the decision mix are over the first ``answers``
    questions (all when None). The gates stop at the first refusal, so the mix moves the figure: in
    bench perf's 100k corpus the same passage recurs in several documents, and at ff4548c the
    citations' flood check refused 10 of the first 30 answers, which never reached the slow gates.
    With ``full_path``, more questions are asked, when needed, until that many answers ran every gate
    to the last (contradiction; misattribution runs only for some): the cost of an answer the gates
    read whole, whatever the corpus refuses (at most ``4 * full_path`` questions beyond the first)."""
    from bragserve.text import split_sentences

    answers = len(questions) if answers is None else answers
    samples, gates, decisions, steps = [], [], {}, {}
    whole, whole_gates, whole_steps, asked = [], [], {}, 0
    for i, q in enumerate(questions):
        if i >= answers and (len(whole) >= full_path or i >= answers + 4 * full_path):
            break
        asked += 1
        passages = http.post("/query", json={"query": q, "k": 3, "generate": False}).json()["passages"]
        parts = [(split_sentences(p["text"]) or [None])[0] for p in passages]
        answer = " ".join(f"{s.text} [{p['chunk_id']}]" for s, p in zip(parts, passages) if s is not None)
        started = time.perf_counter()
        r = http.post("/writebacks", json={"query": q, "answer": answer, "generator": "benchmark"})
        r.raise_for_status()
        ms, timings = (time.perf_counter() - started) * 1000, r.json()["timings_ms"]
        if i < answers:
            samples.append(ms)
            gates.append(timings["gates"])
            gate_steps(timings, steps)
            key = decision_key(r.json())
            decisions[key] = decisions.get(key, 0) + 1
        if "gates.contradiction" in timings and len(whole) < full_path:
            whole.append(ms)
            whole_gates.append(timings["gates"])
            gate_steps(timings, whole_steps)
    out = {**percentiles(samples), "gates_only": percentiles(gates), "decisions": decisions,
           "steps": {step: percentiles(ms) for step, ms in steps.items()}}
    if full_path:
        out["full_path"] = {**(percentiles(whole) if whole else {"n": 0}), "asked": asked,
                            "gates_only": percentiles(whole_gates) if whole else {"n": 0},
                            "steps": {step: percentiles(ms) for step, ms in whole_steps.items()}}
    return out


# What a screening refusal rested on, read from the gate's own words (bragserve/gates/screening.py ``_why_not``).
_REFUSALS = {"flagged for this query": "flagged", "planted flood": "flood", "optimised tokens": "source_disfluency",
             "RAGMask": "ragmask", "released from": "released", "of the query word for word": "echo",
             "trust": "trust", "not active": "inactive"}  # first match wins: "flagged for this query" names the others


def decision_key(outcome: dict) -> str:
    """``decision:reason``, and for a screening refusal its problem and what each refused citation rested on: a
    change in the decision mix moves the latencies, and this says which check moved it."""
    key = outcome["decision"] + (f":{outcome['reason']}" if outcome.get("reason") else "")
    screening = next((g for g in outcome.get("gates") or [] if g["name"] == "screening" and not g["passed"]), None)
    if screening is None:
        return key
    details = screening.get("details") or {}
    key += f"/{details.get('problem')}"
    why = sorted({next((label for text, label in _REFUSALS.items() if text in (w or "")), "other")
                  for w in (details.get("refused") or {}).values()})
    return key + (f"({'+'.join(why)})" if why else "")


def gate_steps(timings: dict[str, float], into: dict[str, list[float]]) -> None:
    """Collect the server's per-step gate times (``gates.<step>``; a step that did not run is absent)."""
    for name, ms in timings.items():
        if name.startswith("gates."):
            into.setdefault(name.removeprefix("gates."), []).append(ms)


def query_writeback_latency(http: httpx.Client, questions: list[str], k: int = 5) -> dict:
    """POST /query with the extractive answer and its write-back, the path every default query takes.

    Unlike POST /writebacks the gates see only the query's k passages (not the 20 attribution allows),
    and the answer's sentences are already encoded by the generator. ``gates_only`` is the server's
    own time in the gates; ``writeback`` adds encoding an accepted answer and committing the outcome."""
    gates, writeback, decisions, steps = [], [], {}, {}
    for q in questions:
        r = http.post("/query", json={"query": q, "k": k, "generate": True, "writeback": True})
        r.raise_for_status()
        outcome = r.json()["writeback"]
        key = decision_key(outcome)
        decisions[key] = decisions.get(key, 0) + 1
        if outcome.get("timings_ms"):  # "skipped": no answer, no gates
            gates.append(outcome["timings_ms"]["gates"])
            gate_steps(outcome["timings_ms"], steps)
            writeback.append(r.json()["timings_ms"]["writeback"])
    return {"gates_only": percentiles(gates), "writeback": percentiles(writeback), "decisions": decisions,
            "steps": {step: percentiles(ms) for step, ms in steps.items()}}


def raw_encode_seconds(texts: list[str], batch: int | None = None, precision: str = "auto") -> float:
    """``SentenceTransformer.encode`` on the texts: all in one call (``batch`` None: sorted by length over all of
    them, the least padding there can be), or in the groups a client sends per request. ``precision`` "auto" is
    the server's own (bf16 on CPUs with native bf16); "fp32" is the encoder as it ships."""
    from bragserve.embedding import Embedder

    embedder = Embedder("bundled", precision=precision)  # type: ignore[arg-type]
    embedder.encode(texts[:16])  # warm up
    groups = [texts] if batch is None else [texts[i:i + batch] for i in range(0, len(texts), batch)]
    started = time.perf_counter()
    for group in groups:
        embedder.encode(group)
    return time.perf_counter() - started


def run(squad: Path, n_chunks: int, n_queries: int, seed: int) -> dict:
    demo = json.loads((ROOT / "examples" / "demo.json").read_text())["documents"]
    synthetic = synthetic_docs(squad, n_chunks, seed)
    questions = [q["question"] for a in json.loads(squad.read_text())["data"] for p in a["paragraphs"]
                 for q in p["qas"]]
    random.Random(seed).shuffle(questions)
    questions = questions[:n_queries]
    demo_questions = ["Who first climbed Mount Everest?", "What did Alexander Fleming discover?",
                      "Why is Mars red?", "When did the French Revolution begin?", "How do honeybees communicate?"]
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, docs, qs in (("demo", demo, demo_questions * max(1, n_queries // 5)),
                               (f"synthetic_{len(synthetic)}", synthetic, questions)):
            raw = raw_encode_seconds([d["text"] for d in docs])
            with Server(Path(tmp) / name) as server:
                http = httpx.Client(base_url=server.url, timeout=600)
                seconds = ingest(http, docs, batch=64)
                chunks = http.get("/readyz").json()["index_vectors"]
                retrieve = query_latency(http, qs, generate=False, writeback=False)
                answer = query_latency(http, qs, generate=True, writeback=False)
                gates = writeback_latency(http, qs[:50])
            entry = {"documents": len(docs), "chunks": chunks, "ingest_seconds": round(seconds, 2),
                     "docs_per_s": round(len(docs) / seconds, 1), "chunks_per_s": round(chunks / seconds, 1),
                     "raw_encode_texts_per_s": round(len(docs) / raw, 1),
                     "ingest_vs_raw_encode": round(raw / seconds, 3),
                     "query_retrieve_ms": retrieve, "query_answer_ms": answer, "writeback_gates_ms": gates}
            results[name] = entry
            rows.append({"corpus": name, "docs": len(docs), "chunks": chunks, "docs/s": entry["docs_per_s"],
                         "vs raw encode": entry["ingest_vs_raw_encode"], "retrieve p50 ms": retrieve["p50"],
                         "answer p50 ms": answer["p50"], "answer p95 ms": answer["p95"],
                         "gates p50 ms": gates["p50"]})
    print(table(rows, list(rows[0])))
    payload = {"benchmark": "core", "machine": machine(),
               "parameters": {"chunks": n_chunks, "queries": n_queries, "seed": seed, "batch": 64,
                              "squad": str(squad)}, "results": results}
    write_results("core", payload, rows)
    _plot(results)
    return payload


def _plot(results: dict) -> None:
    plt = pyplot()
    names = list(results)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.bar(names, [results[n]["chunks_per_s"] for n in names], label="bragserve ingest (HTTP)")
    a.bar(names, [results[n]["raw_encode_texts_per_s"] for n in names], alpha=0.4, label="raw encode")
    a.set_ylabel("chunks / s")
    a.legend()
    for key, label in (("query_retrieve_ms", "retrieve"), ("query_answer_ms", "retrieve + answer")):
        b.plot(names, [results[n][key]["p50"] for n in names], marker="o", label=f"{label} p50")
        b.plot(names, [results[n][key]["p95"] for n in names], marker="x", linestyle="--", label=f"{label} p95")
    b.set_ylabel("ms per /query (loopback)")
    b.legend()
    save_plot(fig, "core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/data/squad/dev-v1.1.json")
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run(args.squad, args.chunks, args.queries, args.seed)


if __name__ == "__main__":
    main()
