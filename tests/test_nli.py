"""The shipped NLI model: loads offline, gets clear cases right, reads labels by name, and can be retrained."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bragserve.gates.nli import BUNDLED_NLI, NLIModel, label_indices

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"

CLEAR = [
    ("A man is playing a guitar on stage.", "A man is playing an instrument.", "entailment"),
    ("A man is playing a guitar on stage.", "A woman is sleeping in her bed.", "contradiction"),
    ("A man is playing a guitar on stage.", "The man is a famous musician.", "neutral"),
    ("The Harbour Bridge opened to traffic in 1932. It was designed by John Bradfield.",
     "The Harbour Bridge opened to traffic in 1932.", "entailment"),
    ("The Harbour Bridge opened to traffic in 1932. It was designed by John Bradfield.",
     "The Harbour Bridge opened to traffic in 1950.", "contradiction"),
    ("The Harbour Bridge opened to traffic in 1932. It was designed by John Bradfield.",
     "Many tourists visit the bridge every summer.", "neutral"),
]


def test_bundled_checkpoint_loads_offline_and_gets_clear_pairs_right(nli) -> None:
    assert Path(nli.model_id) == BUNDLED_NLI
    scores = nli.score([(p, h) for p, h, _ in CLEAR])
    assert [s.label for s in scores] == [label for _, _, label in CLEAR]
    for s in scores:
        assert abs(s.entailment + s.neutral + s.contradiction - 1) < 1e-4


def test_bf16_scores_the_same_pairs_as_fp32_whether_batched_or_alone() -> None:
    """bf16 holds the Linear weights in bf16 (no per-call cast); its scores must stay those of fp32 to bf16's
    precision, and a pair must score the same alone as inside a padded batch."""
    pairs = [(p, h) for p, h, _ in CLEAR]
    fp32 = NLIModel(precision="fp32").probabilities(pairs)
    bf16 = NLIModel(precision="bf16")
    assert bf16.precision == "bf16"
    batched = bf16.probabilities(pairs)
    alone = [bf16.probabilities([pair])[0] for pair in pairs]
    assert abs(batched - fp32).max() < 0.03
    assert abs(batched - alone).max() < 0.01
    assert list(batched.argmax(axis=1)) == list(fp32.argmax(axis=1))


def test_label_order_comes_from_id2label_not_position(tmp_path: Path, nli) -> None:
    permuted = tmp_path / "permuted"
    shutil.copytree(BUNDLED_NLI, permuted)
    config = json.loads((permuted / "config.json").read_text())
    old = {int(k): v for k, v in config["id2label"].items()}
    order = [2, 0, 1]                       # new index i holds the class that was at old index order[i]
    config["id2label"] = {str(i): old[j] for i, j in enumerate(order)}
    config["label2id"] = {old[j]: i for i, j in enumerate(order)}
    (permuted / "config.json").write_text(json.dumps(config))
    weights = load_file(permuted / "model.safetensors")
    for name in ("classifier.weight", "classifier.bias"):
        weights[name] = weights[name][torch.tensor(order)].contiguous()
    save_file(weights, permuted / "model.safetensors", metadata={"format": "pt"})
    original = nli.score([(p, h) for p, h, _ in CLEAR])
    reordered = NLIModel(str(permuted)).score([(p, h) for p, h, _ in CLEAR])
    assert [s.label for s in reordered] == [s.label for s in original]
    for a, b in zip(original, reordered):
        assert abs(a.entailment - b.entailment) < 1e-3


def test_label_indices_by_name() -> None:
    assert label_indices({0: "CONTRADICTION", 1: "ENTAILMENT", 2: "NEUTRAL"}) == \
        {"entailment": 1, "neutral": 2, "contradiction": 0}
    assert label_indices({"0": "entailment", "1": "not_entailment"}) == \
        {"entailment": 0, "neutral": 1, "contradiction": None}
    with pytest.raises(Exception, match="no entailment"):
        label_indices({0: "LABEL_0", 1: "LABEL_1"})


def test_hypothesis_is_never_truncated(nli) -> None:
    premise = "The river floods every spring. " * 200
    hypothesis = "The river floods in spring."
    batch = nli._encode([premise], [hypothesis])
    ids = batch["input_ids"][0].tolist()
    sep = nli.tokenizer.sep_token_id
    second = ids[ids.index(sep) + 1:]
    assert nli.tokenizer.decode(second, skip_special_tokens=True) == hypothesis.lower()


def test_nli_cli_prints_probabilities() -> None:
    r = subprocess.run([sys.executable, "-m", "bragserve", "nli", "A man is playing a guitar.",
                        "A man is playing an instrument.", "--json"], capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["label"] == "entailment" and set(out) == {"entailment", "neutral", "contradiction", "label"}


def test_train_nli_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    out = tmp_path / "nli"
    r = subprocess.run([sys.executable, "-m", "bragserve", "train-nli", "--data", str(DATA / "nli"),
                        "--squad", str(DATA / "squad" / "dev-v1.1.json"), "--out", str(out), "--max-steps", "3",
                        "--max-train-pairs", "96", "--max-eval-pairs", "24"], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "training_report.json").read_text())
    assert report["steps"] == 3
    assert set(report["evaluation"]) >= {"snli_test", "mnli_dev_matched", "anli_test", "control", "squad_dev"}
    for result in report["evaluation"].values():
        assert len(result["confusion_matrix"]) == 3 and result["pairs"] == 24
    assert NLIModel(str(out)).score([("A cat sleeps.", "An animal sleeps.")])[0].label in \
        ("entailment", "neutral", "contradiction")
