"""NLI speed on this machine: throughput (pairs/s at 128 tokens, batch 32) and the latency of gate-sized calls
(1, 3 and 8 real pairs per call, as the write-back gates send them), for the shipped model in fp32, bf16 (the
default where the CPU has native bf16: Linear weights held in bf16 under autocast), bf16 autocast over fp32 weights
(the previous default, which casts every weight on every call) and dynamic int8, with the embedder's encode speed
on the same pairs as the same-run baseline, and how often each variant's decision agrees with fp32 on 1,000
held-out pairs.

Run: .venv/bin/python -m benchmarks.nli_throughput
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, pyplot, save_plot, table, write_results

CALL_SIZES = (1, 3, 8)


def run(pairs: int, batch: int, seq: int, repeats: int, squad: str, nli_data: str, calls: int) -> dict:
    from bragserve.embedding import Embedder
    from bragserve.gates.nli import NLIModel
    from bragserve.precision import native_bf16
    from bragserve.training.nli_datasets import LABELS, snli_test_cased
    from bragserve.training.squad_pairs import build_pairs

    fp32_model = NLIModel(batch_size=batch, precision="fp32")
    tokenizer = fp32_model.tokenizer
    rng = np.random.default_rng(0)
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 3][:5000]
    premises = [" ".join(rng.choice(vocab, seq - 20)) for _ in range(pairs)]
    hypotheses = [" ".join(rng.choice(vocab, 12)) for _ in range(pairs)]
    lengths = [len(tokenizer(p, h, truncation="only_first", max_length=seq)["input_ids"])
               for p, h in zip(premises[:50], hypotheses[:50])]

    def timed(fn) -> float:
        fn()  # warm up
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - started)
        return pairs / best

    held = random.Random(0).sample(build_pairs(Path(squad), "dev"), 600) + \
        random.Random(0).sample(snli_test_cased(Path(nli_data)), 400)
    gold = np.array([LABELS.index(p.label) for p in held])
    held_pairs = [(p.premise, p.hypothesis) for p in held]
    # Gate-sized calls: consecutive held-out pairs, a different length mix in every call, as in the gates.
    groups = {size: [held_pairs[i:i + size] for i in range(0, size * calls, size)] for size in CALL_SIZES}

    def call_latency(model: NLIModel) -> dict[int, float]:
        for group in groups[3][:5]:  # warm up
            model.probabilities(group)
        out = {}
        for size, chunks in groups.items():
            samples = []
            for group in chunks:
                started = time.perf_counter()
                model.probabilities(group)
                samples.append((time.perf_counter() - started) * 1000)
            out[size] = float(np.median(samples))
        return out

    def measure(model: NLIModel) -> tuple[float, dict[int, float], np.ndarray]:
        model.max_length = seq
        speed = timed(lambda: model.probabilities(list(zip(premises, hypotheses))))
        model.max_length = 256
        return speed, call_latency(model), model.probabilities(held_pairs).argmax(axis=1)

    results = {"nli fp32": measure(fp32_model)}
    fp32_model.precision = "bf16"  # autocast over the fp32 weights: what the bf16 default ran before
    results["nli bf16 autocast, fp32 weights"] = measure(fp32_model)
    del fp32_model
    results["nli bf16 (default)"] = measure(NLIModel(batch_size=batch, precision="bf16"))
    results["nli int8 (dynamic)"] = measure(NLIModel(batch_size=batch, precision="int8"))
    embedder = Embedder("bundled", batch_size=batch)
    encode = timed(lambda: embedder.encode([p + " " + h for p, h in zip(premises, hypotheses)]))
    base = results["nli fp32"][2]
    rows = []
    for name, (speed, latency, pred) in results.items():
        rows.append({"variant": name, "pairs/s": round(speed, 1), "vs encode": round(speed / encode, 2),
                     **{f"{size}-pair call ms": round(latency[size], 1) for size in CALL_SIZES},
                     "held-out acc": round(float((pred == gold).mean()), 4),
                     "agrees with fp32": round(float((pred == base).mean()), 4)})
    rows.append({"variant": "embedder encode (baseline)", "pairs/s": round(encode, 1), "vs encode": 1.0})
    print(table(rows, ["variant", "pairs/s", "vs encode", *[f"{size}-pair call ms" for size in CALL_SIZES],
                       "held-out acc", "agrees with fp32"]))
    payload = {"benchmark": "nli_throughput", "machine": machine(),
               "parameters": {"pairs": pairs, "batch": batch, "tokens": seq, "mean_tokens": float(np.mean(lengths)),
                              "repeats": repeats, "calls_per_size": calls, "call_sizes": list(CALL_SIZES),
                              "target_pairs_per_s": 100},
               "results": {"variants": rows, "encode_texts_per_s": round(encode, 1),
                           "native_bf16": native_bf16()}}
    write_results("nli_throughput", payload, rows)
    _plot(rows)
    return payload


def _plot(rows: list[dict]) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.barh([r["variant"] for r in rows], [r["pairs/s"] for r in rows])
    left.axvline(100, color="red", linestyle="--", label="target 100 pairs/s")
    left.set_xlabel("pairs / s at 128 tokens, batch 32, 2 cores")
    left.legend()
    for r in rows:
        if f"{CALL_SIZES[0]}-pair call ms" in r:
            right.plot(CALL_SIZES, [r[f"{size}-pair call ms"] for size in CALL_SIZES], marker="o", label=r["variant"])
    right.set_xlabel("pairs per call (held-out SQuAD/SNLI pairs)")
    right.set_ylabel("p50 ms per call")
    right.set_title("gate-sized calls")
    right.legend(fontsize=7)
    fig.tight_layout()
    save_plot(fig, "nli_throughput")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=40, help="gate-sized calls timed per size")
    parser.add_argument("--squad", default="../shared/data/squad/dev-v1.1.json")
    parser.add_argument("--nli-data", default="../shared/data/nli")
    args = parser.parse_args()
    run(args.pairs, args.batch, args.tokens, args.repeats, args.squad, args.nli_data, args.calls)


if __name__ == "__main__":
    main()
