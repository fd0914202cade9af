"""Contradiction: an answer that an active chunk contradicts is not written; a person decides.

Each answer sentence is compared with the most similar sentence of every other
retrieved chunk (with one sentence of context either side), and only windows about
the same thing are checked: comparing whole chunks let loosely related text ("the
largest planet in the Solar System" against "the tallest volcano in the Solar System")
look contradictory to an SNLI-trained model. The closest pairs go first, up to a fixed
number per answer, to bound the NLI cost; passage sentences are already cached by the
extractive generator. Splitting and encoding every other retrieved chunk was most of
the gate time (17 chunks for POST /writebacks), so chunks whose stored embedding is
far from every answer sentence are skipped first: a chunk that holds a sentence about
the same thing is itself similar to it (``prefilter_similarity``). Even so, encoding the
sentences left was 80% of the gate time, so by default (``pair_search = "fragments"``)
the search reads the fragment vectors RAGPart stored at ingest instead of encoding.

The chunks checked are not only those the query retrieved but also the active chunks
nearest each answer sentence in the whole corpus (``neighbours``): PoisonedRAG plants
five poisons for a top-5, so under attack the query retrieves nothing but poisons, and
the clean source that contradicts them sits just outside what the query saw.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from bragserve.embedding import Embedder
from bragserve.gates.entailment import states
from bragserve.gates.nli import NLIModel
from bragserve.gates.report import GateResult
from bragserve.generation.base import Passage
from bragserve.policy import ContradictionPolicy
from bragserve.retrieval.features import fragment_spans
from bragserve.store.corpus import ChunkRow, Corpus
from bragserve.store.live_index import LiveIndex
from bragserve.text import CitedSentence, Sentence, split_sentences


Pair = tuple[float, int, str, str]  # (similarity, answer sentence, chunk id, premise window)


def _windows(sentences: list[CitedSentence], sentence_vectors: np.ndarray, passages: list[Passage],
             embedder: Embedder, policy: ContradictionPolicy, fragments: dict[str, np.ndarray]) -> list[Pair]:
    """(similarity, answer sentence, chunk id, premise window) for every pair about the same thing.

    A chunk cited by one sentence is a premise for the others: an extractive answer that
    stitches "opened in 1932" from one source to "first crossed in 1950" from another
    contradicts itself, whichever source is right.

    Chunks with stored fragment vectors are searched by those: encoding every candidate
    chunk's sentences was 80% of the gate time on SQuAD (60-125 sentences per answer, ~9 ms
    each on 2 cores), the fragments cost one SQLite read. A fragment stands for the sentence
    holding most of it; the premise is that sentence with one either side either way (the
    bare fragment, cut mid-sentence, dilutes what NLI sees)."""
    out: list[Pair] = []
    by_sentence = []
    for passage in passages:
        if passage.chunk_id in fragments:
            stored = fragments[passage.chunk_id]
            sims = sentence_vectors @ stored.astype(np.float32).T
            # Sentences are cut only for a chunk with a fragment close enough to pair: the sentence splitter
            # was 11% of POST /writebacks' gate time (py-spy, 10k chunks) when every candidate chunk was cut.
            if not _any_pair(sentences, sims, passage.chunk_id, policy.fragment_similarity):
                continue
            parts = split_sentences(passage.text)
            if not parts:
                continue
            anchors = [int(np.argmax([min(end, s.end) - max(start, s.start) for s in parts]))
                       for start, end in fragment_spans(passage.text, len(stored))]
            out += _best_windows(sentences, sims, anchors, passage.chunk_id, parts, policy.fragment_similarity)
        elif parts := split_sentences(passage.text):
            by_sentence.append((passage, parts))
    # One encoder call for every sentence searched that way: per-passage calls cost more than the encoding.
    vectors = embedder.encode_cached([s.text for _, parts in by_sentence for s in parts])
    offset = 0
    for passage, parts in by_sentence:
        sims = sentence_vectors @ vectors[offset:offset + len(parts)].T
        offset += len(parts)
        out += _best_windows(sentences, sims, list(range(len(parts))), passage.chunk_id, parts, policy.min_similarity)
    return sorted(out, key=lambda x: -x[0])


def _any_pair(sentences: list[CitedSentence], sims: np.ndarray, chunk_id: str, min_similarity: float) -> bool:
    """Whether ``_best_windows`` would keep a pair from this chunk (a sentence not citing it, close enough)."""
    return any(chunk_id not in sentences[i].citations and float(sims[i].max()) >= min_similarity
               for i in range(len(sentences)))


def _best_windows(sentences: list[CitedSentence], sims: np.ndarray, anchors: list[int], chunk_id: str,
                  parts: list[Sentence], min_similarity: float) -> list[Pair]:
    """Per answer sentence, the chunk's closest unit (a sentence, or a fragment standing for ``anchors[j]``)."""
    out = []
    for i in range(len(sentences)):
        if chunk_id in sentences[i].citations:  # its own source entails it (grounding checked that)
            continue
        j = int(np.argmax(sims[i]))
        if sims[i, j] >= min_similarity:
            anchor = anchors[j]
            out.append((float(sims[i, j]), i, chunk_id, " ".join(s.text for s in parts[max(0, anchor - 1):anchor + 2])))
    return out


