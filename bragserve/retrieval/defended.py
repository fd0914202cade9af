"""Retrieval with the defences the policy (or the request) switches on, and a report of what they did.

Order: candidates come from plain top-k or from the RAGPart vote; the echo filter
leaves out those that repeat the query word for word; the flood filter acts on groups of
near-identical candidates from several ingested documents; the disfluent-match filter leaves
out ingested candidates unusually close to the query that read as word salad (an optimiser's
work: HotFlip); when RAGMask runs, up to alpha*k
(at least min_candidates) of the rest are screened (best first, until the top k are
settled) and re-ranked by their similarity after the suspicious spans are removed, and
the top k are returned.
The report names every flagged chunk, the spans removed and the similarity before and
after, so a user can see exactly why a passage moved.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from bragserve.generation.base import Passage
from bragserve.policy import Policy
from bragserve.retrieval.citations import judge_citations, worst_windows
from bragserve.retrieval.dense import admit, dense_rows
from bragserve.retrieval.flood import find_floods
from bragserve.retrieval.ragmask import Candidate, RagMask
from bragserve.retrieval.ragpart import FragmentScores, RagPartViews, rank_votes
from bragserve.store.corpus import ChunkRow, Corpus, chunk_id, parse_chunk_id
from bragserve.store.live_index import LiveIndex
from bragserve.text import query_echo, reads_as_question, words


@dataclass
class DefenceReport:
    ragpart: dict | None = None
    ragmask: dict | None = None
    echo: dict | None = None
    flood: dict | None = None
    disfluent_match: dict | None = None
    citations: dict | None = None  # the write-back's screen of what an answer cites (citations.py)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def flagged_chunks(self) -> set[str]:
        """Chunks a defence found suspicious for this query: no write-back may rest on them alone."""
        return {f["chunk_id"] for f in self._mask_flags("candidates")} | \
            {c for f in (self.flood or {}).get("floods", []) for c in f["chunk_ids"]} | \
            {r["chunk_id"] for r in (self.disfluent_match or {}).get("removed", [])}

    @property
    def masked_citations(self) -> dict[str, tuple[tuple[int, int], ...]]:
        """RAGMask's flags on an answer's citations (``screen_citations``), with their character spans."""
        return {f["chunk_id"]: tuple((span["start"], span["end"]) for span in f["spans"])
                for f in self._mask_flags("citations")}

    @property
    def suspect_citations(self) -> dict[str, str]:
        """Cited chunks the write-back's screen of citations found suspicious, each with the reason."""
        out = {}
        for check in ("flood", "disfluency"):
            for f in ((self.citations or {}).get(check) or {}).get("flagged", []):
                out.setdefault(f["chunk_id"], f["reason"])
        return out

    def _mask_flags(self, scope: str) -> list[dict]:
        return (self.ragmask or {}).get("flagged", []) if (self.ragmask or {}).get("scope") == scope else []

    def spent(self, step: str, started: float) -> None:
        """Adds the milliseconds since ``started`` to ``step``: a query that fetches deeper after a large flood runs
        the candidates, echo and flood steps more than once, and its report counts all of it."""
        elapsed = (time.perf_counter() - started) * 1000
        self.timings_ms[step] = round(self.timings_ms.get(step, 0.0) + elapsed, 3)

    def as_dict(self) -> dict:
        return {"ragpart": self.ragpart, "ragmask": self.ragmask, "echo": self.echo, "flood": self.flood,
                "disfluent_match": self.disfluent_match, "citations": self.citations,
                "timings_ms": self.timings_ms}


PASTED = 0.9  # share of a candidate's words the query repeats as one run: the user pasted that document


