"""What the defences need from a chunk, computed once at ingest and stored with it.

RAGPart needs N fragment embeddings per chunk (each fragment embedded on its own:
concatenating fragment text and embedding it once is the paper's non-defending
baseline). The fast RAGMask needs the summed token states of every mask window.
Both are query-independent, so the ingest pays for them once and every query after
that reads them from SQLite instead of re-running the encoder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from bragserve.disfluency import DisfluencyHead
from bragserve.embedding import Embedder
from bragserve.retrieval.token_encoder import SpanProfile, TokenEncoder


@dataclass(frozen=True)
class ChunkFeatures:
    vector: np.ndarray  # the chunk embedding (normalised, float32)
    fragments: np.ndarray | None  # (N, dim) normalised fragment embeddings, or None when not stored
    mask_total: np.ndarray  # (dim,) sum of token states
    mask_tokens: int  # attended tokens
    window_sums: np.ndarray  # (windows, dim)
    windows: list[tuple[int, int, int, int]]  # token start, token end, char start, char end
    window_size: int
    window_stride: int
    disfluency: tuple[float, str] | None = None  # the replaced-token head's worst window (score, text), if asked


def _bounds(n_words: int, n: int) -> list[tuple[int, int]]:
    """Word ranges of the N fragments; a chunk shorter than N words repeats its words."""
    if n_words < n:
        return [(i % n_words, i % n_words + 1) if n_words else (0, 0) for i in range(n)]
    bounds = np.linspace(0, n_words, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def fragment_texts(text: str, n: int) -> list[str]:
    """N contiguous fragments, near-equal by words."""
    words = text.split()
    if not words:
        return [text] * n
    return [" ".join(words[a:b]) for a, b in _bounds(len(words), n)]


def fragment_spans(text: str, n: int) -> list[tuple[int, int]]:
    """Character span in ``text`` of each fragment ``fragment_texts`` cuts, so a stored fragment vector can be
    traced back to the sentences it covers."""
    words = [m.span() for m in re.finditer(r"\S+", text)]
    if not words:
        return [(0, len(text))] * n
    return [(words[a][0], words[b - 1][1]) for a, b in _bounds(len(words), n)]


class FeatureEncoder:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.tokens = TokenEncoder(embedder)

    def encode(self, texts: list[str], *, fragments: int | None, window_size: int, window_stride: int,
               known: dict[str, SpanProfile] | None = None, head: DisfluencyHead | None = None
               ) -> list[ChunkFeatures]:
        """One token-level pass for the vectors and windows, one packed pass for all fragments.

        ``known`` holds token profiles already computed for some of the texts (with the same window size and
        stride): a write-back's answer is profiled by the novelty gate, and is not run through the encoder
        again when it is stored. ``head``: also score each new text's most disfluent window (ingest screening)."""
        if not texts:
            return []
        known = known or {}
        todo = list(dict.fromkeys(t for t in texts if t not in known))
        fresh = dict(zip(todo, self.tokens.profile(todo, size=window_size, stride=window_stride, head=head))) \
            if todo else {}
        profiles = [known[t] if t in known else fresh[t] for t in texts]
        frag_vecs = None
        if fragments:
            frag_vecs = self.tokens.encode_groups([fragment_texts(t, fragments) for t in texts])
        return [ChunkFeatures(p.vector.astype(np.float32), None if frag_vecs is None else frag_vecs[i],
                              p.total, p.tokens, p.window_sums,
                              [(a, b, c, d) for (a, b), (c, d) in zip(p.token_spans, p.char_spans)],
                              window_size, window_stride, p.disfluency)
                for i, p in enumerate(profiles)]
