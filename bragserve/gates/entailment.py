"""P(entailment) for (premise, hypothesis) pairs, where a premise that states the hypothesis needs no model.

The extractive generator copies whole sentences out of the chunk it cites, so every
grounding pair it produces is a sentence scored against the text it was cut from. The
NLI model is not certain of those: of 153 such pairs from `bench perf`-style answers at
10k chunks, 3 scored below `grounding.min` ("A teacher must enjoy teaching." against
"A teacher must enjoy teaching. If they do not enjoy what they are doing, the students
will be able to tell." scored 0.54), which sent answers copied word for word to review
or rejection, and those pairs were half of the gates' NLI time (in process at 10k chunks:
112 -> 55 ms per answer with the rule, every other decision equal).

Only a whole sentence of the premise, as the package's one segmenter cuts it, counts,
compared after collapsing whitespace: a hypothesis found inside a longer sentence ("It
is false that X" holds "X") is not stated by it and goes to the model like any other
pair. `grounding.verbatim = false` sends every pair to the model.
"""

from __future__ import annotations

import numpy as np

from bragserve.gates.nli import NLIModel
from bragserve.text import split_sentences


def _normal(text: str) -> str:
    return " ".join(text.split())


def states(premise: str, hypothesis: str) -> bool:
    """True when ``hypothesis`` is one of ``premise``'s sentences, word for word."""
    wanted = _normal(hypothesis)
    return bool(wanted) and wanted in _normal(premise) and any(
        _normal(s.text) == wanted for s in split_sentences(premise))


def entailment(nli: NLIModel, pairs: list[tuple[str, str]], *, verbatim: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """(P(entailment) per pair, which pairs were decided verbatim), in the order given.

    Stated pairs score 1.0; the rest go to the model in one call."""
    stated = np.array([verbatim and states(p, h) for p, h in pairs], dtype=bool)
    scores = np.ones(len(pairs), dtype=np.float32)
    todo = [i for i in range(len(pairs)) if not stated[i]]
    if todo:
        scores[todo] = nli.probabilities([pairs[i] for i in todo])[:, 0]
    return scores, stated
