"""Anti-laundering: a write-back may not turn a suspicious source into a "verified" answer.

Entailment alone passes a laundered poison (the poison entails the answer that
repeats it). So every answer sentence must also rest on at least one supporting chunk
that RAGMask did not flag for this query, that is active, and whose trust reaches the
policy; with ``corroboration.min_sources`` > 1 it must rest on that many distinct
documents, counting other retrieved chunks that entail it too. Every failure is the
reason ``screening``.
"""

from __future__ import annotations

from bragserve.config import Policy
from bragserve.gates.nli import NLIModel
from bragserve.gates.report import Candidate, GateResult
from bragserve.store.corpus import ChunkRow, parse_chunk_id
from bragserve.text import CitedSentence


def _why_not(cid: str, row: ChunkRow | None, flagged: frozenset[str], min_trust: float) -> str | None:
    if row is None or row.status != "active":
        return "not active"
    if cid in flagged:
        return "flagged by RAGMask for this query"
    if row.trust < min_trust:
        return f"trust {row.trust} below {min_trust}"
    return None


def screening_gate(candidate: Candidate, sentences: list[CitedSentence], pair_scores: dict[tuple[int, str], float],
                   lookup: dict[int, ChunkRow], policy: Policy, nli: NLIModel) -> GateResult:
    support_min = policy.attribution.min_citation_support
    need = policy.corroboration.min_sources
    rows = {cid: lookup.get(parse_chunk_id(cid) or -1) for s in sentences for cid in s.citations}
    per_sentence = []
    for i, sentence in enumerate(sentences):
        supporters = [cid for cid in sentence.citations if pair_scores[(i, cid)] >= support_min]
        refused = {cid: _why_not(cid, rows[cid], candidate.flagged, policy.screening.min_trust) for cid in supporters}
        clean = [cid for cid, why in refused.items() if why is None]
        if policy.screening.enabled and not clean:
            reasons = "; ".join(f"{cid}: {why}" for cid, why in refused.items()) or "no supporting citation"
            return GateResult("screening", False, 0.0, f"sentence {i + 1} rests only on suspicious sources ({reasons})",
                              {"sentence": i, "problem": "suspicious_support", "refused": refused})
        docs = {rows[cid].doc_id for cid in clean}  # type: ignore[union-attr]
        if len(docs) < need:
            docs |= _other_supporting_docs(candidate, sentence, docs, policy, nli)
        if len(docs) < need:
            return GateResult("screening", False, float(len(docs)),
                              f"sentence {i + 1} is supported by {len(docs)} independent document(s); "
                              f"corroboration.min_sources is {need}",
                              {"sentence": i, "problem": "corroboration", "documents": sorted(docs)})
        per_sentence.append(sorted(docs))
    return GateResult("screening", True, 1.0, None, {"supporting_documents": per_sentence,
                                                     "flagged_retrieved": sorted(candidate.flagged)})


def _other_supporting_docs(candidate: Candidate, sentence: CitedSentence, have: set[str], policy: Policy,
                           nli: NLIModel) -> set[str]:
    """Other retrieved, unflagged chunks from other documents that also entail the sentence."""
    others = [p for cid, p in candidate.retrieved.items()
              if cid not in sentence.citations and cid not in candidate.flagged and p.doc_id not in have]
    if not others:
        return set()
    probs = nli.probabilities([(p.text, sentence.text) for p in others])
    return {p.doc_id for p, pr in zip(others, probs) if float(pr[0]) >= policy.grounding.min}
