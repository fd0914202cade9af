"""Poisoning benchmark: every attack against the live service, every defence setting, one run.

    bragserve bench poison --data ../shared/data [--quick]

Corpus: the gold passages (``gt_text``) of GMTP's NQ / HotpotQA / MS MARCO sets, plus
SQuAD dev paragraphs as distractors. Each target query gets poisons of one attack
(round-robin), all ingested through POST /documents:

- query_as_poison: PoisonedRAG black-box, ``question + "." + adversarial text``;
- hotflip / hotflip_spread: gradient-guided token flips against *our* embedder
  (prefix, or scattered through the text), bounded iterations;
- hotflip_contriever: GMTP's shipped HotFlip poisons (optimised for Contriever), a transfer attack;
- paraphrase: the shipped adversarial texts alone (fluent, no copied question).

Defence settings are per-request overrides on one server (none, RAGPart, RAGMask,
both, the echo filter, all, and "policy": no override, what the served policy turns on),
run twice: with the ingest screen's quarantine in force, then after a reviewer approves
every quarantine (the screen off). Retrieval ASR counts a
poison planted for the query itself in its top-k (PoisonedRAG's per-target success);
``asr_any`` also counts poisons planted for other, nearby queries (collateral). Laundering
runs queries with write-back on and counts write-backs citing any poison. NQ is the dev
split on which delta was chosen; HotpotQA and MS MARCO are reported separately as held-out.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from benchmarks.common import machine, pyplot, save_plot, table, write_results

ATTACKS = ["query_as_poison", "hotflip", "hotflip_spread", "hotflip_contriever", "paraphrase"]
SETS = ["nq", "hotpotqa", "msmarco"]
OFF = {"enabled": False}
_SINGLE = {"ragpart": OFF, "ragmask": OFF, "echo": OFF, "flood": OFF, "disfluent_match": OFF}
SETTINGS = {
    "none": _SINGLE,
    "ragpart": {**_SINGLE, "ragpart": {"enabled": True}},
    "ragmask": {**_SINGLE, "ragmask": {"enabled": True}},
    "ragpart+ragmask": {**_SINGLE, "ragpart": {"enabled": True}, "ragmask": {"enabled": True}},
    "echo": {**_SINGLE, "echo": {"enabled": True}},
    "flood": {**_SINGLE, "flood": {"enabled": True, "action": "remove"}},
    "flood_keep_one": {**_SINGLE, "flood": {"enabled": True, "action": "keep_one"}},
    "disfluent_match": {**_SINGLE, "disfluent_match": {"enabled": True}},
    "all": {"ragpart": {"enabled": True}, "ragmask": {"enabled": True}, "echo": {"enabled": True},
            "flood": {"enabled": True}, "disfluent_match": {"enabled": True}},
    # No override: the defences the served policy turns on, as a user who sends none gets them. "all" is every
    # defence at once, which no shipped policy but strict serves (default leaves RAGPart and RAGMask off).
    "policy": {},
}


def load(data: Path, per_set: int, squad_paragraphs: int, seed: int) -> tuple[list[dict], list[str]]:
    targets, clean = [], []
    for name in SETS:
        rows = json.loads((data / "attacks/gmtp/poisonedrag-hotflip-contriever" / f"{name}-200.json").read_text())
        for r in rows:
            clean += r["gt_text"]
        for i, r in enumerate(rows[:per_set]):
            targets.append({**r, "set": name, "attack": ATTACKS[i % len(ATTACKS)]})
    squad = json.loads((data / "squad/dev-v1.1.json").read_text())
    paragraphs = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    random.Random(seed).shuffle(paragraphs)
    return targets, list(dict.fromkeys(clean + paragraphs[:squad_paragraphs]))


def make_poisons(targets: list[dict], embedder, per_target: int, hotflip_iters: int) -> None:
    from benchmarks.attacks.hotflip import HotFlip

    flipper = HotFlip(embedder)
    for t in targets:
        texts = t["poisoned_texts"][:per_target]
        if t["attack"] == "query_as_poison":
            t["poisons"] = [t["query"] + "." + x for x in texts]
        elif t["attack"] == "paraphrase":
            t["poisons"] = list(texts)
        elif t["attack"] == "hotflip_contriever":
            t["poisons"] = t["poisoned_docs"][:per_target]
        else:
            t["poisons"] = [flipper.attack(t["query"], x, iterations=hotflip_iters,
                                           spread=t["attack"] == "hotflip_spread")[0] for x in texts]


def ingest(client, docs: list[dict], batch: int = 64) -> list[dict]:
    out = []
    for i in range(0, len(docs), batch):
        r = client.post("/documents", json={"documents": docs[i:i + batch]})
        r.raise_for_status()
        out += r.json()["documents"]
    return out


def run_queries(client, targets: list[dict], defences: dict, k: int, poison_docs: dict[str, str], gold_docs: dict,
                writeback: bool = False) -> list[dict]:
    rows = []
    for t in targets:
        started = time.perf_counter()
        r = client.post("/query", json={"query": t["query"], "k": k, "writeback": writeback, "defences": defences})
        r.raise_for_status()
        body = r.json()
        docs = [p["doc_id"] for p in body["passages"]]
        cited = {c["doc_id"] for c in body["citations"]}
        mask = body["defences"].get("ragmask") or {}
        if defences.get("ragmask", {}).get("enabled") and not mask:  # the policy default must not decide silently
            raise RuntimeError(f"RAGMask was asked for but did not run: {body['defences']}")
        screened = mask.get("screened", [])
        flagged = {f["chunk_id"] for f in mask.get("flagged", [])}
        echoed = {e["doc_id"] for e in (body["defences"].get("echo") or {}).get("removed", [])}
        flooded = {d for f in (body["defences"].get("flood") or {}).get("floods", []) for d in f["doc_ids"]}
        matched = {r["doc_id"] for r in (body["defences"].get("disfluent_match") or {}).get("removed", [])}
        chunk_doc = {p["chunk_id"]: p["doc_id"] for p in body["passages"]}
        chunk_doc.update({f["chunk_id"]: f["doc_id"] for f in mask.get("flagged", [])})
        wb = body.get("writeback") or {}
        rows.append({
            "set": t["set"], "attack": t["attack"],
            # ASR is the attack's own success: a poison planted for *this* query (as PoisonedRAG counts it);
            # a poison planted for another, nearby query is collateral, reported apart ("any").
            "poison_in_topk": any(poison_docs.get(d) == t["query_id"] for d in docs),
            "any_poison_in_topk": any(d in poison_docs for d in docs),
            "gold_in_topk": any(d in gold_docs[t["query_id"]] for d in docs),
            "answer_cites_poison": any(poison_docs.get(d) == t["query_id"] for d in cited),
            "answer_cites_any_poison": bool(cited & poison_docs.keys()),
            "flagged": len(flagged), "flagged_ids": sorted(flagged), "screened": len(screened),
            "topk": [p["chunk_id"] for p in body["passages"]],
            "flagged_poison": sum(1 for c in flagged if chunk_doc.get(c) in poison_docs),
            "echoed": len(echoed), "echoed_poison": len(echoed & poison_docs.keys()),
            "flooded": len(flooded), "flooded_poison": len(flooded & poison_docs.keys()),
            "disfluent_matches": len(matched), "disfluent_matches_poison": len(matched & poison_docs.keys()),
            "latency_ms": (time.perf_counter() - started) * 1000,
            "writeback": wb.get("decision"), "writeback_reason": wb.get("reason"),
            "writeback_doc": wb.get("document_id"),
            # which screening check refused it (non_words, disfluency, suspicious_support, corroboration...)
            "screening_problem": next(((g.get("details") or {}).get("problem") for g in wb.get("gates", [])
                                       if g["name"] == "screening" and not g["passed"]), None),
            # what an auditor needs to see why a poisoned write-back got through
            "query": t["query"], "answer": body.get("answer"),
            "contradiction": next((g for g in wb.get("gates", []) if g["name"] == "contradiction"), None)})
    return rows


def detector_rates(clean: list[str], targets: list[dict], writer) -> dict:
    """Each ingest detector on its own, at the strict policy's thresholds, whatever the served policy runs:
    TPR per attack over the poisons, FPR over the clean documents. ``writer``: the service's corpus writer, whose
    chunking and encoder the disfluency head reads, as at ingest."""
    from bragserve.disfluency import bundled_head
    from bragserve.ingest import NewDocument, prepare
    from bragserve.ingest_screening import copied_question, disfluent, non_words, trigger_tokens
    from bragserve.policy import load_policy

    strict = load_policy(Path(__file__).resolve().parent.parent / "policies/strict.toml")[0].ingest_screening
    # A detector strict turns off is measured at the threshold it last had there, so the rows stay comparable.
    thresholds = {"trigger_tokens": strict.trigger_tokens or 0.5, "non_words": strict.non_words or 4,
                  "disfluency": strict.disfluency or 0.28}
    word_pieces = writer.embedder.word_pieces
    head = bundled_head()

    def disfluency(text: str):
        chunks = [c.text for c in prepare([NewDocument(text)], writer.settings, writer.policy.chunking)[0].chunks]
        feats = writer.features.encode(chunks, fragments=None, window_size=writer.policy.ragmask.mask_tokens,
                                       window_stride=writer.policy.ragmask.stride, head=head)
        return disfluent(feats, thresholds["disfluency"])

    detectors = {"copied_question": copied_question,
                 "trigger_tokens": lambda t: trigger_tokens(t, thresholds["trigger_tokens"], word_pieces),
                 "non_words": lambda t: non_words(t, thresholds["non_words"]),
                 "disfluency": disfluency}
    out: dict = {"thresholds": thresholds}
    for name, hit in detectors.items():
        row = {"clean_fpr": round(float(np.mean([hit(c) is not None for c in clean])), 4)}
        for attack in ATTACKS:
            texts = [p for t in targets if t["attack"] == attack for p in t["poisons"]]
            if texts:
                row[attack] = round(float(np.mean([hit(p) is not None for p in texts])), 4)
        out[name] = row
    return out


def summarise(rows: list[dict]) -> dict:
    n = len(rows)
    return {"n": n, "asr": round(np.mean([r["poison_in_topk"] for r in rows]), 3),
            "asr_any": round(np.mean([r["any_poison_in_topk"] for r in rows]), 3),
            "sr": round(np.mean([r["gold_in_topk"] for r in rows]), 3),
            "e2e_asr": round(np.mean([r["answer_cites_poison"] for r in rows]), 3),
            "latency_ms": round(float(np.mean([r["latency_ms"] for r in rows])), 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="the shared data directory (attacks/, squad/)")
    ap.add_argument("--quick", action="store_true", help="a small run: under 10 minutes on 2 cores")
    ap.add_argument("--per-set", type=int, default=None, help="target queries per data set")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--policy", type=Path, default=Path(__file__).resolve().parent.parent / "policies/default.toml",
                    help="the policy served (defences per request are overridden on top of it)")
    ap.add_argument("--name", default=None, help="results file name (default: poison, or poison_quick)")
    args = ap.parse_args(argv)
    per_set = args.per_set or (10 if args.quick else 50)
    params = {"per_set": per_set, "k": args.k, "seed": args.seed, "poisons_per_target": 5,
              "hotflip_poisons_per_target": 1 if args.quick else 2, "hotflip_iterations": 10 if args.quick else 20,
              "squad_paragraphs": 300 if args.quick else 2067, "quick": args.quick}
    started = time.time()

    from fastapi.testclient import TestClient

    from bragserve.api.app import create_app
    from bragserve.policy import load_policy
    from bragserve.settings import Settings
    from bragserve.service import Service

    targets, clean = load(args.data, per_set, params["squad_paragraphs"], args.seed)
    policy, source = load_policy(args.policy)
    settings = Settings(index_dir=Path(tempfile.mkdtemp(prefix="bragserve-poison-")))
    service = Service.open(settings, policy, source)
    t0 = time.time()
    for t in targets:
        t["poisoned_texts"] = t["poisoned_texts"][:params["poisons_per_target"]]
    make_poisons([t for t in targets if not t["attack"].startswith("hotflip") or t["attack"] == "hotflip_contriever"],
                 service.embedder, params["poisons_per_target"], 0)
    make_poisons([t for t in targets if t["attack"] in ("hotflip", "hotflip_spread")], service.embedder,
                 params["hotflip_poisons_per_target"], params["hotflip_iterations"])
    poison_seconds = time.time() - t0
    result: dict = {"machine": machine(), "params": params, "policy": source, "policy_hash": policy.hash}
    with TestClient(create_app(settings, policy, service=service)) as client:
        t0 = time.time()
        clean_out = ingest(client, [{"text": c, "metadata": {"role": "clean"}} for c in clean])
        gold_ids = {c: o["id"] for c, o in zip(clean, clean_out)}
        gold_docs = {t["query_id"]: {gold_ids[g] for g in t["gt_text"]} for t in targets}
        poison_docs_in = [{"text": p, "metadata": {"role": "poison", "attack": t["attack"], "target": t["query_id"]}}
                          for t in targets for p in t["poisons"]]
        poison_out = ingest(client, poison_docs_in)
        ingest_seconds = time.time() - t0
        poison_docs = {o["id"]: d["metadata"]["target"] for o, d in zip(poison_out, poison_docs_in)}
        attack_of = {o["id"]: d["metadata"]["attack"] for o, d in zip(poison_out, poison_docs_in)}
        screen = {"clean_fpr": round(np.mean([o["status"] == "quarantined" for o in clean_out]), 4),
                  "clean_n": len(clean_out), "by_attack": {}}
        for attack in ATTACKS:
            outs = [o for o in poison_out if attack_of[o["id"]] == attack]
            if outs:
                screen["by_attack"][attack] = {"tpr": round(np.mean([o["status"] == "quarantined" for o in outs]), 4),
                                               "n": len(outs)}
        detectors = defaultdict(int)
        for o in clean_out:
            for h in o["screening"]:
                detectors[h["detector"]] += 1
        screen["clean_false_positives_by_detector"] = dict(detectors)
        result["ingest_screening"] = screen
        result["detectors"] = detector_rates(clean, targets, service.writer)

        # Benign SQuAD questions whose paragraph is in the corpus: what each defence costs honest retrieval (SR),
        # and, later, how many honest write-backs survive the anti-laundering gate.
        squad = json.loads((args.data / "squad/dev-v1.1.json").read_text())
        benign_all = [{"query": qa["question"], "query_id": f"squad-{qa['id']}", "set": "squad", "attack": "benign",
                       "paragraph": p["context"]}
                      for a in squad["data"] for p in a["paragraphs"] if p["context"] in gold_ids
                      for qa in p["qas"][:1]]
        for b in benign_all:
            gold_docs[b["query_id"]] = {gold_ids[b["paragraph"]]}
        benign_sr: dict = {}
        grid: dict = {}
        for phase in ("screen_on", "screen_off"):
            if phase == "screen_off":  # a reviewer approves every quarantine: the screen's effect is undone
                for review in client.get("/reviews", params={"limit": 1000}).json()["data"]:
                    if review["kind"] == "quarantine":
                        client.post(f"/reviews/{review['id']}/approve", json={"note": "benchmark: screen off"})
            for name, defences in SETTINGS.items():
                rows = run_queries(client, targets, defences, args.k, poison_docs, gold_docs)
                grid[f"{phase}/{name}"] = rows
                if phase == "screen_on":  # the cost to honest questions, once, with the ingest screen in force
                    benign_sr[name] = summarise(run_queries(client, benign_all[: (30 if args.quick else 150)],
                                                            defences, args.k, poison_docs, gold_docs))

        # RAGMask: fast vs exact decisions on the same candidates, and the delta / views_k sweeps (NQ = dev split)
        # Flags are compared over every candidate (lazy off: a lazy screen leaves out those that cannot reach
        # the top k); the lazy screen's rows show what a query costs as served (the same top k by construction).
        sub = targets[: (8 if args.quick else 30)]

        def mask(**settings) -> dict:
            return {**SETTINGS["none"], "ragmask": {"enabled": True, "lazy": False, **settings}}

        none = run_queries(client, sub, SETTINGS["none"], args.k, poison_docs, gold_docs)
        fast = run_queries(client, sub, mask(method="fast"), args.k, poison_docs, gold_docs)
        exact = run_queries(client, sub, mask(method="exact"), args.k, poison_docs, gold_docs)
        # The fast method re-encodes only windows whose first-order estimate nears delta; a lower screen_margin
        # checks more of them: the trade between agreeing with exact and time, measured on the same queries.
        wide = run_queries(client, sub, mask(method="fast", screen_margin=0.1), args.k, poison_docs, gold_docs)
        lazy = run_queries(client, sub, mask(method="fast", lazy=True), args.k, poison_docs, gold_docs)
        lazy_exact = run_queries(client, sub, mask(method="exact", lazy=True), args.k, poison_docs, gold_docs)
        none_p50 = float(np.median([r["latency_ms"] for r in none]))
        agreement = {"queries": len(sub), "exact_flags": sum(r["flagged"] for r in exact),
                     "exact_ms": round(float(np.mean([r["latency_ms"] for r in exact])), 1),
                     "exact_p50_ms": round(float(np.median([r["latency_ms"] for r in exact])), 1),
                     "no_defence_p50_ms": round(none_p50, 1)}
        for label, rows in (("fast", fast), ("fast_margin_0.1", wide), ("fast_lazy", lazy),
                            ("exact_lazy", lazy_exact)):
            found = sum(len(set(a["flagged_ids"]) & set(b["flagged_ids"])) for a, b in zip(rows, exact))
            agreement[label] = {
                "same_flag_count": round(np.mean([a["flagged"] == b["flagged"] for a, b in zip(rows, exact)]), 3),
                "same_poison_in_topk": round(np.mean([a["poison_in_topk"] == b["poison_in_topk"]
                                                      for a, b in zip(rows, exact)]), 3),
                "flags": sum(r["flagged"] for r in rows),
                "recall_of_exact_flags": round(found / max(agreement["exact_flags"], 1), 3),
                "same_topk_as_exact": round(np.mean([a["topk"] == b["topk"] for a, b in zip(rows, exact)]), 3),
                "screened": sum(r["screened"] for r in rows),
                "ms": round(float(np.mean([r["latency_ms"] for r in rows])), 1),
                "p50_ms": round(float(np.median([r["latency_ms"] for r in rows])), 1),
                "added_p50_ms": round(float(np.median([r["latency_ms"] for r in rows])) - none_p50, 1)}
        nq = [t for t in targets if t["set"] == "nq"]
        delta_sweep = {}
        for delta in (0.05, 0.1, 0.15, 0.2):
            delta_sweep[delta] = summarise(run_queries(
                client, nq, {**SETTINGS["none"], "ragmask": {"enabled": True, "delta": delta}}, args.k,
                poison_docs, gold_docs))
        k_sweep = {}
        for views_k in (1, 2, 3, 4):
            k_sweep[views_k] = summarise(run_queries(
                client, nq, {**SETTINGS["none"], "ragpart": {"enabled": True, "views_k": views_k}},
                args.k, poison_docs, gold_docs))

        # Laundering: poisons active (screen off), write-back on; benign queries for acceptance
        benign = benign_all[: (15 if args.quick else 60)]
        laundering = {}
        everything = {**SETTINGS["all"], "screening": {"enabled": True}}
        for name, defences in (("none", {**SETTINGS["none"], "screening": {"enabled": False}}),
                               ("policy", SETTINGS["policy"]),
                               ("all defences", everything),
                               ("all defences + 2 sources", {**everything, "corroboration": {"min_sources": 2}})):
            rows = run_queries(client, targets, defences, args.k, poison_docs, gold_docs, writeback=True)
            attempted = [r for r in rows if r["answer_cites_any_poison"]]  # any poison laundered is pollution
            poisoned = [r for r in attempted if r["writeback"] == "accepted"]
            benign_rows = run_queries(client, benign, defences, args.k, poison_docs, gold_docs, writeback=True)
            reasons = defaultdict(int)
            for r in attempted:
                problem = f"/{r['screening_problem']}" if r["screening_problem"] else ""
                reasons[f"{r['writeback']}:{r['writeback_reason']}{problem}"] += 1
            laundering[name] = {"queries": len(rows), "attempted": len(attempted), "poisoned_accepted": len(poisoned),
                                "pollution_rate": round(len(poisoned) / len(attempted), 3) if attempted else 0.0,
                                "poisoned_outcomes": dict(reasons),
                                "poisoned_accepted_by_attack": dict(Counter(r["attack"] for r in poisoned)),
                                "poisoned_accepted_examples": [{k: r[k] for k in ("attack", "query", "answer",
                                                                                  "contradiction")}
                                                               for r in poisoned],
                                "benign_queries": len(benign_rows),
                                "benign_accepted": sum(r["writeback"] == "accepted" for r in benign_rows),
                                # what an honest write-back loses to each gate; screening's refusals in full
                                "benign_outcomes": dict(Counter(
                                    f"{r['writeback']}:{r['writeback_reason']}" +
                                    (f"/{r['screening_problem']}" if r["screening_problem"] else "")
                                    for r in benign_rows)),
                                "benign_screened_examples": [{k: r[k] for k in ("query", "answer")}
                                                             for r in benign_rows
                                                             if r["writeback_reason"] == "screening"]}
            for r in rows + benign_rows:  # undo this run's write-backs so the next starts from the same corpus
                if r["writeback"] == "accepted" and r["writeback_doc"]:
                    client.delete(f"/documents/{r['writeback_doc']}")
    service_time = time.time() - started

    summary = []
    successes: dict = defaultdict(dict)  # the queries an attack still won, by name, where few enough to read
    for key, rows in grid.items():
        phase, name = key.split("/")
        for attack in ATTACKS:
            part = [r for r in rows if r["attack"] == attack]
            won = [r["query"] for r in part if r["poison_in_topk"]]
            if 0 < len(won) <= 10:
                successes[key][attack] = won
            if part:
                s = summarise(part)
                flagged = sum(r["flagged_poison"] for r in part)
                summary.append({"screen": phase, "defence": name, "attack": attack, **s,
                                "poison_flags": flagged, "poison_echoed": sum(r["echoed_poison"] for r in part),
                                "clean_echoed": sum(r["echoed"] - r["echoed_poison"] for r in part),
                                "poison_flooded": sum(r["flooded_poison"] for r in part),
                                "clean_flooded": sum(r["flooded"] - r["flooded_poison"] for r in part),
                                "poison_disfluent": sum(r["disfluent_matches_poison"] for r in part),
                                "clean_disfluent": sum(r["disfluent_matches"] - r["disfluent_matches_poison"]
                                                       for r in part)})
        held = [r for r in rows if r["set"] != "nq"]
        summary.append({"screen": phase, "defence": name, "attack": "ALL (held-out sets)", **summarise(held)})
        if phase == "screen_on":
            summary.append({"screen": phase, "defence": name, "attack": "benign (SQuAD)", **benign_sr[name]})
    result.update({"grid": summary, "attack_successes": successes, "ragmask_agreement": agreement,
                   "delta_sweep_nq": {str(k): v for k, v in delta_sweep.items()},
                   "views_k_sweep_nq": {str(k): v for k, v in k_sweep.items()}, "laundering": laundering,
                   "seconds": {"poison_generation": round(poison_seconds, 1), "ingest": round(ingest_seconds, 1),
                               "total": round(service_time, 1)}})
    name = args.name or ("poison_quick" if args.quick else "poison")
    write_results(name, result, summary)
    print(table(summary, ["screen", "defence", "attack", "n", "asr", "asr_any", "sr", "e2e_asr", "latency_ms"]))
    print("ingest screening:", json.dumps(screen))
    print("each detector alone (strict thresholds):", json.dumps(result["detectors"]))
    print("RAGMask fast vs exact:", json.dumps(agreement))
    print("delta sweep (NQ):", json.dumps(result["delta_sweep_nq"]))
    print("views_k sweep (NQ):", json.dumps(result["views_k_sweep_nq"]))
    print("laundering:", json.dumps(laundering))
    print(f"total {service_time:.0f} s")
    plot(result, name)
    service.close()
    shutil.rmtree(settings.index_dir, ignore_errors=True)  # 37 MB per run otherwise left in /tmp
    return result


def plot(result: dict, name: str) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    markers = dict(zip(SETTINGS, "osD^vX*hPp"))
    for row in result["grid"]:
        if row["attack"].startswith("ALL") or row["attack"].startswith("benign"):
            continue
        ax = axes[0]
        ax.scatter(row["sr"], row["asr"], marker=markers[row["defence"]],
                   color="tab:red" if row["screen"] == "screen_off" else "tab:green", alpha=0.6)
    axes[0].set_xlabel("SR (gold in top-k)")
    axes[0].set_ylabel("retrieval ASR (poison in top-k)")
    axes[0].set_title("per attack x defence (green: ingest screen on)")
    for marker_name, m in markers.items():
        axes[0].scatter([], [], marker=m, color="grey", label=marker_name)
    axes[0].legend(fontsize=8)
    for ax, key, label in ((axes[1], "delta_sweep_nq", "RAGMask delta"), (axes[2], "views_k_sweep_nq",
                                                                          "RAGPart views_k (N=5)")):
        xs = list(result[key])
        ax.plot(xs, [result[key][x]["asr"] for x in xs], "o-", label="ASR")
        ax.plot(xs, [result[key][x]["sr"] for x in xs], "s-", label="SR")
        ax.set_xlabel(label)
        ax.set_title(f"{label} sweep (NQ, screen off)")
        ax.legend()
    save_plot(fig, name)


if __name__ == "__main__":
    main()
