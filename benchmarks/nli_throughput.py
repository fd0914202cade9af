"""NLI throughput: pairs/s at 128 tokens, batch 32, on this machine, for the shipped model in fp32, bf16 autocast
(the default where the CPU has native bf16) and dynamic int8, with the embedder's encode speed on the same pairs as
the same-run baseline, and how often each variant's decision agrees with fp32 on 1,000 held-out pairs.

Run: .venv/bin/python -m benchmarks.nli_throughput
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import machine, pyplot, save_plot, table, write_results


def run(pairs: int, batch: int, seq: int, repeats: int, squad: str, nli_data: str) -> dict:
    import torch

    from bragserve.embedding import Embedder
    from bragserve.gates.nli import NLIModel

    from pathlib import Path
    import random

    from bragserve.training.nli_datasets import LABELS, snli_test_cased
    from bragserve.training.squad_pairs import build_pairs

    nli = NLIModel(batch_size=batch, precision="fp32")
    rng = np.random.default_rng(0)
    vocab = [w for w in nli.tokenizer.get_vocab() if w.isalpha() and len(w) > 3][:5000]
    premises = [" ".join(rng.choice(vocab, seq - 20)) for _ in range(pairs)]
    hypotheses = [" ".join(rng.choice(vocab, 12)) for _ in range(pairs)]
    lengths = [len(nli.tokenizer(p, h, truncation="only_first", max_length=seq)["input_ids"])
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

    def measure(model: NLIModel) -> tuple[float, np.ndarray]:
        model.max_length = seq
        speed = timed(lambda: model.probabilities(list(zip(premises, hypotheses))))
        model.max_length = 256
        return speed, model.probabilities([(p.premise, p.hypothesis) for p in held]).argmax(axis=1)

    fp32, base = measure(nli)
    nli.precision = "bf16"
    bf16, bf16_pred = measure(nli)
    nli.precision = "fp32"
    int8, int8_pred = measure(NLIModel(batch_size=batch, precision="int8"))  # what BRAGSERVE_NLI_PRECISION=int8 runs
    embedder = Embedder("bundled", batch_size=batch)
    encode = timed(lambda: embedder.encode([p + " " + h for p, h in zip(premises, hypotheses)]))
    rows = []
    for name, speed, pred in (("nli fp32", fp32, base), ("nli bf16 autocast", bf16, bf16_pred),
                              ("nli int8 (dynamic)", int8, int8_pred)):
        rows.append({"variant": name, "pairs/s": round(speed, 1), "vs encode": round(speed / encode, 2),
                     "held-out acc": round(float((pred == gold).mean()), 4),
                     "agrees with fp32": round(float((pred == base).mean()), 4)})
    rows.append({"variant": "embedder encode (baseline)", "pairs/s": round(encode, 1), "vs encode": 1.0})
    print(table(rows, ["variant", "pairs/s", "vs encode", "held-out acc", "agrees with fp32"]))
    payload = {"benchmark": "nli_throughput", "machine": machine(),
               "parameters": {"pairs": pairs, "batch": batch, "tokens": seq, "mean_tokens": float(np.mean(lengths)),
                              "repeats": repeats, "target_pairs_per_s": 100},
               "results": {"variants": rows, "fp32_pairs_per_s": round(fp32, 1), "bf16_pairs_per_s": round(bf16, 1),
                           "int8_pairs_per_s": round(int8, 1), "encode_texts_per_s": round(encode, 1),
                           "native_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}}
    write_results("nli_throughput", payload, rows)
    _plot(rows)
    return payload


def _plot(rows: list[dict]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh([r["variant"] for r in rows], [r["pairs/s"] for r in rows])
    ax.axvline(100, color="red", linestyle="--", label="target 100 pairs/s")
    ax.set_xlabel("pairs / s at 128 tokens, batch 32, 2 cores")
    ax.legend()
    save_plot(fig, "nli_throughput")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--squad", default="../shared/data/squad/dev-v1.1.json")
    parser.add_argument("--nli-data", default="../shared/data/nli")
    args = parser.parse_args()
    run(args.pairs, args.batch, args.tokens, args.repeats, args.squad, args.nli_data)


if __name__ == "__main__":
    main()
