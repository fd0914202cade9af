"""The write-back gates in order; the first hard failure rejects, contradictions and borderline
grounding go to review, and only an answer that passes everything is accepted.

Attribution's structural checks run first because grounding cannot score a citation
that names nothing; whether a citation is the real source is decided from the
grounding scores.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from bragserve.embedding import Embedder
from bragserve.gates.attribution import check_citation_support, check_structure
from bragserve.gates.contradiction import as_passage, contradiction_gate, neighbourhood
from bragserve.gates.grounding import grounding_gate, misattributed, score_citations
from bragserve.gates.nli import NLIModel
from bragserve.gates.novelty import novelty_gate
from bragserve.gates.report import Candidate, GateResult, Verdict
from bragserve.gates.screening import screening_gate
from bragserve.policy import Policy
from bragserve.store import lineage
from bragserve.store import reviews as review_rows
from bragserve.store.corpus import Corpus, parse_chunk_id
from bragserve.store.live_index import LiveIndex
from bragserve.text import CitedSentence, split_cited


def _verdict(decision: str, gate: GateResult | None, gates: list[GateResult], sentences: list[CitedSentence],
             *, depth: int = 0, vector: np.ndarray | None = None, vids: list[int] | None = None,
             reason: str | None = None) -> Verdict:
    message = gate.message if gate is not None and gate.message else ("accepted" if decision == "accepted" else "")
    return Verdict(decision=decision, reason=reason or (gate.name if gate is not None else None),  # type: ignore
                   message=message, gates=gates, sentences=sentences, depth=depth,
                   answer_text=" ".join(s.text for s in sentences), answer_vector=vector, cited_vids=vids or [])


class _Steps:
    """Milliseconds per gate step, filled as the gates run: a response shows where its gate time went, and the
    performance benchmark splits it at every corpus size without a profiler attached."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self.into = into if into is not None else {}
        self.last = time.perf_counter()

    def done(self, step: str) -> None:
        now = time.perf_counter()
        self.into[step] = round((now - self.last) * 1000, 3)
        self.last = now


