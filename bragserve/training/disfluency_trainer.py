"""Train the replaced-token head (bragserve/disfluency.py) on fluent text we may ship.

Text: the premises and hypotheses of the NLI sets whose licences allow a derived model
(``nli_datasets.TRAIN_SETS``) and MNLI's premises, joined a few at a time into passages,
plus the paragraphs of every other SQuAD dev article (the rest are held out to calibrate
the threshold). ANLI and ConTRoL are non-commercial and RealtimeQA has no licence: none
of them is used, so a shipped head may derive from everything here.
Each text is shown clean or corrupted the ways an embedding optimiser writes:

- a prefix (or a run inside the text) that starts as a copy of another text's opening,
  repeated to length, with a share of its tokens swapped: query-initialised HotFlip;
- tokens inserted every few tokens: spread-out HotFlip;
- scattered replacements.

Swapped-in tokens come half from the whole vocabulary and half from the text itself or
its neighbour, so on-topic words in the wrong place count as much as rare ones (HotFlip's
picks are on topic: they raise the similarity to the query). A text is shown cut at a
random point 40% of the time: search snippets and news feeds start and stop mid-sentence,
and that is not what the head should learn to flag.

The encoder is frozen; its token states for every corrupted text are computed once (bf16
where the server runs bf16) and a small MLP is fitted on them. Reproducible: fixed seeds,
deterministic data order.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bragserve.disfluency import DisfluencyHead, worst_window
from bragserve.training.nli_datasets import LICENCES, TRAIN_SETS, mnli_dev_matched

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data_dir: Path  # the shared NLI folder
    squad_path: Path
    out_dir: Path
    layers: tuple[int, ...] = (0, 2, 3, 4, 6)
    hidden: int = 256
    window: int = 16
    copies: int = 2  # corrupted views of each text
    keep_clean: float = 0.4  # share of unreplaced tokens kept for the fit (memory); weighted back in the loss
    max_tokens: int = 126
    epochs: int = 6
    batch_size: int = 2048
    learning_rate: float = 1e-3
    seed: int = 0
    max_texts: int | None = None  # a slice of the training and held-out texts, for smoke tests
    licences: dict[str, str] = field(default_factory=lambda: {
        **LICENCES, "mnli_dev_matched_premises": "MultiNLI licence (OANC, permissive; fiction CC BY-SA 3.0)"})


def _passages(sentences: list[str], rng: random.Random) -> list[str]:
    """One-sentence NLI texts joined 1-6 at a time: the head must see sentence boundaries inside a window."""
    out, i = [], 0
    while i < len(sentences):
        n = rng.randint(1, 6)
        out.append(" ".join(sentences[i:i + n]))
        i += n
    return out


def fluent_texts(cfg: TrainConfig, rng: random.Random) -> tuple[list[str], list[str], dict[str, int]]:
    """(training texts, held-out SQuAD paragraphs, count per source)."""
    texts: list[str] = []
    counts: dict[str, int] = {}
    # MNLI's premises add what the SNLI family lacks (speech, letters, fiction, government prose); MNLI is held out
    # from the NLI model's training, but this head is a different task and never sees its labels.
    readers = {**TRAIN_SETS, "mnli_dev_matched_premises": mnli_dev_matched}
    for name, reader in readers.items():
        sentences = sorted({s.strip() for p in reader(cfg.data_dir) for s in (p.premise, p.hypothesis)
                            if len(s.split()) >= 4})
        rng.shuffle(sentences)
        passages = _passages(sentences, rng)
        counts[name] = len(passages)
        texts += passages
    articles = json.loads(cfg.squad_path.read_text(encoding="utf-8"))["data"]
    # Paragraphs cut into ~90-word pieces, so all of each is seen (the encoder pass is cut at max_tokens).
    train_paras = [" ".join(words[i:i + 90]) for a in articles[0::2] for p in a["paragraphs"]
                   for words in [p["context"].split()] for i in range(0, len(words), 90) if len(words[i:i + 90]) >= 8]
    held_out = [p["context"] for a in articles[1::2] for p in a["paragraphs"]]
    counts["squad_even_articles"] = len(train_paras)
    texts += train_paras
    texts.sort()
    rng.shuffle(texts)
    if cfg.max_texts:
        return texts[:cfg.max_texts], held_out[:cfg.max_texts], counts
    return texts, held_out, counts


class Corruptor:
    def __init__(self, vocabulary: np.ndarray, rng: random.Random) -> None:
        self.vocabulary = vocabulary  # token ids an attacker may pick (no special or unused tokens)
        self.rng = rng

    def _swap(self, ids: list[int], other: list[int]) -> int:
        r = self.rng.random()
        if r < 0.5:
            return int(self.vocabulary[self.rng.randrange(len(self.vocabulary))])
        pool = other if r < 0.75 else ids
        return pool[self.rng.randrange(len(pool))]

    def __call__(self, ids: list[int], other: list[int]) -> tuple[list[int], list[int]]:
        """A corrupted copy of ``ids`` and its labels (1 = a token the writer did not put there)."""
        rng = self.rng
        ids, labels = list(ids), [0] * len(ids)
        if len(ids) > 30 and rng.random() < 0.4:
            a, b = rng.randrange(0, len(ids) // 3), rng.randrange(2 * len(ids) // 3, len(ids) + 1)
            ids, labels = ids[a:b], labels[a:b]
        mode = rng.random()
        if mode < 0.25 or not ids or not other:
            return ids, labels
        if mode < 0.55:  # a query-like run, repeated to length, part of it flipped
            seed = other[:rng.randint(5, 14)]
            n = rng.randint(10, 30)
            run = [seed[i % len(seed)] for i in range(n)]
            run_labels = [0] * n
            rate = rng.uniform(0.2, 0.7)
            for i in range(n):
                if rng.random() < rate and (t := self._swap(ids, other)) != run[i]:
                    run[i], run_labels[i] = t, 1
            at = 0 if rng.random() < 0.7 else rng.randrange(len(ids) + 1)
            return ids[:at] + run + ids[at:], labels[:at] + run_labels + labels[at:]
        if mode < 0.8:  # inserted every few tokens
            k = rng.randint(5, 25)
            gap = max(1, len(ids) // k)
            out, out_labels = [], []
            for i, t in enumerate(ids):
                if i % gap == 0 and k > 0:
                    out.append(self._swap(ids, other))
                    out_labels.append(1)
                    k -= 1
                out.append(t)
                out_labels.append(0)
            return out, out_labels
        rate = rng.uniform(0.1, 0.3)  # scattered replacements
        for i in range(len(ids)):
            if rng.random() < rate and (t := self._swap(ids, other)) != ids[i]:
                ids[i], labels[i] = t, 1
        return ids, labels


def _vocabulary(tokenizer) -> np.ndarray:
    banned = set(tokenizer.all_special_ids) | {i for t, i in tokenizer.vocab.items() if t.startswith("[unused")}
    return np.array(sorted(i for i in tokenizer.vocab.values() if i not in banned))


def _fit(x, y, cfg: TrainConfig) -> tuple[dict, dict]:
    """An MLP (in → hidden → 1) on token features; returns its weights and the validation metrics."""
    import torch

    torch.manual_seed(cfg.seed)
    n = len(y)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
    val, train = order[: max(1, n // 20)], order[max(1, n // 20):]
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], cfg.hidden), torch.nn.GELU(),
                              torch.nn.Linear(cfg.hidden, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=1e-4)
    history = []
    for epoch in range(cfg.epochs):
        shuffled = train[torch.randperm(len(train))]
        for start in range(0, len(shuffled), cfg.batch_size):
            batch = shuffled[start:start + cfg.batch_size]
            truth = y[batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                net(x[batch].float()).squeeze(-1), truth, weight=torch.where(truth == 1, 1.0, 1.0 / cfg.keep_clean))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            p = torch.cat([torch.sigmoid(net(x[val[i:i + 65536]].float()).squeeze(-1))
                           for i in range(0, len(val), 65536)])
        truth = y[val] == 1
        metrics = {"epoch": epoch + 1, "accuracy": round(float(((p > 0.5) == truth).float().mean()), 4),
                   "tpr": round(float((p[truth] > 0.5).float().mean()), 4),
                   "fpr": round(float((p[~truth] > 0.5).float().mean()), 4)}
        history.append(metrics)
        log.info("epoch %d: %s", epoch + 1, metrics)
    weights = {"w1": net[0].weight.detach().T.contiguous(), "b1": net[0].bias.detach().clone(),
               "w2": net[2].weight.detach()[0].clone(), "b2": net[2].bias.detach()[0].clone()}
    return weights, {"validation_tokens": len(val), "history": history}


def train(cfg: TrainConfig) -> dict:
    import torch

    from bragserve.embedding import Embedder
    from bragserve.retrieval.token_encoder import TokenEncoder

    started = time.time()
    rng = random.Random(cfg.seed)
    embedder = Embedder()
    encoder = TokenEncoder(embedder)
    tokenizer = embedder.tokenizer
    texts, held_out, counts = fluent_texts(cfg, rng)
    bodies = [tokenizer(t, add_special_tokens=False, truncation=True, max_length=cfg.max_tokens)["input_ids"]
              for t in texts]
    corrupt = Corruptor(_vocabulary(tokenizer), rng)
    sequences, labels = [], []
    for body in bodies * cfg.copies:
        ids, lab = corrupt(body, bodies[rng.randrange(len(bodies))])
        ids, lab = ids[:cfg.max_tokens], lab[:cfg.max_tokens]
        sequences.append([tokenizer.cls_token_id, *ids, tokenizer.sep_token_id])
        labels.append(lab)
    log.info("%d texts, %d sequences; encoding", len(texts), len(sequences))
    t0 = time.time()
    # Every replaced token is kept, and a share of the others (weighted back up in the loss): five layers of
    # states for every token of 30k+ sequences would not fit in memory.
    keep = np.random.default_rng(cfg.seed)
    xs, ys = [], []
    for start in range(0, len(sequences), 1024):
        block = encoder.layer_states(sequences[start:start + 1024], cfg.layers)
        for states, lab in zip(block, labels[start:start + 1024]):
            lab_arr = np.asarray(lab, dtype=np.float32)
            chosen = (lab_arr == 1) | (keep.random(len(lab_arr)) < cfg.keep_clean)
            xs.append(states[1:-1][chosen])
            ys.append(lab_arr[chosen])
    encode_seconds = time.time() - t0
    x = torch.from_numpy(np.concatenate(xs))
    y = torch.from_numpy(np.concatenate(ys))
    del xs
    t0 = time.time()
    weights, fit = _fit(x, y, cfg)
    fit_seconds = time.time() - t0
    head = DisfluencyHead(cfg.layers, cfg.window, weights)
    head.save(cfg.out_dir, {"trained_by": "bragserve train-disfluency"})

    # Calibration on text the head never saw: the worst-window score of every held-out SQuAD paragraph.
    profiles = encoder.profile(held_out, size=cfg.window, stride=cfg.window, head=head)
    scores = np.array([p.disfluency[0] if p.disfluency else 0.0 for p in profiles])
    quantiles = {q: round(float(np.quantile(scores, q)), 4) for q in (0.5, 0.9, 0.99, 0.995, 0.999)}
    report = {
        "task": "replaced-token detection over frozen all-MiniLM-L6-v2 token states",
        "layers": list(cfg.layers), "hidden": cfg.hidden, "window": cfg.window, "copies": cfg.copies,
        "epochs": cfg.epochs, "seed": cfg.seed, "texts": counts, "sequences": len(sequences),
        "tokens_fitted": int(len(y)), "keep_clean": cfg.keep_clean,
        "licences": {k: v for k, v in cfg.licences.items() if k in counts} |
                    {"squad_even_articles": "CC BY-SA 4.0 (SQuAD v1.1 dev)"},
        "fit": fit,
        "held_out_squad": {"paragraphs": len(held_out), "worst_window_quantiles": quantiles},
        "seconds": {"encode": round(encode_seconds, 1), "fit": round(fit_seconds, 1),
                    "total": round(time.time() - started, 1)},
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "torch": torch.__version__},
    }
    (cfg.out_dir / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
