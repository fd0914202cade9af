"""Flood filter calibration: what each (similarity, min_documents) costs honest queries and lets attacks through.

    bragserve bench flood [--data ../shared/data]

In process, no server (about 4 minutes): the flood filter's own grouping (``find_floods``) applied to the first
``candidates`` (15 = 3 x k) dense hits of each query, with ``action = "remove"`` and, for the shipped setting, also
``keep_one``; the top k (5) is what is left. Every document is one vector (the benchmark texts are one chunk each
at the default chunking, or nearly), and no other defence runs, so the numbers isolate this one filter.

- **Attacks** (bench poison's targets: 50 per GMTP set, NQ / HotpotQA / MS MARCO): for each shipped attack, a corpus of
  the clean documents (gold passages and 2,067 SQuAD paragraphs) plus that attack's texts for every target, 5 per
  target as PoisonedRAG plants them: query-as-poison (question + adversarial text), paraphrase (the adversarial text
  alone), GMTP's Contriever-HotFlip documents. ASR: a poison of the query's own target in the top k; SR: a gold
  passage in the top k. Our own HotFlip is not here (it needs a gradient search per poison; bench poison runs it).
- **Honest queries**, on the clean documents alone: the first SQuAD question of every paragraph (gold = its
  paragraph), and bench growth's re-ask test questions for seeds 0-2 on the SQuAD paragraphs alone (the corpus the
  growth benchmark serves), whose gold paragraphs sit in SQuAD's densest articles.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, machine, pyplot, save_plot, table, write_results

GRID = [(s, m) for s in (0.7, 0.75, 0.8, 0.85) for m in (3, 4)]
SHIPPED = (0.75, 3)
ATTACKS = ("query_as_poison", "paraphrase", "hotflip_contriever")


def poisons_of(target: dict, attack: str, per_target: int) -> list[str]:
    texts = target["poisoned_texts"][:per_target]
    if attack == "query_as_poison":
        return [target["query"] + "." + x for x in texts]
    if attack == "paraphrase":
        return list(texts)
    return list(target["poisoned_docs"][:per_target])


def filtered_topk(candidates: np.ndarray, vectors: np.ndarray, similarity: float, min_documents: int, k: int,
                  keep_one: bool = False) -> list[int]:
    """The top k left after the flood filter, as DefendedRetriever applies it (one document per vector)."""
    from bragserve.retrieval.flood import find_floods

    cands = [int(c) for c in candidates]
    removed: set[int] = set()
    for flood in find_floods([str(c) for c in cands], vectors[cands], similarity, min_documents):
        members = [cands[j] for j in flood.members]
        removed |= set(members[1:] if keep_one else members)  # members come in candidate (rank) order
    return [c for c in cands if c not in removed][:k]


def hits(vectors: np.ndarray, queries: np.ndarray, wanted: list[set[int]], candidates: int, k: int,
         rules: list[tuple[float, int, bool]]) -> dict:
    """Per rule (and unfiltered), the share of queries with a wanted document in the top k."""
    order = np.argsort(-(queries @ vectors.T), axis=1)[:, :candidates]
    out = {"none": round(100 * float(np.mean([bool(set(o[:k].tolist()) & w) for o, w in zip(order, wanted)])), 1)}
    for sim, m, keep in rules:
        got = [bool(set(filtered_topk(o, vectors, sim, m, k, keep)) & w) for o, w in zip(order, wanted)]
        out[label(sim, m, keep)] = round(100 * float(np.mean(got)), 1)
    return out


def label(sim: float, m: int, keep_one: bool = False) -> str:
    return f"{sim}/{m}" + (" keep_one" if keep_one else "")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--per-set", type=int, default=50)
    parser.add_argument("--per-target", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--candidates", type=float, default=3.0, help="Candidates compared = this x k.")
    args = parser.parse_args(argv)
    from benchmarks.growth import load_squad, streams
    from benchmarks.poison import load
    from bragserve.embedding import Embedder

    started = time.perf_counter()
    n_cand = int(round(args.candidates * args.k))
    rules = [(s, m, False) for s, m in GRID] + [(*SHIPPED, True)]
    embedder = Embedder("bundled")
    targets, clean = load(args.data, args.per_set, 2067, 0)
    clean_vecs = embedder.encode(clean).astype(np.float32)
    position = {text: i for i, text in enumerate(clean)}
    queries = embedder.encode([t["query"] for t in targets]).astype(np.float32)
    results: dict = {"attacks": {}, "honest": {}}
    for attack in ATTACKS:
        texts, owner = [], []
        for i, t in enumerate(targets):
            for p in poisons_of(t, attack, args.per_target):
                texts.append(p)
                owner.append(i)
        vectors = np.vstack([clean_vecs, embedder.encode(texts).astype(np.float32)])
        poison_of = [{len(clean) + j for j, o in enumerate(owner) if o == i} for i in range(len(targets))]
        gold_of = [{position[g] for g in t["gt_text"] if g in position} for t in targets]
        results["attacks"][attack] = {"asr": hits(vectors, queries, poison_of, n_cand, args.k, rules),
                                      "sr": hits(vectors, queries, gold_of, n_cand, args.k, rules)}
        print(f"{attack}: done", flush=True)

    docs, pairs, questions = load_squad(args.data / "squad/dev-v1.1.json")
    firsts = {}
    for q in questions:
        firsts.setdefault(q["doc"], q)
    by_doc = {d["id"]: d["text"] for d in docs}
    benign = [q for q in firsts.values() if by_doc[q["doc"]] in position]
    bq = embedder.encode([q["question"] for q in benign]).astype(np.float32)
    results["honest"]["squad_first_questions"] = hits(clean_vecs, bq, [{position[by_doc[q["doc"]]]} for q in benign],
                                                      n_cand, args.k, rules)
    squad_vecs = embedder.encode([d["text"] for d in docs]).astype(np.float32)
    index_of = {d["id"]: i for i, d in enumerate(docs)}
    reasks = [q for seed in (0, 1, 2) for q in streams(pairs, questions, 200, 100, seed)[1]]
    rq = embedder.encode([q["question"] for q in reasks]).astype(np.float32)
    results["honest"]["growth_reasks"] = hits(squad_vecs, rq, [{index_of[q["doc"]]} for q in reasks], n_cand,
                                              args.k, rules)
    counts = {"targets_per_attack": len(targets), "clean_documents": len(clean),
              "squad_first_questions": len(benign), "growth_reasks": len(reasks)}

    rows = []
    for name in ["none"] + [label(*r) for r in rules]:
        row = {"rule": name + (" (shipped)" if name == label(*SHIPPED) else "")}
        for attack in ATTACKS:
            row[f"{attack} ASR"] = results["attacks"][attack]["asr"][name]
            row[f"{attack} SR"] = results["attacks"][attack]["sr"][name]
        row["SQuAD SR"] = results["honest"]["squad_first_questions"][name]
        row["growth re-ask R@5"] = results["honest"]["growth_reasks"][name]
        rows.append(row)
    print(table(rows, list(rows[0])))
    payload = {"benchmark": "flood", "machine": machine(), "seconds": round(time.perf_counter() - started, 1),
               "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "candidates_compared": n_cand, **counts},
               "results": results}
    write_results("flood", payload, rows)
    plot(rows)
    return payload


def plot(rows: list[dict]) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, honest in ((a, "SQuAD SR"), (b, "growth re-ask R@5")):
        for row in rows:
            ax.scatter(row["paraphrase ASR"], row[honest], color="C3" if "shipped" in row["rule"] else "C0")
            ax.annotate(row["rule"].replace(" (shipped)", "*"), (row["paraphrase ASR"], row[honest]), fontsize=7)
        ax.set(xlabel="paraphrase ASR % (5 planted per target)", ylabel=f"{honest} % (honest queries)",
               title=f"flood rules: {honest} vs paraphrase ASR")
    save_plot(fig, "flood")


if __name__ == "__main__":
    main()
