"""The replaced-token head: the shipped one is what its training report says, and the trainer reproduces a head."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bragserve.disfluency import BUNDLED, DisfluencyHead
from bragserve.retrieval.token_encoder import TokenEncoder

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def test_the_shipped_head_scores_flipped_words_above_their_fluent_source(embedder) -> None:
    head = DisfluencyHead.load(BUNDLED)
    report = json.loads((BUNDLED / "training_report.json").read_text())
    assert list(head.layers) == report["layers"] and head.window == report["window"]
    fluent = ("Charles Lyell is widely credited with introducing the principle of uniformitarianism, which states "
              "that the processes shaping the Earth today have been consistent throughout its history.")
    flipped = ("who is responsible himself usual the objective of uniformitarianism countries 2016 convenience for "
               "employees equivalent principle male uniform " + fluent)
    clean, salad = TokenEncoder(embedder).profile([fluent, flipped], size=8, stride=4, head=head)
    assert clean.disfluency is not None and salad.disfluency is not None
    assert clean.disfluency[0] < 0.2 < 0.3 < salad.disfluency[0], (clean.disfluency, salad.disfluency)
    assert "usual the objective" in salad.disfluency[1]


def test_train_disfluency_runs_end_to_end_on_a_tiny_slice(tmp_path: Path) -> None:
    out = tmp_path / "head"
    r = subprocess.run([sys.executable, "-m", "bragserve", "train-disfluency", "--data", str(DATA / "nli"),
                        "--squad", str(DATA / "squad" / "dev-v1.1.json"), "--out", str(out), "--epochs", "1",
                        "--max-texts", "120"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "training_report.json").read_text())
    assert report["sequences"] == 240 and len(report["fit"]["history"]) == 1
    assert report["held_out_squad"]["paragraphs"] == 120
    head = DisfluencyHead.load(out)
    assert head.layers == tuple(report["layers"]) and head.weights["w1"].shape == (384 * len(head.layers), 256)
