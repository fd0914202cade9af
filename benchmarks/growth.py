"""Growth benchmark: does the write-back loop make later answers better, and what does it let in?

    bragserve bench growth --squad ../shared/data/squad/dev-v1.1.json [--quick]

Corpus: the SQuAD v1.1 dev paragraphs (one document each), ingested once and copied for every system.
Streams (seeded): SQuAD has 473 paragraphs where two different questions share the same gold answer. One of each
pair goes into the *train* stream, which flows through POST /query with write-back; the other is a *re-ask* test
question (the same fact in other words). *Unrelated* test questions come from paragraphs no train question touches.
Both test sets are asked at checkpoints along the stream, without write-back, so measuring never grows the corpus.

Systems, each on its own copy of the corpus and its own live server:
- static: no write-back (its numbers do not change along the stream: measured once);
- naive: every answer is stored (POST /documents), as the Bidirectional RAG baseline does;
- gated: our write-back gates (policies/open.toml: gates on, poisoning defences off);
- gated+defences: gates plus the recommended defences (policies/default.toml).
An adversarial run repeats naive / gated / gated+defences with PoisonedRAG's query-as-poison texts for some NQ
targets in the corpus and those targets making up 5% of the train stream.

Metrics per checkpoint and test set: the Bidirectional RAG "coverage" (top-1 cosine distance < 0.4, reported for
comparability only), gold-paragraph recall@5 (strictly, and counting a write-back derived from the gold paragraph),
SQuAD exact match / F1 / gold-answer-contained for the extractive answer, self-generated share of the top-k,
exposure Gini (retrievals per document over the test queries, zeros included); per system: documents added,
decisions, derivation depths, pollution (write-back sentences no clean ancestor entails, checked with the NLI model
against the ingested ancestors) and poisoned write-backs (any poison among the ancestors).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import string
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import ROOT, Server, machine, pyplot, save_plot, table, write_results

POLICIES = {"static": "open", "naive": "open", "gated": "open", "gated+defences": "default"}


# -- data ------------------------------------------------------------------------------------------------------

def load_squad(path: Path) -> tuple[list[dict], list[tuple[dict, dict]], list[dict]]:
    """(paragraph documents, same-answer question pairs, every question)."""
    data = json.loads(path.read_text())["data"]
    docs, pairs, questions = [], [], []
    for a, article in enumerate(data):
        for p, para in enumerate(article["paragraphs"]):
            doc_id = f"squad-a{a}p{p}"
            docs.append({"id": doc_id, "text": para["context"], "metadata": {"article": article["title"]}})
            by_answer: dict[str, list[dict]] = defaultdict(list)
            for qa in para["qas"]:
                q = {"id": qa["id"], "question": qa["question"], "answers": [x["text"] for x in qa["answers"]],
                     "doc": doc_id}
                questions.append(q)
                by_answer[normalize(qa["answers"][0]["text"])].append(q)
            for group in by_answer.values():
                if len(group) >= 2:
                    pairs.append((group[0], group[1]))
    return docs, pairs, questions


def streams(pairs: list[tuple[dict, dict]], questions: list[dict], n_train: int, n_test: int,
            seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    rng = random.Random(seed)
    pairs = pairs[:]
    rng.shuffle(pairs)
    chosen = pairs[:max(n_train, n_test)]
    train = [a for a, _ in chosen[:n_train]]
    reask = [b for _, b in chosen[:n_test]]
    touched = {q["doc"] for q in train}
    unrelated = [q for q in questions if q["doc"] not in touched]
    rng.shuffle(unrelated)
    return train, reask, unrelated[:n_test]


def poisons(data: Path, n_targets: int, per_target: int, seed: int) -> tuple[list[dict], list[dict]]:
    """PoisonedRAG query-as-poison documents for NQ targets, and the target questions."""
    rows = list(json.loads((data / "attacks/poisonedrag/nq.json").read_text()).values())
    random.Random(seed).shuffle(rows)
    docs, targets = [], []
    for t, row in enumerate(rows[:n_targets]):
        for i, adv in enumerate(row["adv_texts"][:per_target]):
            docs.append({"id": f"poison-{row['id']}-{i}", "text": f"{row['question']}. {adv}"})
        targets.append({"id": row["id"], "question": row["question"], "answers": [row["correct answer"]],
                        "incorrect": row["incorrect answer"], "doc": None, "adversarial": True})
    return docs, targets


# -- SQuAD scoring (the official normalisation) -----------------------------------------------------------------

def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if not p or not g or same == 0:
        return float(not p and not g)
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def gini(counts: list[int]) -> float:
    x = np.sort(np.asarray(counts, dtype=float))
    if len(x) == 0 or x.sum() == 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


# -- one system ----------------------------------------------------------------------------------------------------

class Run:
    """One system on its own corpus copy and live server: feeds the train stream, measures at checkpoints."""

    def __init__(self, name: str, http: httpx.Client, n_base_docs: int) -> None:
        self.name, self.http, self.n_base = name, http, n_base_docs
        self.derived: dict[str, set[str]] = {}  # write-back id -> ancestor doc ids
        self.decisions: Counter[str] = Counter()
        self.depths: Counter[int] = Counter()
        self.added: list[str] = []
        self.train_ms: list[float] = []

    def feed(self, q: dict, k: int) -> None:
        started = time.perf_counter()
        if self.name == "naive":
            r = self.http.post("/query", json={"query": q["question"], "k": k, "writeback": False})
            r.raise_for_status()
            body = r.json()
            if body["answer"]:
                doc_id = f"naive-{len(self.added)}"
                cited = {c["doc_id"] for c in body["citations"]}
                text = " ".join(sentence["text"] for sentence in body["answer_sentences"])  # without [c…] markers
                w = self.http.post("/documents", json={"documents": [{"id": doc_id, "text": text,
                                                                       "metadata": {"query": q["question"]}}]})
                w.raise_for_status()
                self.added.append(doc_id)
                self.derived[doc_id] = cited | {a for c in cited for a in self.derived.get(c, ())}
                self.decisions["accepted"] += 1
        else:
            r = self.http.post("/query", json={"query": q["question"], "k": k, "writeback": True})
            r.raise_for_status()
            outcome = r.json().get("writeback") or {"decision": "skipped", "reason": "no_answer"}
            self.decisions[f"{outcome['decision']}:{outcome.get('reason')}"] += 1
            if outcome["decision"] == "accepted":
                self.added.append(outcome["document_id"])
                self.depths[outcome.get("depth") or 1] += 1
        self.train_ms.append((time.perf_counter() - started) * 1000)

    def ancestors(self, doc_id: str) -> set[str]:
        if doc_id not in self.derived:
            r = self.http.get(f"/documents/{doc_id}/lineage")
            self.derived[doc_id] = {a["id"] for a in r.json()["ancestors"]} if r.status_code == 200 else set()
        return self.derived[doc_id]

    def is_generated(self, passage: dict) -> bool:
        return passage["source"] == "writeback" or passage["doc_id"].startswith("naive-")

    def measure(self, tests: list[dict], k: int, exposure: Counter[str], generate: bool = True) -> dict:
        """``generate=False`` measures retrieval alone (the answer metrics are then 0): for a slow generator."""
        rows = []
        for q in tests:
            r = self.http.post("/query", json={"query": q["question"], "k": k, "writeback": False,
                                               "generate": generate})
            r.raise_for_status()
            body = r.json()
            passages = body["passages"]
            docs = [p["doc_id"] for p in passages]
            exposure.update(docs)
            answer = body["answer"] or ""
            derived = any(q["doc"] in self.ancestors(p["doc_id"]) for p in passages if self.is_generated(p))
            rows.append({
                "coverage": bool(passages) and passages[0]["score"] > 0.6,
                "recall": q["doc"] in docs, "recall_derived": q["doc"] in docs or derived,
                "em": max(float(normalize(answer) == normalize(g)) for g in q["answers"]),
                "f1": max(f1(answer, g) for g in q["answers"]),
                "contains": any(normalize(g) in normalize(answer) for g in q["answers"]),
                "generated_share": sum(self.is_generated(p) for p in passages) / max(len(passages), 1)})
        return {m: round(100 * float(np.mean([row[m] for row in rows])), 2) for m in rows[0]}

    def pollution(self, nli, poison_ids: set[str]) -> dict:
        """Write-backs holding a sentence no clean (ingested, non-poison) ancestor entails; poisoned write-backs."""
        from bragserve.gates.entailment import entailment
        from bragserve.text import split_sentences

        polluted, poisoned, checked = [], [], 0
        for doc_id in self.added:
            r = self.http.get(f"/documents/{doc_id}")
            if r.status_code != 200:
                continue
            ancestors = self.ancestors(doc_id)
            if ancestors & poison_ids:
                poisoned.append(doc_id)
            clean = [a for a in ancestors if a.startswith("squad-")]
            premises = [c["text"] for a in clean for c in self.http.get(f"/documents/{a}").json()["chunks"]]
            sentences = [s.text for s in split_sentences(r.json()["text"])]
            checked += 1
            if not premises:
                polluted.append(doc_id)
                continue
            probs, _ = entailment(nli, [(p, s) for s in sentences for p in premises])  # a copied sentence: 1.0
            best = probs.reshape(len(sentences), len(premises)).max(axis=1)
            if (best < 0.5).any():
                polluted.append(doc_id)
        return {"write_backs_checked": checked, "polluted": len(polluted), "polluted_ids": polluted[:20],
                "poisoned": len(poisoned), "poisoned_ids": poisoned[:20]}


def run_system(name: str, base: Path, work: Path, train: list[dict], tests: dict[str, list[dict]],
               checkpoints: list[int], k: int, nli, extra_docs: list[dict], n_base: int) -> dict:
    index = work / name.replace("+", "_")
    shutil.copytree(base, index)
    policy = ROOT / "policies" / f"{POLICIES[name]}.toml"
    out: dict = {"policy": str(policy.relative_to(ROOT)), "checkpoints": {}}
    with Server(index, args=("--policy", str(policy))) as server, \
            httpx.Client(base_url=server.url, timeout=600) as http:
        if extra_docs:
            r = http.post("/documents", json={"documents": extra_docs})
            r.raise_for_status()
            out["poison_ingest"] = Counter(d["status"] for d in r.json()["documents"])
        run = Run(name, http, n_base)
        fed = 0
        for point in checkpoints:
            while fed < point:
                run.feed(train[fed], k)
                fed += 1
            exposure: Counter[str] = Counter()
            measured = {setting: run.measure(qs, k, exposure) for setting, qs in tests.items()}
            total_docs = n_base + len(run.added)
            measured["gini"] = round(gini(list(exposure.values()) + [0] * (total_docs - len(exposure))), 4)
            measured["documents_added"] = len(run.added)
            out["checkpoints"][str(point)] = measured
            print(f"  {name:<15} after {point:>4} train queries: " + ", ".join(
                f"{s} R@5 {m['recall']:.1f} F1 {m['f1']:.1f}" for s, m in measured.items() if isinstance(m, dict))
                + f", added {len(run.added)}", flush=True)
        out.update({"documents_added": len(run.added), "decisions": dict(run.decisions),
                    "depths": dict(run.depths), "train_query_ms_p50": round(float(np.median(run.train_ms)), 1)
                    if run.train_ms else None,
                    "pollution": run.pollution(nli, {d["id"] for d in extra_docs})})
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/data/squad/dev-v1.1.json")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data",
                        help="Data root (attacks/poisonedrag/nq.json for the adversarial run).")
    parser.add_argument("--quick", action="store_true", help="1 seed, 200 train / 100 test queries.")
    parser.add_argument("--seeds", default="0,1,2")
    # 3 seeds of 200 train / 100 test queries take an hour on 2 cores (every train query runs the gates).
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--checkpoints", type=int, default=2, help="Measurement points after the start.")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--no-adversarial", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.train, args.test, args.checkpoints = "0", 200, 100, 2
    seeds = [int(s) for s in args.seeds.split(",")]
    checkpoints = [round(i * args.train / args.checkpoints) for i in range(args.checkpoints + 1)]

    from bragserve.gates.nli import NLIModel

    nli = NLIModel("bundled")
    docs, pairs, questions = load_squad(args.squad)
    started = time.perf_counter()
    results: dict = {"seeds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = work / "base"
        with Server(base, args=("--policy", str(ROOT / "policies/open.toml"))) as server, \
                httpx.Client(base_url=server.url, timeout=600) as http:
            for i in range(0, len(docs), 64):
                http.post("/documents", json={"documents": docs[i:i + 64]}).raise_for_status()
            n_base = http.get("/readyz").json()["documents"]["ingested"]["active"]
        for seed in seeds:
            train, reask, unrelated = streams(pairs, questions, args.train, args.test, seed)
            tests = {"reask": reask, "unrelated": unrelated}
            per: dict = {}
            for name in ("static", "naive", "gated", "gated+defences"):
                points = [0] if name == "static" else checkpoints
                per[name] = run_system(name, base, work / f"s{seed}", train, tests, points, args.k, nli, [], n_base)
            if not args.no_adversarial:
                n_adv = max(1, round(0.05 * args.train))
                poison_docs, targets = poisons(args.data, n_adv, 5, seed)
                mixed = train[:args.train - n_adv]
                rng = random.Random(seed)
                for t in targets:
                    mixed.insert(rng.randrange(len(mixed) + 1), t)
                for name in ("naive", "gated", "gated+defences"):
                    per[f"{name} (5% adversarial)"] = run_system(
                        name, base, work / f"s{seed}adv", mixed, tests, [0, args.train], args.k, nli,
                        poison_docs, n_base)
            results["seeds"][str(seed)] = per
    results["seconds"] = round(time.perf_counter() - started, 1)
    summary = summarise(results, checkpoints[-1])
    print(table(summary, list(summary[0])))
    payload = {"benchmark": "growth", "machine": machine(),
               "parameters": {"seeds": seeds, "train": args.train, "test": args.test, "checkpoints": checkpoints,
                              "k": args.k, "squad": str(args.squad), "pairs_available": len(pairs),
                              "policies": POLICIES, "adversarial_share": 0 if args.no_adversarial else 0.05},
               "summary": summary, "results": results}
    name = "growth_quick" if args.quick else "growth"
    write_results(name, payload, summary)
    plot(results, checkpoints, name)
    return payload


def summarise(results: dict, last: int) -> list[dict]:
    """Mean over seeds at the last checkpoint (static: its only one)."""
    rows = []
    systems = list(next(iter(results["seeds"].values())))
    for system in systems:
        runs = [per[system] for per in results["seeds"].values()]
        points = [r["checkpoints"].get(str(last)) or r["checkpoints"]["0"] for r in runs]

        def mean(setting: str, metric: str, points: list[dict] = points) -> float:
            return round(float(np.mean([p[setting][metric] for p in points])), 1)

        rows.append({
            "system": system, "reask R@5": mean("reask", "recall"),
            "reask R@5 derived": mean("reask", "recall_derived"),
            "reask F1": mean("reask", "f1"), "reask contains": mean("reask", "contains"),
            "unrel R@5": mean("unrelated", "recall"), "unrel F1": mean("unrelated", "f1"),
            "coverage": mean("reask", "coverage"), "gen share": mean("reask", "generated_share"),
            "Gini": round(float(np.mean([p["gini"] for p in points])), 3),
            "added": round(float(np.mean([r["documents_added"] for r in runs])), 1),
            "polluted": sum(r["pollution"]["polluted"] for r in runs),
            "poisoned": sum(r["pollution"]["poisoned"] for r in runs)})
    return rows


def plot(results: dict, checkpoints: list[int], name: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for system in ("static", "naive", "gated", "gated+defences"):
        runs = [per[system] for per in results["seeds"].values() if system in per]
        if not runs:
            continue
        xs = checkpoints

        def series(metric: str, setting: str = "reask", runs: list[dict] = runs, xs: list[int] = xs) -> list[float]:
            return [float(np.mean([(r["checkpoints"].get(str(x)) or r["checkpoints"]["0"])[setting][metric]
                                   for r in runs])) for x in xs]

        axes[0].plot(xs, series("recall"), marker="o", label=system)
        axes[1].plot(xs, series("f1"), marker="o", label=system)
        axes[2].plot(xs, [float(np.mean([(r["checkpoints"].get(str(x)) or r["checkpoints"]["0"])["documents_added"]
                                         for r in runs])) for x in xs], marker="o", label=system)
    for ax, title in zip(axes, ("re-ask recall@5 (%)", "re-ask answer F1 (%)", "documents added")):
        ax.set_xlabel("train queries")
        ax.set_title(title)
        ax.legend(fontsize=8)
    save_plot(fig, name)


if __name__ == "__main__":
    main()
