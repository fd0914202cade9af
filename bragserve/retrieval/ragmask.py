"""RAGMask (ALGORITHMS.md §3): spans whose masking collapses query similarity are removed.

A poison is retrievable because of a small span (the copied question, optimised
tokens); masking it makes the cosine to the query fall by at least delta. The exact
method re-encodes the candidate once per mask window. The fast method reads each
window's summed token states, stored at ingest, and estimates every masked embedding
as the mean of the remaining token states (one subtraction per window); only the
windows that estimate puts near the threshold are re-encoded exactly, so the
decision is always made on exact similarities while almost no window is re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bragserve.policy import RagMaskPolicy
from bragserve.retrieval.token_encoder import TokenEncoder, masked_estimate, windows
from bragserve.store.corpus import MaskFeatures


@dataclass(frozen=True)
class Candidate:
    vid: int
    text: str
    similarity: float  # cosine of the stored chunk vector and the query


@dataclass
class MaskDecision:
    vid: int
    similarity_before: float
    similarity_after: float
    flagged: bool = False
    spans: list[dict] = field(default_factory=list)  # {start, end, drop}: characters removed from the chunk
    windows_checked: int = 0  # windows re-encoded exactly
    windows_estimated: int = 0


def _merge(ranges: list[tuple[int, int, float]]) -> list[dict]:
    out: list[dict] = []
    for start, end, drop in sorted(ranges):
        if out and start <= out[-1]["end"]:
            out[-1]["end"] = max(out[-1]["end"], end)
            out[-1]["drop"] = max(out[-1]["drop"], drop)
        else:
            out.append({"start": start, "end": end, "drop": drop})
    return [{**r, "drop": round(r["drop"], 4)} for r in out]


class RagMask:
    def __init__(self, tokens: TokenEncoder) -> None:
        self.tokens = tokens

    def _tokenise(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        with self.tokens.embedder.lock:  # the tokenizer's settings are shared state (Embedder.tokenizer)
            enc = self.tokens.tokenizer(text, truncation=True, max_length=self.tokens.max_length,
                                        return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def screen(self, query_vector: np.ndarray, candidates: list[Candidate], policy: RagMaskPolicy,
               features: dict[int, MaskFeatures] | None = None, method: str | None = None) -> list[MaskDecision]:
        """Decide every candidate; ``method`` overrides the policy's (the benchmark runs both)."""
        method = method or policy.method
        q = np.asarray(query_vector, dtype=np.float32)
        jobs: list[tuple[MaskDecision, list[int], list[tuple[int, int]], list[tuple[int, int]]]] = []
        decisions = []
        for cand in candidates:
            decision = MaskDecision(cand.vid, cand.similarity, cand.similarity)
            decisions.append(decision)
            feats = (features or {}).get(cand.vid)
            usable = (method == "fast" and feats is not None and feats.window_size == policy.mask_tokens
                      and feats.window_stride == policy.stride)
            if usable:
                # The stored windows are this chunk's (same embedder, checked at open): the text is
                # tokenised only when a window needs an exact check.
                lengths = np.array([b - a for a, b, _, _ in feats.windows])
                estimate = masked_estimate(feats.total, feats.tokens, feats.window_sums, lengths) @ q
                decision.windows_estimated = len(feats.windows)
                near = cand.similarity - estimate >= policy.screen_margin * policy.delta
                if not near.any():
                    continue
                ids, offsets = self._tokenise(cand.text)
                spans = [(a, b) for (a, b, _, _), hit in zip(feats.windows, near) if hit]
            else:
                ids, offsets = self._tokenise(cand.text)
                spans = windows(len(ids), policy.mask_tokens, policy.stride)
            jobs.append((decision, ids, offsets, spans))
        # One batched encoder call for every window to check, across candidates.
        masked = [ids[:a] + ids[b:] for _, ids, _, spans in jobs for a, b in spans]
        sims = self.tokens.encode_ids(masked) @ q if masked else np.zeros(0)
        sanitise: list[tuple[MaskDecision, list[int]]] = []
        cursor = 0
        for decision, ids, offsets, spans in jobs:
            drops = decision.similarity_before - sims[cursor:cursor + len(spans)]
            cursor += len(spans)
            decision.windows_checked = len(spans)
            # A window is suspicious when it carries at least delta of the similarity *and* more than its
            # share of the text: in a short genuine chunk every window carries a lot, in proportion.
            words = max(len(ids) - 2, 1)
            base = max(decision.similarity_before, 1e-6)
            bad = [(a, b, float(d)) for (a, b), d in zip(spans, drops)
                   if d >= policy.delta and d / base >= policy.min_share_ratio * (b - a) / words]
            if not bad:
                continue
            decision.flagged = True
            decision.spans = _merge([(offsets[a][0], offsets[b - 1][1], d) for a, b, d in bad])
            removed = set().union(*(range(a, b) for a, b, _ in bad))
            sanitise.append((decision, [t for i, t in enumerate(ids) if i not in removed]))
        if sanitise:
            after = self.tokens.encode_ids([ids for _, ids in sanitise]) @ q
            for (decision, _), sim in zip(sanitise, after):
                # Removing spans never promotes a chunk: the cap is what lets a lazy screen rank the
                # unscreened by their similarity before (DefendedRetriever._ragmask).
                decision.similarity_after = min(float(sim), decision.similarity_before)
        return decisions
