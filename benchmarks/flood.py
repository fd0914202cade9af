"""Flood filter calibration: what each rule costs honest queries and lets attacks through, and whether its verdict
on a passage depends on how many passages were asked for.

    bragserve bench flood [--data ../shared/data]

In process, no server (about 4 minutes): the flood filter's own grouping (``find_floods``) applied as
DefendedRetriever applies it: floods are found among the first ``pool`` (15) dense hits of each query, ``pool + k``
are fetched, a later hit close to a flood's member joins it, and the top k (5) is what is left. Rules: the
(similarity, min_documents) grid at the shipped pool with every linked group counted (the shipped rule), the core
rule (a group counts only with min_documents texts pairwise at ``core_similarity``) at several cores,
``action = "keep_one"`` for the shipped setting, the shipped setting at other pools, and the rule before the pool
(``3k``: the first 3 x k hits compared, so 9 at k = 3 and 60 at k = 20). Every document is one vector (the
benchmark texts are one chunk each at the default chunking, or nearly), and no other defence runs, so the numbers
isolate this one filter.

- **Attacks** (bench poison's targets: 50 per GMTP set, NQ / HotpotQA / MS MARCO): for each shipped attack, a corpus of
  the clean documents (gold passages and 2,067 SQuAD paragraphs) plus that attack's texts for every target, 5 per
  target as PoisonedRAG plants them: query-as-poison (question + adversarial text), paraphrase (the adversarial text
  alone), GMTP's Contriever-HotFlip documents. ASR: a poison of the query's own target in the top k; SR: a gold
  passage in the top k. Our own HotFlip is not here (it needs a gradient search per poison; bench poison runs it).
- **Honest queries**, on the clean documents alone: the first SQuAD question of every paragraph (gold = its
  paragraph), and bench growth's re-ask test questions for seeds 0-2 on the SQuAD paragraphs alone (the corpus the
  growth benchmark serves), whose gold paragraphs sit in SQuAD's densest articles. Also their recall at k = 20, and
  **lost at 20**: the share of queries one of whose k = 3 passages is not among the same query's k = 20 passages
  (POST /writebacks checks a client's citations among 20; a passage served as clean at k = 3 and left out as a flood
  at k = 20 is refused there).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, machine, pyplot, save_plot, table, write_results

GRID = [(s, m) for s in (0.7, 0.75, 0.8, 0.85) for m in (3, 4)]
SHIPPED = (0.75, 3)  # with the policy's core_similarity (0 in every shipped policy)
CORES = (0.75, 0.78, 0.8, 0.82, 0.85)
ATTACKS = ("query_as_poison", "paraphrase", "hotflip_contriever")
POOLS = (5, 10, 15, 20, 30)
DEPTH = 60  # hits ranked per query: the 3k rule compares 60 at k = 20


@dataclass(frozen=True)
class Rule:
    similarity: float
    min_documents: int
    pool: int | None  # None: the rule before the pool, 3 x k hits compared and none joined later
    keep_one: bool = False
    core: float = 0.0  # flood.core_similarity: 0 = every linked group counts

    @property
    def label(self) -> str:
        pool = "3k" if self.pool is None else f"pool {self.pool}"
        core = f" core {self.core}" if self.core else ""
        return f"{self.similarity}/{self.min_documents} {pool}{core}" + (" keep_one" if self.keep_one else "")


def poisons_of(target: dict, attack: str, per_target: int) -> list[str]:
    texts = target["poisoned_texts"][:per_target]
    if attack == "query_as_poison":
        return [target["query"] + "." + x for x in texts]
    if attack == "paraphrase":
        return list(texts)
    return list(target["poisoned_docs"][:per_target])


def filtered_topk(order: np.ndarray, vectors: np.ndarray, rule: Rule | None, k: int) -> list[int]:
    """The top k left after the flood filter, as DefendedRetriever applies it (one document per vector)."""
    from bragserve.retrieval.flood import find_floods

    if rule is None:
        return [int(c) for c in order[:k]]
    cands = [int(c) for c in order[:3 * k if rule.pool is None else rule.pool + k]]
    removed: set[int] = set()
    for flood in find_floods([str(c) for c in cands], vectors[cands], rule.similarity, rule.min_documents, rule.pool,
                             rule.core):
        members = [cands[j] for j in flood.members]
        removed |= set(members[1:] if rule.keep_one else members)  # members come in candidate (rank) order
    return [c for c in cands if c not in removed][:k]


def ranked(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Each query's best DEPTH documents, best first."""
    return np.argsort(-(queries @ vectors.T), axis=1)[:, :DEPTH]


def hits(order: np.ndarray, vectors: np.ndarray, wanted: list[set[int]], k: int, rules: list[Rule | None]) -> dict:
    """Per rule (None: unfiltered), the share of queries with a wanted document in the top k."""
    return {label(rule): round(100 * float(np.mean([bool(set(filtered_topk(o, vectors, rule, k)) & w)
                                                    for o, w in zip(order, wanted)])), 1) for rule in rules}


