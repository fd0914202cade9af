"""Grounding: every answer sentence must be entailed by a passage it cites.

Each sentence is scored against each of its cited chunks (NLI, premise = chunk,
hypothesis = sentence); a sentence's support is the best of its citations, and the
answer's grounding is its weakest sentence, because one unsupported claim is enough
to make a write-back false.
"""

from __future__ import annotations

import numpy as np

from bragserve.gates.entailment import entailment
from bragserve.gates.nli import NLIModel
from bragserve.gates.report import GateResult
from bragserve.text import CitedSentence


def score_citations(sentences: list[CitedSentence], chunk_text: dict[str, str], nli: NLIModel, *,
                    verbatim: bool = True) -> tuple[dict[tuple[int, str], float], set[tuple[int, str]]]:
    """P(entailment) for every (sentence, cited chunk) pair, in one batch; and the pairs whose chunk states the
    sentence word for word (scored 1.0 without the model, see entailment.py)."""
    keys = [(i, cid) for i, s in enumerate(sentences) for cid in s.citations]
    scores, stated = entailment(nli, [(chunk_text[cid], sentences[i].text) for i, cid in keys], verbatim=verbatim)
    return ({key: float(p) for key, p in zip(keys, scores)},
            {key for key, was_stated in zip(keys, stated) if was_stated})


def grounding_gate(sentences: list[CitedSentence], pair_scores: dict[tuple[int, str], float],
                   minimum: float, review_min: float, stated: set[tuple[int, str]] | None = None
                   ) -> tuple[GateResult, list[float]]:
    per_sentence = [max(pair_scores[(i, c)] for c in s.citations) for i, s in enumerate(sentences)]
    weakest = min(per_sentence)
    worst = per_sentence.index(weakest)
    details = {"per_sentence": [round(x, 4) for x in per_sentence], "weakest_sentence": worst,
               "min": minimum, "review_min": review_min,
               "verbatim": sorted({i for i, _ in stated or ()})}
    if weakest >= minimum:
        return GateResult("grounding", True, round(weakest, 4), None, details), per_sentence
    band = "in the review band" if weakest >= review_min else "below the review band"
    return GateResult("grounding", False, round(weakest, 4),
                      f"sentence {worst + 1} is not entailed by its citations (P(entailment) {weakest:.2f} < "
                      f"{minimum}; {band})", {**details, "band": weakest >= review_min}), per_sentence


def misattributed(sentences: list[CitedSentence], per_sentence: list[float], threshold: float,
                  other_text: dict[str, str], nli: NLIModel, similarity: np.ndarray | None = None,
                  min_similarity: float = -1.0, verbatim: bool = True) -> GateResult | None:
    """For sentences their citations do not support: is a different retrieved chunk the real source?

    ``similarity`` (sentences x other chunks, in ``other_text`` order) lets chunks far from a
    sentence go unscored: NLI on all 17 other chunks POST /writebacks retrieves was 0.4-1.5 s
    per rejected answer, and a chunk that entails a sentence is about the same thing (on SQuAD
    every such chunk was >= 0.53 cosine to the sentence; ``attribution.prefilter_similarity``)."""
    weak = [i for i, score in enumerate(per_sentence) if score < threshold]
    keys = [(i, cid) for i in weak for j, cid in enumerate(other_text) if cid not in sentences[i].citations
            and (similarity is None or similarity[i, j] >= min_similarity)]
    if not keys:
        return None
    scores, _ = entailment(nli, [(other_text[cid], sentences[i].text) for i, cid in keys], verbatim=verbatim)
    for (i, cid), p in zip(keys, scores):
        if float(p) >= threshold:
            cited = ", ".join(sentences[i].citations)
            return GateResult("attribution", False, round(per_sentence[i], 4),
                              f"sentence {i + 1} is supported by {cid}, not by its citation {cited}",
                              {"sentence": i, "citation": cited, "supported_by": cid,
                               "problem": "misattributed", "entailment": round(float(p), 4)})
    return None