def evaluate(candidate: Candidate, *, policy: Policy, nli: NLIModel, embedder: Embedder, corpus: Corpus,
             index: LiveIndex, encode_answer: Callable[[str], np.ndarray] | None = None,
             disfluency: Callable[[str], tuple[float, str] | None] | None = None,
             timings: dict[str, float] | None = None) -> Verdict:
    """``encode_answer`` makes the whole answer's vector (default: the embedder); the write-back loop passes one
    that keeps what storing an accepted answer needs from the same encoder pass. ``disfluency`` scores the answer
    for the screening gate (from that same pass, in the write-back loop). ``timings`` receives the
    milliseconds of each step that ran."""
    steps = _Steps(timings)
    sentences = split_cited(candidate.answer)
    if candidate.default_citations:
        sentences = [s if s.citations else CitedSentence(s.text, candidate.default_citations) for s in sentences]
    gates: list[GateResult] = []
    if not sentences:
        empty = GateResult("attribution", False, 0.0, "the answer has no sentences")
        return _verdict("rejected", empty, [empty], sentences, reason="empty")

    cited = {cid for s in sentences for cid in s.citations}
    vids = {cid: parse_chunk_id(cid) for cid in cited}
    lookup = corpus.chunks_by_vids([v for v in vids.values() if v is not None])
    structure = check_structure(sentences, candidate.retrieved, lookup)
    steps.done("structure")
    if not structure.passed:
        return _verdict("rejected", structure, [structure], sentences)
    cited_vids = sorted({vids[c] for c in cited})  # type: ignore[misc]
    chunk_text = {cid: lookup[vids[cid]].text for cid in cited}  # type: ignore[index]

    pair_scores, stated = score_citations(sentences, chunk_text, nli, verbatim=policy.grounding.verbatim)
    grounding, per_sentence = grounding_gate(sentences, pair_scores, policy.grounding.min, policy.grounding.review_min,
                                             stated)
    steps.done("grounding")
    gates.append(grounding)
    in_band = False
    if not grounding.passed:
        others = {cid: p.text for cid, p in candidate.retrieved.items() if cid not in cited}
        other_vids = np.array([parse_chunk_id(cid) for cid in others], dtype=np.int64)
        similarity = (embedder.encode_cached([s.text for s in sentences])
                      @ corpus.embeddings(other_vids, embedder.dim).T)
        wrong_source = misattributed(sentences, per_sentence, policy.grounding.min, others, nli, similarity,
                                     policy.attribution.prefilter_similarity, policy.grounding.verbatim)
        steps.done("misattribution")
        if wrong_source is not None:
            gates.append(wrong_source)
            return _verdict("rejected", wrong_source, gates, sentences, vids=cited_vids)
        if not grounding.details.get("band"):
            return _verdict("rejected", grounding, gates, sentences, vids=cited_vids)
        in_band = True

    support = check_citation_support(sentences, pair_scores, policy.attribution.min_citation_support)
    gates.append(support)
    if not support.passed:
        return _verdict("rejected", support, gates, sentences, vids=cited_vids)

    released = review_rows.released(corpus.reader(), sorted({row.doc_id for row in lookup.values()})) \
        if policy.screening.enabled and policy.screening.released else set()
    screening = screening_gate(candidate, sentences, pair_scores, lookup, policy, nli, disfluency, released)
    steps.done("screening")
    gates.append(screening)
    if not screening.passed:
        return _verdict("rejected", screening, gates, sentences, vids=cited_vids)

    parent_docs = sorted({lookup[v].doc_id for v in cited_vids if lookup[v].source == "writeback"})
    depth = 1 + max(lineage.writeback_depths(corpus.reader(), parent_docs).values(), default=0)
    # depth 1 cites only ingested text; each generation of cited write-backs adds one.
    loop = GateResult("loop", depth - 1 <= policy.loop.max_depth, float(depth), None,
                      {"depth": depth, "max_depth": policy.loop.max_depth, "cites_writebacks": parent_docs})
    if not loop.passed:
        loop = GateResult("loop", False, float(depth),
                          f"cites write-backs {', '.join(parent_docs)}: depth {depth - 1} of generated sources "
                          f"exceeds loop.max_depth {policy.loop.max_depth}", loop.details)
        gates.append(loop)
        return _verdict("rejected", loop, gates, sentences, depth=depth, vids=cited_vids, reason="loop_depth")
    gates.append(loop)

    answer_text = " ".join(s.text for s in sentences)
    vector = encode_answer(answer_text) if encode_answer is not None else embedder.encode([answer_text])[0]
    novelty = novelty_gate(vector, sentences, chunk_text, index, corpus, policy.novelty.max_similarity)
    steps.done("novelty")
    gates.append(novelty)
    if not novelty.passed:
        return _verdict("rejected", novelty, gates, sentences, depth=depth, vector=vector, vids=cited_vids)

    sentence_vectors = embedder.encode_cached([s.text for s in sentences])
    others = [p for cid, p in candidate.retrieved.items() if cid not in cited]
    if policy.contradiction.enabled:
        own = [as_passage(lookup[v], 1.0, 0) for v in cited_vids] if len(cited_vids) > 1 else []
        others += own + neighbourhood(sentence_vectors, policy.contradiction.neighbours, index, corpus,
                                      cited | set(candidate.retrieved))
        other_vids = [parse_chunk_id(p.chunk_id) for p in others]
        other_vectors = corpus.embeddings(np.array(other_vids, dtype=np.int64), embedder.dim)
        fragments = {}
        if policy.contradiction.pair_search == "fragments":
            stored = corpus.fragments(sorted({v for v in other_vids if v is not None}), embedder.dim)
            fragments = {p.chunk_id: stored[v] for p, v in zip(others, other_vids) if v in stored}
    else:
        other_vectors, fragments = np.zeros((0, embedder.dim)), {}
    steps.done("neighbours")
    contradiction = contradiction_gate(sentences, sentence_vectors, others, other_vectors, embedder, nli,
                                       policy.contradiction, fragments)
    steps.done("contradiction")
    gates.append(contradiction)
    if not contradiction.passed:
        return _verdict("review", contradiction, gates, sentences, depth=depth, vector=vector, vids=cited_vids)
    if in_band:
        return _verdict("review", grounding, gates, sentences, depth=depth, vector=vector, vids=cited_vids)
    return _verdict("accepted", None, gates, sentences, depth=depth, vector=vector, vids=cited_vids)