class DefendedRetriever:
    def __init__(self, *, corpus: Corpus, index: LiveIndex, views: FragmentScores | RagPartViews | None,
                 mask: RagMask, dim: int) -> None:
        self.corpus, self.index, self.views, self.mask, self.dim = corpus, index, views, mask, dim

    def _ragpart(self, q: np.ndarray, want: int, policy: Policy, max_generated: int | None,
                 report: DefenceReport) -> list[ChunkRow]:
        rp = policy.ragpart
        if self.views is None or self.views.n != rp.fragments:
            raise RuntimeError("RAGPart views are not available for this corpus")
        depth = rp.depth or want
        intersection = rp.mode == "intersection"
        hits = self.views.search(q, rp.views_k, depth + 8)  # a few spare: some may be inactive by now
        votes = rank_votes(hits, intersection=intersection)
        if depth < want and len(votes) < want + 8:
            # The vote at the fixed depth ranks the first candidates alike whatever k (the flood filter's pool is
            # among them); a query that needs more candidates gets the rest from a deeper vote, after them.
            seen = {v.vid for v in votes}
            deeper = rank_votes(self.views.search(q, rp.views_k, want + 8), intersection=intersection)
            votes += [v for v in deeper if v.vid not in seen]
        rows = self.corpus.chunks_by_vids([v.vid for v in votes])
        chosen = admit(rows, [v.vid for v in votes], want, max_generated)
        by_vid = {v.vid: v for v in votes}
        report.ragpart = {"index": self.views.kind, "views": len(hits), "fragments": rp.fragments,
                          "views_k": rp.views_k, "mode": rp.mode, "depth": depth, "indexed_chunks": self.views.count(),
                          "votes": {r.id: by_vid[r.vid].votes for r in chosen}}
        return chosen

    @staticmethod
    def _echo_skipped(query: str, policy: Policy) -> str | None:
        if len(words(query)) < policy.echo.min_words:
            return f"the query has fewer than {policy.echo.min_words} words"
        if policy.echo.questions_only and not reads_as_question(query):
            return "the query does not read as a question (echo.questions_only)"
        return None

    @staticmethod
    def _drop_echoes(query: str, scored: list[tuple[ChunkRow, float]], policy: Policy,
                     report: DefenceReport) -> list[tuple[ChunkRow, float]]:
        """Candidates that quote the query are left out (they stay in the corpus; the report names them)."""
        echo = policy.echo
        started = time.perf_counter()
        kept, removed = [], []
        for row, score in scored:
            share = query_echo(query, row.text)
            if share >= echo.threshold:
                removed.append({"chunk_id": row.id, "doc_id": row.doc_id, "share": round(share, 3),
                                "similarity": round(score, 6)})
            else:
                kept.append((row, score))
        report.echo = {"threshold": echo.threshold, "candidates": len(scored), "removed": removed}
        report.spent("echo", started)
        return kept

    def _drop_floods(self, scored: list[tuple[ChunkRow, float]], policy: Policy,
                     report: DefenceReport) -> list[tuple[ChunkRow, float]]:
        """Groups of near-identical ingested candidates from several documents are left out (``keep_one``: all but
        the best); the report names every member, and ``flagged_chunks`` keeps write-backs off them."""
        flood = policy.flood
        started = time.perf_counter()
        ingested = [i for i, (row, _) in enumerate(scored) if row.source != "writeback"]
        vectors = self.corpus.embeddings(np.array([scored[i][0].vid for i in ingested], dtype=np.int64), self.dim)
        found = find_floods([scored[i][0].doc_id for i in ingested], vectors, flood.similarity, flood.min_documents,
                            flood.pool, flood.core_similarity)
        dropped: set[int] = set()
        groups = []
        for group in found:
            members = [ingested[m] for m in group.members]  # best first: candidates come ranked
            dropped.update(members[1:] if flood.action == "keep_one" else members)
            groups.append({"documents": group.documents, "chunk_ids": [scored[m][0].id for m in members],
                           "doc_ids": sorted({scored[m][0].doc_id for m in members}),
                           "kept": scored[members[0]][0].id if flood.action == "keep_one" else None})
        report.flood = {"similarity": flood.similarity, "min_documents": flood.min_documents,
                        "core_similarity": flood.core_similarity, "action": flood.action,
                        "pool": min(flood.pool, len(ingested)), "candidates": len(ingested), "floods": groups}
        report.spent("flood", started)
        return [rs for i, rs in enumerate(scored) if i not in dropped]

    def _drop_disfluent_matches(self, scored: list[tuple[ChunkRow, float]], query: str | None, policy: Policy,
                                report: DefenceReport) -> list[tuple[ChunkRow, float]]:
        """Ingested candidates at least ``min_similarity`` to the query whose stored worst window reads as replaced
        tokens are left out (they stay in the corpus; the report names them); for a question, also those at least
        ``wide_similarity`` whose worst window reaches ``wide_disfluency``. Only the few candidates that close
        are looked up, so a query none comes near costs nothing. A candidate the query quotes almost whole is the
        document a user pasted to find it, and is kept."""
        match = policy.disfluent_match
        started = time.perf_counter()
        question = query is not None and reads_as_question(query)
        threshold = match.disfluency if question else match.keyword_disfluency
        if threshold <= 0:
            report.disfluent_match = {"min_similarity": match.min_similarity, "disfluency": 0.0, "query": "keywords",
                                      "checked": 0, "scored_now": 0, "pasted": [], "removed": [],
                                      "skipped": "the query does not read as a question (keyword_disfluency = 0)"}
            return scored
        wide = match.wide_similarity if question and match.wide_disfluency > 0 else match.min_similarity
        reach = min(match.min_similarity, wide)
        close = [row for row, score in scored if score >= reach and row.source != "writeback"]
        pasted = [row.id for row in close if query is not None and query_echo(row.text, query) >= PASTED]
        close = [row for row in close if row.id not in pasted]
        # An unscored chunk is scored now: only the rare one this close.
        stored, scored_now = worst_windows(self.corpus, self.mask.tokens, close, policy)
        similarity = {row.vid: score for row, score in scored}
        removed = {vid for vid, value in stored.items()
                   if (similarity[vid] >= match.min_similarity and value >= threshold)
                   or (similarity[vid] >= wide and value >= match.wide_disfluency)}
        report.disfluent_match = {
            "min_similarity": match.min_similarity, "disfluency": threshold,
            "wide_similarity": wide if wide < match.min_similarity else None, "wide_disfluency": match.wide_disfluency,
            "query": "question" if question else "keywords", "checked": len(close), "scored_now": scored_now,
            "pasted": pasted,
            "removed": [{"chunk_id": row.id, "doc_id": row.doc_id, "similarity": round(score, 6),
                         "disfluency": round(stored[row.vid], 4)} for row, score in scored if row.vid in removed]}
        report.spent("disfluent_match", started)
        return [rs for rs in scored if rs[0].vid not in removed]

    def _ragmask(self, q: np.ndarray, scored: list[tuple[ChunkRow, float]], k: int, policy: Policy, method: str,
                 report: DefenceReport, scope: str = "candidates") -> list[tuple[ChunkRow, float]]:
        """Screen the candidates and re-rank them by their similarity after the flagged spans are removed.

        Lazy (the default): a candidate's final similarity is at most its similarity before (a flag never
        promotes), so ranking the unscreened by their similarity before is an upper bound. Screening whatever
        is in the top k by that bound, until all of the top k are screened, returns exactly the top k of
        screening everyone, usually for half the encoder passes."""
        started = time.perf_counter()
        before = {r.vid: s for r, s in scored}
        final: dict[int, float] = {}
        decisions = []
        while True:
            ranked = sorted(scored, key=lambda rs: -final.get(rs[0].vid, before[rs[0].vid]))  # stable: ties keep order
            todo = [r for r, _ in (ranked[:k] if policy.ragmask.lazy else ranked) if r.vid not in final]
            if not todo:
                break
            features = self.corpus.mask_features([r.vid for r in todo], self.dim) if method == "fast" else None
            batch = self.mask.screen(q, [Candidate(r.vid, r.text, before[r.vid]) for r in todo], policy.ragmask,
                                     features, method)
            final.update((d.vid, d.similarity_after) for d in batch)  # never above the similarity before
            decisions += batch
        doc_of = {r.vid: r.doc_id for r, _ in scored}
        report.ragmask = {
            "scope": scope, "method": method, "delta": policy.ragmask.delta, "lazy": policy.ragmask.lazy,
            "candidates": len(scored),
            "screened": [chunk_id(d.vid) for d in decisions],
            "unscreened": [chunk_id(r.vid) for r, _ in scored if r.vid not in final],
            "windows_checked": sum(d.windows_checked for d in decisions),
            "windows_estimated": sum(d.windows_estimated for d in decisions),
            "flagged": [{"chunk_id": chunk_id(d.vid), "doc_id": doc_of[d.vid],
                         "similarity_before": round(d.similarity_before, 6),
                         "similarity_after": round(d.similarity_after, 6), "spans": d.spans}
                        for d in decisions if d.flagged]}
        report.spent("ragmask", started)
        return [(r, final.get(r.vid, before[r.vid])) for r, _ in ranked]  # the unscreened rank below k

    def screen_citations(self, q: np.ndarray, passages: list[Passage], cited: set[str], policy: Policy,
                         report: DefenceReport) -> None:
        """RAGMask over the passages an answer cites, for a write-back when retrieval did not screen them
        (``screening.ragmask``). The passages served stay as they were: RAGMask demotes some short honest passages
        (benign SR 82 -> 76% in bench poison), a cost worth paying only where a write-back would rest on them.
        The screening gate decides what a flag means for each sentence (``Candidate.masked``)."""
        vids = {p.chunk_id: parse_chunk_id(p.chunk_id) for p in passages if p.chunk_id in cited}
        rows = self.corpus.chunks_by_vids([v for v in vids.values() if v is not None])
        scored = [(rows[v], p.score) for p in passages if (v := vids.get(p.chunk_id)) is not None and v in rows]
        if scored:
            self._ragmask(q, scored, len(scored), policy, policy.ragmask.method, report, scope="citations")

    def judge_citations(self, passages: list[Passage], cited: set[str], policy: Policy,
                        report: DefenceReport) -> None:
        """What the retrieval filters decide from one query's candidates, decided around each cited ingested chunk
        instead, for a write-back (bragserve/retrieval/citations.py)."""
        started = time.perf_counter()
        report.citations = judge_citations(self.corpus, self.index, self.mask.tokens, self.dim, passages, cited,
                                           policy)
        report.spent("citations", started)

    def _candidates(self, q: np.ndarray, want: int, policy: Policy, max_generated: int | None,
                    report: DefenceReport) -> list[tuple[ChunkRow, float]]:
        """The first ``want`` candidates with their cosine to the query: plain top-k or the RAGPart vote."""
        if policy.ragpart.enabled:
            rows = self._ragpart(q, want, policy, max_generated, report)
            vectors = self.corpus.embeddings(np.array([r.vid for r in rows], dtype=np.int64), self.dim)
            return [(r, float(v @ q)) for r, v in zip(rows, vectors)]
        return dense_rows(self.index, self.corpus, q, want, max_generated)

    def retrieve(self, q: np.ndarray, k: int, policy: Policy, max_generated: int | None,
                 ragmask_method: str | None = None, query: str | None = None) -> tuple[list[Passage], DefenceReport]:
        """Top k under the policy's defences. ``query`` is the text, needed by the echo filter (without it the
        filter does not run: POST /writebacks judges its citations with the screening gate instead)."""
        report = DefenceReport()
        use_mask = policy.ragmask.enabled
        echo_query = query if policy.echo.enabled else None
        if echo_query is not None and (skipped := self._echo_skipped(echo_query, policy)):
            report.echo = {"threshold": policy.echo.threshold, "candidates": 0, "removed": [], "skipped": skipped}
            echo_query = None
        mask_candidates = max(math.ceil(policy.ragmask.alpha * k), policy.ragmask.min_candidates)
        want = max(k, mask_candidates if use_mask else k,
                   math.ceil(policy.echo.candidates * k) if echo_query is not None else k,
                   policy.flood.pool + k if policy.flood.enabled else k)
        while True:
            started = time.perf_counter()
            fetched = self._candidates(q, want, policy, max_generated, report)
            report.spent("candidates", started)
            scored = fetched
            if echo_query is not None:
                scored = self._drop_echoes(echo_query, scored, policy, report)
            if policy.flood.enabled and scored:
                scored = self._drop_floods(scored, policy, report)
            if policy.disfluent_match.enabled and scored:
                scored = self._drop_disfluent_matches(scored, query, policy, report)
            # A flood larger than the pool takes later candidates with it (they join it): fetch deeper until k
            # remain, or the corpus is exhausted. The verdict on every candidate is the same at any depth (the
            # pool is fixed, and a later one joins only by its own link to a member).
            if len(scored) >= k or len(fetched) < want:
                break
            want *= 2
        if use_mask and scored:
            scored = self._ragmask(q, scored[:mask_candidates], k, policy, ragmask_method or policy.ragmask.method,
                                   report)
        passages = [Passage(r.id, r.doc_id, r.text, round(s, 6), r.source, i + 1)
                    for i, (r, s) in enumerate(scored[:k])]
        return passages, report
