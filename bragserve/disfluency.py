"""Word salad: which tokens of a text were put there by an optimiser rather than a writer.

HotFlip keeps the tokens that raise a poison's similarity to its target query, and when
the attack starts from the query (as PoisonedRAG's white-box attack does) most of them
are ordinary English words: "who is responsible himself usual the objective of
uniformitarianism countries 2016". Word lists and word-piece counts see English there
(bragserve/non_words.py). What gives the run away is that the words do not follow from
each other, and the encoder we already run knows what follows from what.

So the detector is a replaced-token head in the manner of ELECTRA's discriminator: a
small MLP over the token states of a few layers of the bundled MiniLM, trained offline
(``bragserve train-disfluency``, bragserve/training/disfluency_trainer.py) on fluent
text with tokens replaced and inserted, to say which tokens do not belong. The encoder
is frozen, so the head reads the forward pass ingest runs anyway (the token states the
fast RAGMask stores): scoring a chunk costs one small matrix product, not another model.
A document is flagged by its worst window: the mean replaced-token probability over
``window`` consecutive word pieces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

BUNDLED = Path(__file__).resolve().parent / "models" / "disfluency-minilm-l6"
WEIGHTS = "head.safetensors"
CONFIG = "config.json"


def stack_layers(hidden_states: Any, layers: tuple[int, ...]) -> Any:
    """The head's input: the chosen layers' token states side by side (torch tensors, (batch, len, dim·L)).

    One function for training and serving, so the shipped head always sees the features it was trained on."""
    import torch

    return torch.cat([hidden_states[i] for i in layers], dim=-1).float()


@dataclass(frozen=True)
class DisfluencyHead:
    layers: tuple[int, ...]  # hidden_states indices (0 = the embedding layer)
    window: int  # word pieces per scored window
    weights: dict[str, Any]  # w1 (in, hidden), b1, w2 (hidden,), b2 (): torch tensors

    @classmethod
    def load(cls, path: Path = BUNDLED) -> DisfluencyHead:
        import torch
        from safetensors.torch import load_file

        config = json.loads((path / CONFIG).read_text())
        weights = {k: v.to(torch.float32) for k, v in load_file(str(path / WEIGHTS)).items()}
        return cls(tuple(config["layers"]), int(config["window"]), weights)

    def save(self, path: Path, extra: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.weights.items()}, str(path / WEIGHTS))
        (path / CONFIG).write_text(json.dumps({"layers": list(self.layers), "window": self.window, **extra},
                                              indent=2) + "\n")

    def logits(self, features: Any) -> Any:
        """Replaced-token logits for stacked features (..., in)."""
        import torch

        w = self.weights
        return torch.nn.functional.gelu(features @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"]

    def probabilities(self, hidden_states: Any) -> np.ndarray:
        """(batch, len) probability that each token was replaced or inserted, from a forward pass's hidden states."""
        import torch

        with torch.autocast("cpu", enabled=False):  # fp32 like its training, even inside the encoder's bf16 pass
            return torch.sigmoid(self.logits(stack_layers(hidden_states, self.layers))).float().numpy()


@lru_cache(maxsize=4)
def bundled_head(path: Path = BUNDLED) -> DisfluencyHead:
    return DisfluencyHead.load(path)


def worst_window(probabilities: np.ndarray, window: int) -> tuple[float, int, int]:
    """The highest mean probability over ``window`` consecutive tokens, and that window's [start, end)."""
    n = len(probabilities)
    if n == 0:
        return 0.0, 0, 0
    window = min(window, n)
    means = np.convolve(probabilities, np.ones(window) / window, mode="valid")
    at = int(np.argmax(means))
    return float(means[at]), at, at + window
