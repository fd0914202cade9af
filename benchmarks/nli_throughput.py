"""NLI throughput: pairs/s at 128 tokens, batch 32, on this machine, for the shipped model in fp32 and with
dynamic int8 quantisation, with the embedder's encode speed on the same pairs as the same-run baseline.

Run: .venv/bin/python -m benchmarks.nli_throughput
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import machine, pyplot, save_plot, table, write_results


def run(pairs: int, batch: int, seq: int, repeats: int) -> dict:
    import torch

    from bragserve.embedding import Embedder
    from bragserve.gates.nli import NLIModel

    nli = NLIModel(batch_size=batch)
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

    nli.max_length = seq
    fp32 = timed(lambda: nli.probabilities(list(zip(premises, hypotheses))))
    quantized = torch.ao.quantization.quantize_dynamic(nli.model, {torch.nn.Linear}, dtype=torch.qint8)
    original = nli.model
    nli.model = quantized
    int8 = timed(lambda: nli.probabilities(list(zip(premises, hypotheses))))
    nli.model = original
    embedder = Embedder("bundled", batch_size=batch)
    encode = timed(lambda: embedder.encode([p + " " + h for p, h in zip(premises, hypotheses)]))
    rows = [{"variant": "nli fp32", "pairs/s": round(fp32, 1), "vs encode": round(fp32 / encode, 2)},
            {"variant": "nli int8 (dynamic)", "pairs/s": round(int8, 1), "vs encode": round(int8 / encode, 2)},
            {"variant": "embedder encode (baseline)", "pairs/s": round(encode, 1), "vs encode": 1.0}]
    print(table(rows, ["variant", "pairs/s", "vs encode"]))
    payload = {"benchmark": "nli_throughput", "machine": machine(),
               "parameters": {"pairs": pairs, "batch": batch, "tokens": seq, "mean_tokens": float(np.mean(lengths)),
                              "repeats": repeats, "target_pairs_per_s": 100},
               "results": {"fp32_pairs_per_s": round(fp32, 1), "int8_pairs_per_s": round(int8, 1),
                           "encode_texts_per_s": round(encode, 1)}}
    write_results("nli_throughput", payload)
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
    args = parser.parse_args()
    run(args.pairs, args.batch, args.tokens, args.repeats)


if __name__ == "__main__":
    main()
