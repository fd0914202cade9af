"""How much *could* write-back help SQuAD re-asks? The ceiling behind `bragserve bench growth`'s negative result.

    bragserve bench growth-ceiling --squad ../shared/data/squad/dev-v1.1.json

The growth benchmark found gated write-back within a point of a static corpus on re-asks. This asks whether that is
the gates' fault or the data's, without a server: it builds the best write-back loop an extractive generator could
have and measures it with the same embedder and an exact FAISS index.

For every SQuAD same-answer pair (train question q1, re-ask q2, one gold paragraph and one gold answer):
- *static*: is the gold paragraph in q2's top-k?
- *reachable*: is it in q1's top-k? An extractive answer can only copy what was retrieved, so only then can a
  write-back about it exist.
- *ideal loop*: for every reachable q1, one write-back holding exactly the gold sentence (the sentence of the
  paragraph that contains the answer) is added, accepted without fail. Three ways to index it: its text (what
  bragserve stores), the question and the text (doc2query-style), the question alone. A re-ask counts as found when
  the gold paragraph *or* a write-back derived from it is in its top-k; crowding is measured on the unrelated
  questions (paragraphs no pair touches) and on the gold paragraph's own rank.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.common import ROOT, machine, pyplot, save_plot, table, write_results
from benchmarks.growth import load_squad

VARIANTS = ("answer sentence", "question + answer sentence", "question alone")


def gold_sentence(paragraph: str, answer: str) -> str | None:
    from bragserve.text import split_sentences

    return next((s.text for s in split_sentences(paragraph) if answer.lower() in s.text.lower()), None)


def top_k(index: faiss.Index, vectors: np.ndarray, k: int) -> np.ndarray:
    return index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/data/squad/dev-v1.1.json")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--unrelated", type=int, default=1000, help="Unrelated questions checked for crowding.")
    args = parser.parse_args(argv)

    from bragserve.embedding import Embedder

    started = time.perf_counter()
    embedder = Embedder("bundled", batch_size=64)
    docs, pairs, questions = load_squad(args.squad)
    ids = [d["id"] for d in docs]
    text = {d["id"]: d["text"] for d in docs}
    paired_docs = {a["doc"] for a, _ in pairs}
    unrelated = [q for q in questions if q["doc"] not in paired_docs][:args.unrelated]
    corpus = embedder.encode([d["text"] for d in docs])
    q1 = embedder.encode([a["question"] for a, _ in pairs])
    q2 = embedder.encode([b["question"] for _, b in pairs])
    qu = embedder.encode([q["question"] for q in unrelated])
    gold = [a["doc"] for a, _ in pairs]

    base = faiss.IndexFlatIP(corpus.shape[1])
    base.add(corpus)
    train_hits = top_k(base, q1, args.k)
    reask_hits = top_k(base, q2, args.k)
    static = np.array([gold[i] in {ids[j] for j in reask_hits[i]} for i in range(len(pairs))])
    reachable = np.array([gold[i] in {ids[j] for j in train_hits[i]} for i in range(len(pairs))])
    unrelated_static = np.mean([q["doc"] in {ids[j] for j in row}
                                for q, row in zip(unrelated, top_k(base, qu, args.k))])
    sentences = [gold_sentence(text[a["doc"]], a["answers"][0]) for a, _ in pairs]
    keep = [i for i in range(len(pairs)) if reachable[i] and sentences[i]]
    representations = {
        "answer sentence": embedder.encode([sentences[i] for i in keep]),
        "question + answer sentence": embedder.encode([f"{pairs[i][0]['question']} {sentences[i]}" for i in keep]),
        "question alone": q1[keep],
    }

    rows = [{"system": "static", "re-ask R@k (gold or derived)": round(100 * static.mean(), 1),
             "re-ask R@k (gold paragraph)": round(100 * static.mean(), 1),
             "misses rescued": 0, "unrelated R@k": round(100 * unrelated_static, 1), "write-backs": 0}]
    misses = ~static
    for name in VARIANTS:
        index = faiss.IndexFlatIP(corpus.shape[1])
        index.add(corpus)
        index.add(np.ascontiguousarray(representations[name], dtype=np.float32))
        labels = ids + [gold[i] for i in keep]
        hits = top_k(index, q2, args.k)
        derived = np.array([gold[i] in {labels[j] for j in hits[i]} for i in range(len(pairs))])
        strict = np.array([gold[i] in {labels[j] for j in hits[i] if j < len(ids)} for i in range(len(pairs))])
        unrel = np.mean([q["doc"] in {labels[j] for j in row if j < len(ids)}
                         for q, row in zip(unrelated, top_k(index, qu, args.k))])
        rows.append({"system": f"ideal loop, indexed by {name}",
                     "re-ask R@k (gold or derived)": round(100 * derived.mean(), 1),
                     "re-ask R@k (gold paragraph)": round(100 * strict.mean(), 1),
                     "misses rescued": int((derived & misses).sum()), "unrelated R@k": round(100 * unrel, 1),
                     "write-backs": len(keep)})
    print(table(rows, list(rows[0])))
    diagnosis = {
        "pairs": len(pairs), "static_misses": int(misses.sum()),
        "train_question_reaches_gold": round(float(reachable.mean()), 4),
        "misses_whose_train_question_reaches_gold": int((misses & reachable).sum()),
        "misses_whose_train_question_also_misses": int((misses & ~reachable).sum()),
        "gold_sentence_found": sum(s is not None for s in sentences)}
    print("diagnosis:", diagnosis)
    payload = {"benchmark": "growth_ceiling", "machine": machine(), "seconds": round(time.perf_counter() - started, 1),
               "parameters": {"squad": str(args.squad), "k": args.k, "unrelated": len(unrelated)},
               "diagnosis": diagnosis}
    write_results("growth_ceiling", payload, rows)
    plot(rows, args.k)
    return payload


def plot(rows: list[dict], k: int) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    names = [r["system"].replace("ideal loop, indexed by ", "ideal: ") for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["re-ask R@k (gold or derived)"] for r in rows], 0.4, label="re-ask (gold or derived)")
    ax.bar(x + 0.2, [r["unrelated R@k"] for r in rows], 0.4, label="unrelated questions")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylim(50, 100)
    ax.set_ylabel(f"recall@{k} (%)")
    ax.set_title("The most an extractive write-back loop could add on SQuAD re-asks")
    ax.legend(fontsize=8)
    save_plot(fig, "growth_ceiling")


if __name__ == "__main__":
    main()
