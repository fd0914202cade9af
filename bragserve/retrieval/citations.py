"""A write-back's screen of what an answer cites: the retrieval filters' questions, asked around each cited chunk.

The flood and disfluent-match filters judge one query's candidates. A poison planted for one
question is also retrieved, further down, for nearby ones: there too little of its flood may
reach the pool, and it sits too far from the query for the disfluent-match filter. Before a
write-back, each cited ingested chunk (one to three) is judged on its own instead: is it one
of a planted flood around it in the corpus (``screening.flood``), does its own text read as
optimised tokens (``screening.source_disfluency``)? The passages served are untouched; the
screening gate refuses support from what is found (``DefenceReport.suspect_citations``).
"""

from __future__ import annotations

import numpy as np

from bragserve.disfluency import bundled_head
from bragserve.generation.base import Passage
from bragserve.policy import Policy
from bragserve.retrieval.flood import find_floods
from bragserve.retrieval.token_encoder import TokenEncoder
from bragserve.store.corpus import ChunkRow, Corpus, parse_chunk_id
from bragserve.store.live_index import LiveIndex


def judge_citations(corpus: Corpus, index: LiveIndex, tokens: TokenEncoder, dim: int, passages: list[Passage],
                    cited: set[str], policy: Policy) -> dict:
    """The report ``defences.citations``: the chunks checked and what each enabled check flagged (with reasons)."""
    vids = [v for p in passages if p.chunk_id in cited and (v := parse_chunk_id(p.chunk_id)) is not None]
    rows = [r for r in corpus.chunks_by_vids(vids).values() if r.status == "active" and r.source != "writeback"]
    screening = policy.screening
    return {"checked": [r.id for r in rows],
            "flood": _flooded(corpus, index, dim, rows, policy) if screening.flood > 0 else None,
            "disfluency": _disfluent(corpus, tokens, rows, policy) if screening.source_disfluency > 0 else None}


def _flooded(corpus: Corpus, index: LiveIndex, dim: int, rows: list[ChunkRow], policy: Policy) -> dict:
    """A cited chunk that forms, with ``flood.min_documents - 1`` chunks of other ingested documents among its
    ``flood.pool`` nearest in the corpus, a group pairwise at ``screening.flood`` or more.

    The retrieval filter sees a flood only when enough of it reaches one query's pool. PoisonedRAG plants five
    variants for one query, and a nearby query that retrieves one or two of them could get a verified answer from
    them; around the citation the whole flood is in view. On the poison benchmark's corpus at 0.8, 99.7% of
    query-as-poison and 91.5% of paraphrase poisons are such members, against 1.6% of its clean documents and
    0.58% of SQuAD dev's paragraphs (whose write-backs it would refuse)."""
    similarity, need = policy.screening.flood, policy.flood.min_documents
    flagged = []
    cited = corpus.embeddings(np.array([r.vid for r in rows], dtype=np.int64), dim)
    for row, vector, (_, ids) in zip(rows, cited, index.search_many(cited, policy.flood.pool + 1)):
        order = [int(v) for v in ids if int(v) != row.vid]
        near = corpus.chunks_by_vids(order)
        group = [row] + [r for v in order if (r := near.get(v)) is not None and r.status == "active"
                         and r.source != "writeback"]
        vectors = np.vstack([vector, corpus.embeddings(np.array([r.vid for r in group[1:]], dtype=np.int64), dim)])
        found = next((f for f in find_floods([r.doc_id for r in group], vectors, similarity, need, None,
                                             similarity) if 0 in f.members), None)
        if found is not None:
            others = sorted({group[m].doc_id for m in found.members[1:]})
            flagged.append({"chunk_id": row.id, "doc_id": row.doc_id, "documents": found.documents,
                            "chunk_ids": [group[m].id for m in found.members[1:]], "doc_ids": others,
                            "reason": f"one of {found.documents} documents' chunks saying the same thing "
                                      f"(pairwise cosine >= {similarity}; {', '.join(others)}): a planted flood"})
    return {"similarity": similarity, "min_documents": need, "neighbours": policy.flood.pool, "flagged": flagged}


def _disfluent(corpus: Corpus, tokens: TokenEncoder, rows: list[ChunkRow], policy: Policy) -> dict:
    """A cited chunk whose worst window reads as optimised tokens, wherever the answer quotes it.

    The screening gate's own disfluency check reads the answer, which quotes the fluent claim of a HotFlip
    poison and not its optimised prefix; and the disfluent-match filter reads only candidates within 0.8 of the
    query (0.7 for a question), while a poison planted for one question is also retrieved, further down, for
    nearby ones (bench poison's last laundered write-back at 5fdfd1c: a HotFlip poison for "blood diseases that
    are sexually transmitted", worst window 0.36 to 0.41, cited for "causes for uti in women"). At 0.28 the
    head finds 88 / 92 / 100% of our prefix, spread and Contriever HotFlip poisons, and 0.41% of the
    benchmark's clean documents."""
    threshold = policy.screening.source_disfluency
    scores, scored_now = worst_windows(corpus, tokens, rows, policy)
    flagged = [{"chunk_id": r.id, "doc_id": r.doc_id, "disfluency": round(scores[r.vid], 4),
                "reason": f"its text reads as optimised tokens (worst window {scores[r.vid]:.2f} >= {threshold})"}
               for r in rows if scores[r.vid] >= threshold]
    return {"threshold": threshold, "scored_now": scored_now, "flagged": flagged}


def worst_windows(corpus: Corpus, tokens: TokenEncoder, rows: list[ChunkRow],
                  policy: Policy) -> tuple[dict[int, float], int]:
    """The replaced-token head's worst-window score of each chunk: stored at ingest, or (a chunk ingested before
    it was stored, or under a policy that did not run the head) computed now, in one encoder pass."""
    stored = corpus.disfluency([row.vid for row in rows])
    unscored = [row for row in rows if stored.get(row.vid) is None]
    if unscored:
        profiles = tokens.profile([row.text for row in unscored], size=policy.ragmask.mask_tokens,
                                  stride=policy.ragmask.stride, head=bundled_head())
        stored.update((row.vid, p.disfluency[0] if p.disfluency else 0.0) for row, p in zip(unscored, profiles))
    return {vid: float(value) for vid, value in stored.items()}, len(unscored)
