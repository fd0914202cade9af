"""The embedder in fp32 and in bf16 (the default where the CPU has native bf16): speed at the sizes bragserve
calls it with (a query, an answer's 3 sentences, a whole answer, ingest batches of SQuAD paragraphs), how close
the vectors are, and whether retrieval changes (gold paragraph in the top 5 / top 1 for SQuAD dev questions over
its 2,067 paragraphs, and how many top-5 lists are identical). Both models are loaded in the same process and
timed alternately, so the ratio is from one run on one machine.

Run: .venv/bin/python -m benchmarks.embed_precision --squad ../shared/data/squad/dev-v1.1.json
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, pyplot, save_plot, table, write_results


def _timed(fn, items: list) -> float:
    """Median ms per call."""
    samples = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        samples.append((time.perf_counter() - started) * 1000)
    return float(np.median(samples))


def run(squad: Path, questions: int, calls: int, ingest_texts: int, seed: int) -> dict:
    from bragserve.embedding import Embedder
    from bragserve.text import split_sentences

    data = json.loads(squad.read_text())["data"]
    paragraphs = [p["context"] for a in data for p in a["paragraphs"]]
    gold = {q["question"]: i for i, p in enumerate(p for a in data for p in a["paragraphs"]) for q in p["qas"]}
    asked = list(gold)
    random.Random(seed).shuffle(asked)
    asked = asked[:questions]
    shuffled = paragraphs[:]
    random.Random(seed + 1).shuffle(shuffled)
    answers = [[split_sentences(p)[0].text for p in shuffled[i:i + 3]] for i in range(0, 3 * calls, 3)]

    models = {"fp32": Embedder("bundled", cache_size=0, precision="fp32"),
              "bf16": Embedder("bundled", cache_size=0, precision="bf16")}
    for model in models.values():
        model.encode(shuffled[:32])  # warm up
    shapes = {"query (1 question)": (asked[:calls], lambda q: [q]),
              "answer sentences (3)": (answers, lambda a: a),
              "whole answer (1 text)": (answers, lambda a: [" ".join(a)])}
    speed: dict[str, dict[str, float]] = {name: {} for name in shapes}
    for repeat in range(2):  # alternate, and keep the second round (both warm)
        for name, (items, texts) in shapes.items():
            for label, model in models.items():
                speed[name][label] = _timed(lambda x, m=model, t=texts: m.encode(t(x)), items)
    batch = shuffled[:ingest_texts]
    ingest = {}
    for label, model in models.items():
        started = time.perf_counter()
        model.encode(batch)
        ingest[label] = len(batch) / (time.perf_counter() - started)

    vectors = {label: model.encode(paragraphs) for label, model in models.items()}
    queries = {label: model.encode(asked) for label, model in models.items()}
    cosine = np.concatenate([(vectors["fp32"] * vectors["bf16"]).sum(1), (queries["fp32"] * queries["bf16"]).sum(1)])
    gold_ids = np.array([gold[q] for q in asked])
    top5 = {}
    retrieval = {}
    for label, (qv, pv) in {"fp32": ("fp32", "fp32"), "bf16": ("bf16", "bf16"),
                            "bf16 queries on an fp32 corpus": ("bf16", "fp32")}.items():
        top = np.argsort(-(queries[qv] @ vectors[pv].T), axis=1)[:, :5]
        top5[label] = top
        retrieval[label] = {"recall_at_5": round(float((top == gold_ids[:, None]).any(1).mean()), 4),
                            "recall_at_1": round(float((top[:, 0] == gold_ids).mean()), 4),
                            "same_top5_as_fp32": round(float((top == top5["fp32"]).all(1).mean()), 4)}
    rows = [{"shape": name, "unit": "p50 ms/call", "fp32": round(v["fp32"], 1), "bf16": round(v["bf16"], 1),
             "bf16 speed-up": round(v["fp32"] / v["bf16"], 2)} for name, v in speed.items()]
    rows.append({"shape": f"ingest ({ingest_texts} paragraphs)", "unit": "texts/s", "fp32": round(ingest["fp32"], 1),
                 "bf16": round(ingest["bf16"], 1), "bf16 speed-up": round(ingest["bf16"] / ingest["fp32"], 2)})
    print(table(rows, list(rows[0])))
    retrieval_rows = [{"setting": k, **v} for k, v in retrieval.items()]
    print(table(retrieval_rows, list(retrieval_rows[0])))
    print(f"cosine fp32 vs bf16 over {len(cosine)} vectors: min {cosine.min():.6f}, mean {cosine.mean():.6f}")
    payload = {"benchmark": "embed_precision", "machine": machine(),
               "parameters": {"squad": str(squad), "questions": len(asked), "calls": calls,
                              "ingest_texts": ingest_texts, "seed": seed},
               "results": {"speed_ms_p50": speed, "ingest_texts_per_s": ingest, "retrieval": retrieval,
                           "cosine": {"min": float(cosine.min()), "p1": float(np.percentile(cosine, 1)),
                                      "mean": float(cosine.mean()), "n": int(len(cosine))}}}
    write_results("embed_precision", payload, rows + retrieval_rows)
    _plot(speed, ingest)
    return payload


def _plot(speed: dict[str, dict[str, float]], ingest: dict[str, float]) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = list(speed)
    y = np.arange(len(names))
    left.barh(y - 0.2, [speed[n]["fp32"] for n in names], height=0.4, label="fp32")
    left.barh(y + 0.2, [speed[n]["bf16"] for n in names], height=0.4, label="bf16")
    left.set_yticks(y, names)
    left.set_xlabel("p50 ms per call (2 cores)")
    left.legend()
    right.bar(list(ingest), list(ingest.values()), color=["C0", "C1"])
    right.set_ylabel("SQuAD paragraphs encoded / s")
    right.set_title("ingest-sized batches")
    fig.tight_layout()
    save_plot(fig, "embed_precision")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad", type=Path, default=Path("../shared/data/squad/dev-v1.1.json"))
    parser.add_argument("--questions", type=int, default=2000, help="SQuAD questions for the retrieval check")
    parser.add_argument("--calls", type=int, default=60, help="timed calls per shape")
    parser.add_argument("--ingest-texts", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run(args.squad, args.questions, args.calls, args.ingest_texts, args.seed)


if __name__ == "__main__":
    main()