def lost_at_20(order: np.ndarray, vectors: np.ndarray, rules: list[Rule | None]) -> dict:
    """Per rule, the share of queries one of whose 3 passages is not among its 20."""
    return {label(rule): round(100 * float(np.mean([not set(filtered_topk(o, vectors, rule, 3))
                                                    <= set(filtered_topk(o, vectors, rule, 20)) for o in order])), 1)
            for rule in rules}


def label(rule: Rule | None) -> str:
    return "none" if rule is None else rule.label


def main(argv: list[str] | None = None) -> dict:
    from bragserve.policy.defences import FloodPolicy

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--per-set", type=int, default=50)
    parser.add_argument("--per-target", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--pool", type=int, default=FloodPolicy().pool, help="Best hits floods are found among.")
    args = parser.parse_args(argv)
    from benchmarks.growth import load_squad, streams
    from benchmarks.poison import load
    from bragserve.embedding import Embedder

    started = time.perf_counter()
    rules: list[Rule | None] = [None, *(Rule(s, m, args.pool) for s, m in GRID),
                                *(Rule(*SHIPPED, args.pool, core=c) for c in CORES), Rule(*SHIPPED, args.pool, True),
                                *(Rule(*SHIPPED, p) for p in POOLS if p != args.pool), Rule(*SHIPPED, None)]
    policies = {Rule(*SHIPPED, args.pool, core=FloodPolicy().core_similarity): " (shipped)"}
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
        order = ranked(vectors, queries)
        results["attacks"][attack] = {"asr": hits(order, vectors, poison_of, args.k, rules),
                                      "sr": hits(order, vectors, gold_of, args.k, rules)}
        print(f"{attack}: done", flush=True)

    docs, pairs, questions = load_squad(args.data / "squad/dev-v1.1.json")
    firsts = {}
    for q in questions:
        firsts.setdefault(q["doc"], q)
    by_doc = {d["id"]: d["text"] for d in docs}
    benign = [q for q in firsts.values() if by_doc[q["doc"]] in position]
    squad_vecs = embedder.encode([d["text"] for d in docs]).astype(np.float32)
    index_of = {d["id"]: i for i, d in enumerate(docs)}
    reasks = [q for seed in (0, 1, 2) for q in streams(pairs, questions, 200, 100, seed)[1]]
    honest = {  # name: (corpus vectors, query vectors, gold per query)
        "squad_first_questions": (clean_vecs, embedder.encode([q["question"] for q in benign]).astype(np.float32),
                                  [{position[by_doc[q["doc"]]]} for q in benign]),
        "growth_reasks": (squad_vecs, embedder.encode([q["question"] for q in reasks]).astype(np.float32),
                          [{index_of[q["doc"]]} for q in reasks])}
    for name, (vectors, qv, gold) in honest.items():
        order = ranked(vectors, qv)
        results["honest"][name] = {"recall": hits(order, vectors, gold, args.k, rules),
                                   "recall_at_20": hits(order, vectors, gold, 20, rules),
                                   "lost_at_20": lost_at_20(order, vectors, rules)}
    counts = {"targets_per_attack": len(targets), "clean_documents": len(clean),
              "squad_first_questions": len(benign), "growth_reasks": len(reasks)}

    rows = []
    for rule in rules:
        name = label(rule)
        row = {"rule": name + policies.get(rule, "")}
        for attack in ATTACKS:
            row[f"{attack} ASR"] = results["attacks"][attack]["asr"][name]
            row[f"{attack} SR"] = results["attacks"][attack]["sr"][name]
        squad, reask = results["honest"]["squad_first_questions"], results["honest"]["growth_reasks"]
        row["SQuAD SR"] = squad["recall"][name]
        row[f"growth re-ask R@{args.k}"] = reask["recall"][name]
        row["SQuAD SR@20"] = squad["recall_at_20"][name]
        row["re-ask R@20"] = reask["recall_at_20"][name]
        row["lost at 20 % (SQuAD / re-ask)"] = f"{squad['lost_at_20'][name]} / {reask['lost_at_20'][name]}"
        rows.append(row)
    print(table(rows, list(rows[0])))
    payload = {"benchmark": "flood", "machine": machine(), "seconds": round(time.perf_counter() - started, 1),
               "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "candidates_fetched": args.pool + args.k, **counts},
               "results": results}
    write_results("flood", payload, rows)
    plot(rows, args.k)
    return payload


def plot(rows: list[dict], k: int) -> None:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, honest in ((a, "SQuAD SR"), (b, f"growth re-ask R@{k}")):
        for row in rows:
            ax.scatter(row["paraphrase ASR"], row[honest], color="C3" if "shipped" in row["rule"] else "C0")
            ax.annotate(row["rule"].split(" (")[0], (row["paraphrase ASR"], row[honest]), fontsize=7)
        ax.set(xlabel="paraphrase ASR % (5 planted per target)", ylabel=f"{honest} % (honest queries)",
               title=f"flood rules: {honest} vs paraphrase ASR")
    save_plot(fig, "flood")


if __name__ == "__main__":
    main()
