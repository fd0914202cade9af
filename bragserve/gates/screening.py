"""Anti-laundering: a write-back may not turn a suspicious source into a "verified" answer.

Entailment alone passes a laundered poison (the poison entails the answer that
repeats it). So every answer sentence must also rest on at least one supporting chunk
that no retrieval defence (RAGMask, the flood filter) flagged for this query, that is
active, and whose trust reaches the policy; with ``corroboration.min_sources`` > 1 it
must rest on that many distinct documents, counting other retrieved chunks that entail
it too. Every failure is the reason ``screening``.

An answer sentence that carries a run of non-words (``non_words``) is refused outright:
an extractive answer over a HotFlip poison copies the optimised tokens with the claim,
and no honest answer reads "oliveape americaarina live in screw country". Measured on
3,836 SQuAD dev sentences, 0.3% have 3 unknown words among 8 (foreign names). Optimised
tokens that *are* English words pass that test; the replaced-token head
(``disfluency``, bragserve/disfluency.py) reads them as words that do not follow from
each other.

When retrieval did not run RAGMask, the chunks an answer cites are screened by it before
the gates (``screening.ragmask``, DefendedRetriever.screen_citations): a cited chunk whose
similarity to the query is carried by a span the answer sentence does not quote is no
support for that sentence (``_unquoted``).

A document a person released from an ingest-screen quarantine is served but is no support
(``screening.released``): the reviewer judged it fit to retrieve, and what the screen found
(a copied question, token salad) still argues against it grounding a "verified" answer. In
the laundering run, the two poisons the default policy still wrote back came from such
documents, released by the benchmark as a reviewer approving everything would.

A cited chunk that belongs to a planted flood around it in the corpus
(``screening.flood``), or whose own text reads as optimised tokens wherever the answer
quotes it (``screening.source_disfluency``), is no support (bragserve/retrieval/citations.py):
the retrieval filters judge one query's candidates, and a poison planted for one question
is retrieved for nearby ones too, with too little of its flood in view or too far from
the query for the disfluent-match filter.

A chunk that repeats the query word for word is no support either, even when the
ingest screen let it through (a reviewer lifted its quarantine, or its question was
not phrased as one): honest text answers a question, text built to be retrieved for
it quotes it. PoisonedRAG's black-box poison is ``question + answer``. Measured on SQuAD
dev, where crowd workers copied phrases from the paragraph, 0.53% of questions have
90% of their words as one run in their own gold paragraph; every one of the 1,500
shipped PoisonedRAG texts (with the question) does.
"""

from __future__ import annotations

from collections.abc import Callable

from bragserve.gates.entailment import entailment
from bragserve.gates.nli import NLIModel
from bragserve.gates.report import Candidate, GateResult
from bragserve.non_words import worst_run
from bragserve.policy import Policy
from bragserve.store.corpus import ChunkRow, parse_chunk_id
from bragserve.text import CitedSentence, query_echo, words


def _why_not(cid: str, row: ChunkRow | None, candidate: Candidate, policy: Policy, sentence: str,
             released: set[str]) -> str | None:
    screening = policy.screening
    if row is None or row.status != "active":
        return "not active"
    if row.doc_id in released:  # empty unless screening.released
        return "released from an ingest-screen quarantine: served, but no support for a verified answer"
    if cid in candidate.flagged:
        return "flagged for this query (a RAGMask span, a planted flood or a disfluent match)"
    if cid in candidate.suspect:
        return candidate.suspect[cid]
    if cid in candidate.masked and (span := _unquoted(row.text, sentence, candidate.masked[cid])) is not None:
        return (f"its span {row.text[span[0]:span[1]]!r}, which the answer does not quote, carries its similarity "
                "to the query (RAGMask): text built to be retrieved")
    if row.trust < screening.min_trust:
        return f"trust {row.trust} below {screening.min_trust}"
    return _echo(row.text, candidate.query, policy)


