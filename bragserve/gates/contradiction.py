"""Contradiction: an answer that an active retrieved chunk contradicts is not written; a person decides.

Only chunks close to a sentence are checked (unrelated text cannot contradict it), the
closest first, up to a fixed number of pairs per answer, to bound the NLI cost.
"""

from __future__ import annotations

import numpy as np

from bragserve.config import ContradictionPolicy
from bragserve.gates.nli import NLIModel
from bragserve.gates.report import GateResult
from bragserve.text import CitedSentence


def contradiction_gate(sentences: list[CitedSentence], sentence_vectors: np.ndarray, chunk_ids: list[str],
                       chunk_texts: list[str], chunk_vectors: np.ndarray, nli: NLIModel,
                       policy: ContradictionPolicy) -> GateResult:
    if not policy.enabled or not chunk_ids or not sentences:
        return GateResult("contradiction", True, 0.0, None, {"checked": 0})
    sims = sentence_vectors @ chunk_vectors.T  # sentences x chunks
    pairs = [(float(sims[i, j]), i, j) for i in range(len(sentences)) for j in range(len(chunk_ids))
             if sims[i, j] >= policy.min_similarity]
    pairs = sorted(pairs, reverse=True)[:policy.max_pairs]
    if not pairs:
        return GateResult("contradiction", True, 0.0, None, {"checked": 0})
    probs = nli.probabilities([(chunk_texts[j], sentences[i].text) for _, i, j in pairs])
    worst = int(np.argmax(probs[:, 2]))
    score = float(probs[worst, 2])
    _, i, j = pairs[worst]
    details = {"checked": len(pairs), "chunk": chunk_ids[j], "sentence": i, "min_probability": policy.min_probability}
    if score >= policy.min_probability:
        return GateResult("contradiction", False, round(score, 4),
                          f"sentence {i + 1} is contradicted by {chunk_ids[j]} (P(contradiction) {score:.2f})",
                          details)
    return GateResult("contradiction", True, round(score, 4), None, details)
