"""Contradiction: an answer that an active retrieved chunk contradicts is not written; a person decides.

Each answer sentence is compared with the most similar sentence of every other
retrieved chunk (with one sentence of context either side), and only windows about
the same thing are checked: comparing whole chunks let loosely related text ("the
largest planet in the Solar System" against "the tallest volcano in the Solar System")
look contradictory to an SNLI-trained model. The closest pairs go first, up to a fixed
number per answer, to bound the NLI cost; passage sentences are already cached by the
extractive generator.
"""

from __future__ import annotations

import numpy as np

from bragserve.config import ContradictionPolicy
from bragserve.embedding import Embedder
from bragserve.gates.nli import NLIModel
from bragserve.gates.report import GateResult
from bragserve.generation.base import Passage
from bragserve.text import CitedSentence, split_sentences


def _windows(sentences: list[CitedSentence], sentence_vectors: np.ndarray, passages: list[Passage],
             embedder: Embedder, min_similarity: float) -> list[tuple[float, int, str, str]]:
    """(similarity, answer sentence, chunk id, premise window) for every pair about the same thing."""
    out = []
    for passage in passages:
        parts = split_sentences(passage.text)
        if not parts:
            continue
        sims = sentence_vectors @ embedder.encode_cached([s.text for s in parts]).T
        for i in range(len(sentences)):
            j = int(np.argmax(sims[i]))
            if sims[i, j] >= min_similarity:
                window = " ".join(s.text for s in parts[max(0, j - 1):j + 2])
                out.append((float(sims[i, j]), i, passage.chunk_id, window))
    return sorted(out, key=lambda x: -x[0])


def contradiction_gate(sentences: list[CitedSentence], sentence_vectors: np.ndarray, passages: list[Passage],
                       embedder: Embedder, nli: NLIModel, policy: ContradictionPolicy) -> GateResult:
    if not policy.enabled or not passages or not sentences:
        return GateResult("contradiction", True, 0.0, None, {"checked": 0})
    pairs = _windows(sentences, sentence_vectors, passages, embedder, policy.min_similarity)[:policy.max_pairs]
    if not pairs:
        return GateResult("contradiction", True, 0.0, None, {"checked": 0})
    probs = nli.probabilities([(window, sentences[i].text) for _, i, _, window in pairs])
    worst = int(np.argmax(probs[:, 2]))
    score = float(probs[worst, 2])
    similarity, i, chunk, _ = pairs[worst]
    details = {"checked": len(pairs), "chunk": chunk, "sentence": i, "similarity": round(similarity, 4),
               "min_probability": policy.min_probability}
    if score >= policy.min_probability:
        return GateResult("contradiction", False, round(score, 4),
                          f"sentence {i + 1} is contradicted by {chunk} (P(contradiction) {score:.2f})", details)
    return GateResult("contradiction", True, round(score, 4), None, details)