def _unquoted(text: str, sentence: str, spans: tuple[tuple[int, int], ...]) -> tuple[int, int] | None:
    """The first RAGMask span of ``text`` not mostly inside where the answer sentence quotes it.

    RAGMask's signature, a span whose masking collapses the similarity, is also an honest chunk's one relevant
    sentence: for "who first climbed Everest and what is the tallest volcano?", masking the Olympus Mons sentence
    of a page on Mars does it. An answer that quotes that sentence rests on what made the chunk relevant. One that
    quotes something else rests on a chunk whose relevance came from elsewhere: a copied question, stuffed
    keywords, optimised tokens (bench poison: 4 of 60 honest write-backs refused when any flag counted). "Mostly":
    a masked window is 15 tokens wide and straddles a sentence boundary, so stuffed keywords right after the claim
    come flagged with the claim's last words."""
    start = text.find(sentence)  # an answer that does not quote its source verbatim quotes no span of it
    for a, b in spans:
        inside = min(b, start + len(sentence)) - max(a, start) if start >= 0 else 0
        if inside < (b - a) / 2:
            return a, b
    return None


def _echo(text: str, query: str, policy: Policy) -> str | None:
    screening = policy.screening
    if screening.query_echo <= 0 or len(words(query)) < screening.query_echo_min_words:
        return None
    share = query_echo(query, text)
    if share >= screening.query_echo:
        return f"repeats {share:.0%} of the query word for word (text built to be retrieved for it)"
    return None


def screening_gate(candidate: Candidate, sentences: list[CitedSentence], pair_scores: dict[tuple[int, str], float],
                   lookup: dict[int, ChunkRow], policy: Policy, nli: NLIModel,
                   disfluency: Callable[[str], tuple[float, str] | None] | None = None,
                   released: set[str] | None = None) -> GateResult:
    """``disfluency`` scores a text's worst window with the replaced-token head (the write-back loop passes one that
    shares the answer's encoder pass with the novelty gate); without it the disfluency check is skipped.
    ``released``: cited documents a person released from an ingest-screen quarantine."""
    released = released or set()
    support_min = policy.attribution.min_citation_support
    need = policy.corroboration.min_sources
    rows = {cid: lookup.get(parse_chunk_id(cid) or -1) for s in sentences for cid in s.citations}
    if policy.screening.enabled:
        for i, sentence in enumerate(sentences):
            if garbled := _non_words(sentence.text, policy):
                return GateResult("screening", False, 0.0, f"sentence {i + 1} {garbled}",
                                  {"sentence": i, "problem": "non_words"})
        if policy.screening.disfluency and disfluency is not None:
            worst = disfluency(" ".join(s.text for s in sentences))
            if worst is not None and worst[0] >= policy.screening.disfluency:
                return GateResult("screening", False, 0.0,
                                  f"copies a run of words that do not follow from each other ({worst[1]!r}: "
                                  f"replaced-token probability {worst[0]:.2f}), the fingerprint of optimised tokens",
                                  {"problem": "disfluency", "score": worst[0], "window": worst[1]})
    per_sentence = []
    for i, sentence in enumerate(sentences):
        supporters = [cid for cid in sentence.citations if pair_scores[(i, cid)] >= support_min]
        # Screening off (the undefended baseline) refuses nothing; corroboration still counts documents.
        refused = {cid: _why_not(cid, rows[cid], candidate, policy, sentence.text, released)
                   if policy.screening.enabled else None for cid in supporters}
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


def _non_words(text: str, policy: Policy) -> str | None:
    need = policy.screening.non_words
    if not need:
        return None
    count, words = worst_run(text, 8)
    if count >= need:
        return (f"copies a run of non-words ({count} of 8 unknown to an English word list: {words!r}), the "
                "fingerprint of optimised trigger tokens")
    return None


def _other_supporting_docs(candidate: Candidate, sentence: CitedSentence, have: set[str], policy: Policy,
                           nli: NLIModel) -> set[str]:
    """Other retrieved, unflagged chunks from other documents that also entail the sentence."""
    screened = policy.screening.enabled
    others = [p for cid, p in candidate.retrieved.items()
              if cid not in sentence.citations and p.doc_id not in have
              and not (screened and (cid in candidate.flagged or _echo(p.text, candidate.query, policy) is not None))]
    if not others:
        return set()
    scores, _ = entailment(nli, [(p.text, sentence.text) for p in others], verbatim=policy.grounding.verbatim)
    return {p.doc_id for p, score in zip(others, scores) if float(score) >= policy.grounding.min}