def _worth_checking(pairs: list[Pair], sentences: list[CitedSentence], skip_stated: bool
                    ) -> tuple[list[Pair], int, int]:
    """The pairs the model could find a contradiction in, and how many were dropped as stated and as repeated.

    A premise window with the answer sentence as one of its sentences states it (the
    grounding gate's verbatim rule), and the same window from another chunk scores the
    same: in a corpus of near-copies (mirrors, joined passages, write-backs restating
    their sources) such pairs filled the budget and the NLI time without a chance of a
    contradiction, and crowded out the chunks that could disagree."""
    kept: list[Pair] = []
    seen: set[tuple[int, str]] = set()
    stated = repeated = 0
    for pair in pairs:
        _, i, _, window = pair
        if (i, window) in seen:
            repeated += 1
        elif skip_stated and states(window, sentences[i].text):
            stated += 1
        else:
            kept.append(pair)
        seen.add((i, window))
    return kept, stated, repeated


def _spread(pairs: list[Pair]) -> list[Pair]:
    """Every chunk's closest pair first, then every chunk's second, and so on (closest first within a round).

    By similarity alone, the near-identical poisons an answer was built from (one pair per
    answer sentence each) filled the pair budget before the clean chunk that disagrees was
    reached (measured: 12 of 12 pairs on 8 chunks)."""
    seen: Counter[str] = Counter()
    ranked = []
    for pair in pairs:
        ranked.append((seen[pair[2]], pair))
        seen[pair[2]] += 1
    return [pair for _, pair in sorted(ranked, key=lambda x: x[0])]


def neighbourhood(sentence_vectors: np.ndarray, n: int, index: LiveIndex, corpus: Corpus,
                  exclude: set[str]) -> list[Passage]:
    """The ``n`` active chunks nearest each answer sentence that are not in ``exclude`` (cited, retrieved).

    The search asks for ``n + len(exclude)``: the retrieved poisons are the answer's nearest
    chunks too, and must not use up the ``n``."""
    if n <= 0:
        return []
    hits = index.search_many(sentence_vectors, n + len(exclude))
    rows = corpus.chunks_by_vids(sorted({int(v) for _, ids in hits for v in ids}))
    found: dict[int, float] = {}
    for scores, ids in hits:
        kept = [(float(s), int(v)) for s, v in zip(scores, ids)
                if int(v) in rows and rows[int(v)].status == "active" and rows[int(v)].id not in exclude][:n]
        for score, vid in kept:
            found[vid] = max(found.get(vid, -1.0), score)
    near = sorted(((score, rows[vid]) for vid, score in found.items()), key=lambda x: -x[0])
    return [as_passage(row, score, rank) for rank, (score, row) in enumerate(near, start=1)]


def as_passage(row: ChunkRow, score: float, rank: int) -> Passage:
    return Passage(row.id, row.doc_id, row.text, round(score, 6), row.source, rank)


def contradiction_gate(sentences: list[CitedSentence], sentence_vectors: np.ndarray, passages: list[Passage],
                       passage_vectors: np.ndarray, embedder: Embedder, nli: NLIModel,
                       policy: ContradictionPolicy, fragments: dict[str, np.ndarray] | None = None) -> GateResult:
    """``passage_vectors`` are the stored chunk embeddings of ``passages``, row for row; ``fragments`` the stored
    fragment vectors by chunk id (``pair_search = "fragments"``; chunks without are searched by sentence)."""
    if not policy.enabled or not passages or not sentences:
        return GateResult("contradiction", True, 0.0, None, {"checked": 0})
    near = (sentence_vectors @ passage_vectors.T).max(axis=0) >= policy.prefilter_similarity
    candidates = [p for p, keep in zip(passages, near) if keep]
    fragments = fragments or {}
    found = _windows(sentences, sentence_vectors, candidates, embedder, policy, fragments)
    pairs, stated, repeated = _worth_checking(found, sentences, policy.skip_stated)
    pairs = _spread(pairs)[:policy.max_pairs]
    searched = {"chunks_screened": len(candidates),
                "searched_by_fragments": sum(p.chunk_id in fragments for p in candidates),
                "stated": stated, "repeated": repeated}
    if not pairs:
        return GateResult("contradiction", True, 0.0, None, {"checked": 0, **searched})
    probs = nli.probabilities([(window, sentences[i].text) for _, i, _, window in pairs])
    worst = int(np.argmax(probs[:, 2]))
    score = float(probs[worst, 2])
    similarity, i, chunk, _ = pairs[worst]
    details = {"checked": len(pairs), **searched, "chunk": chunk, "sentence": i,
               "similarity": round(similarity, 4), "min_probability": policy.min_probability}
    if score >= policy.min_probability:
        return GateResult("contradiction", False, round(score, 4),
                          f"sentence {i + 1} is contradicted by {chunk} (P(contradiction) {score:.2f})", details)
    return GateResult("contradiction", True, round(score, 4), None, details)
