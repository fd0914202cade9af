"""Attribution: every sentence cites, every citation is real, active and retrieved for this query.

The Bidirectional RAG code passes an answer when one citation names one retrieved
passage; we hold every sentence and every citation to it. Whether the cited chunk is
the one that actually supports the sentence is decided with the grounding scores
(see ``misattributed`` in grounding.py).
"""

from __future__ import annotations

from bragserve.gates.report import GateResult
from bragserve.generation.base import Passage
from bragserve.store.corpus import ChunkRow, parse_chunk_id
from bragserve.text import CitedSentence


def check_structure(sentences: list[CitedSentence], retrieved: dict[str, Passage],
                    lookup: dict[int, ChunkRow]) -> GateResult:
    for i, sentence in enumerate(sentences):
        if not sentence.citations:
            return GateResult("attribution", False, 0.0, f"sentence {i + 1} carries no citation",
                              {"sentence": i, "text": sentence.text})
        for cid in sentence.citations:
            vid = parse_chunk_id(cid)
            row = lookup.get(vid) if vid is not None else None
            if row is None:
                return GateResult("attribution", False, 0.0, f"sentence {i + 1} cites {cid}, which does not exist",
                                  {"sentence": i, "citation": cid, "problem": "unknown"})
            if row.status != "active":
                return GateResult("attribution", False, 0.0, f"sentence {i + 1} cites {cid}, which is {row.status}",
                                  {"sentence": i, "citation": cid, "problem": row.status})
            if cid not in retrieved:
                return GateResult("attribution", False, 0.0,
                                  f"sentence {i + 1} cites {cid}, which was not retrieved for this query",
                                  {"sentence": i, "citation": cid, "problem": "not_retrieved"})
    return GateResult("attribution", True, 1.0)


def check_citation_support(sentences: list[CitedSentence], pair_scores: dict[tuple[int, str], float],
                           min_support: float) -> GateResult:
    """Every citation of a sentence must itself support it: no padding a lineage with unrelated sources."""
    weakest = 1.0
    for i, sentence in enumerate(sentences):
        for cid in sentence.citations:
            score = pair_scores[(i, cid)]
            weakest = min(weakest, score)
            if score < min_support:
                return GateResult("attribution", False, round(score, 4),
                                  f"sentence {i + 1} cites {cid}, which does not support it "
                                  f"(P(entailment) {score:.2f} < {min_support})",
                                  {"sentence": i, "citation": cid, "problem": "unsupported_citation"})
    return GateResult("attribution", True, round(weakest, 4))
