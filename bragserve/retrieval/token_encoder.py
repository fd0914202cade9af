"""Token-level access to the sentence encoder, for what RAGMask needs and pooled vectors hide.

all-MiniLM-L6-v2 embeds a text as the normalised *mean* of its token states. Running
the transformer ourselves (same weights, same tokenizer, same truncation) gives the
chunk vector and, from the same forward pass, the summed token states of every
m-token window. Subtracting a window's sum from the total is a first-order estimate
of the text's embedding with that window masked, which is what lets the fast RAGMask
screen a candidate in microseconds instead of one encoder pass per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bragserve.disfluency import DisfluencyHead, stack_layers, worst_window
from bragserve.embedding import Embedder


@dataclass(frozen=True)
class SpanProfile:
    """One text's pooled vector and its mask windows (token ranges, char ranges, summed states)."""

    vector: np.ndarray  # normalised mean of token states: equal to Embedder.encode
    total: np.ndarray  # sum of token states over every attended token
    tokens: int  # attended tokens, [CLS] and [SEP] included (the mean's denominator)
    window_sums: np.ndarray  # (windows, dim) sum of token states in each window
    token_spans: list[tuple[int, int]]  # [start, end) token positions of each window
    char_spans: list[tuple[int, int]]  # [start, end) character offsets of each window in the text
    input_ids: list[int]
    # The worst window of the replaced-token head (bragserve/disfluency.py): its mean probability and its text;
    # None when the caller did not ask for it.
    disfluency: tuple[float, str] | None = None


def windows(n_tokens: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Mask windows over the word tokens (positions 1..n-2; [CLS]/[SEP] are never masked)."""
    first, last = 1, n_tokens - 1
    if last <= first:
        return []
    out, start = [], first
    while True:
        end = min(start + size, last)
        out.append((start, end))
        if end >= last:
            return out
        start += stride


class TokenEncoder:
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.transformer = embedder.model[0].auto_model
        self.tokenizer = embedder.tokenizer
        self.max_length = int(embedder.model.max_seq_length)

    def _forward(self, input_ids: list[list[int]], head: DisfluencyHead | None = None,
                 layers: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Token states (batch, len, dim) and the attention mask, for pre-tokenised inputs; with ``head``, the
        head's replaced-token probabilities (batch, len); with ``layers``, those layers' states stacked instead
        (what the head is trained on)."""
        import torch

        width = max(len(ids) for ids in input_ids)
        width += -width % self.embedder.pad_to  # the embedder's shape buckets (Embedder.pad_to)
        ids = torch.zeros((len(input_ids), width), dtype=torch.long)
        mask = torch.zeros((len(input_ids), width), dtype=torch.long)
        for i, row in enumerate(input_ids):
            ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        extra = None
        with torch.inference_mode(), self.embedder.compute():
            out = self.transformer(input_ids=ids, attention_mask=mask,
                                   output_hidden_states=head is not None or bool(layers))
            if head is not None:
                extra = head.probabilities(out.hidden_states)
            elif layers:
                extra = stack_layers(out.hidden_states, layers).to(torch.float16).numpy()
        return out.last_hidden_state.float().numpy(), mask.numpy(), extra

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        size = self.embedder.batch_size
        return [order[i:i + size] for i in range(0, len(order), size)]

    def profile(self, texts: list[str], *, size: int, stride: int,
                head: DisfluencyHead | None = None) -> list[SpanProfile]:
        """Vectors and window sums for many texts, one forward pass each (batched by length); with ``head``, each
        text's most disfluent window from the same pass."""
        out: list[SpanProfile | None] = [None] * len(texts)
        with self.embedder.lock:  # the tokenizer too: its settings are shared state (Embedder.tokenizer)
            enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, return_offsets_mapping=True)
            for batch in self._batches([len(ids) for ids in enc["input_ids"]]):
                states, mask, replaced = self._forward([enc["input_ids"][i] for i in batch], head)
                for row, i in enumerate(batch):
                    n = int(mask[row].sum())
                    tok = states[row, :n]
                    total = tok.sum(axis=0)
                    spans = windows(n, size, stride)
                    offsets = enc["offset_mapping"][i]
                    sums = np.stack([tok[a:b].sum(axis=0) for a, b in spans]) if spans else \
                        np.zeros((0, tok.shape[1]), dtype=np.float32)
                    chars = [(int(offsets[a][0]), int(offsets[b - 1][1])) for a, b in spans]
                    vec = total / n
                    worst = None
                    if replaced is not None and n > 2:  # [CLS] and [SEP] are not the writer's tokens
                        score, a, b = worst_window(replaced[row, 1:n - 1], head.window)  # type: ignore[union-attr]
                        worst = (round(score, 4), texts[i][offsets[a + 1][0]:offsets[b][1]])
                    out[i] = SpanProfile(vec / max(float(np.linalg.norm(vec)), 1e-12), total, n, sums, spans, chars,
                                         list(enc["input_ids"][i]), worst)
        return out  # type: ignore[return-value]

    def layer_states(self, input_ids: list[list[int]], layers: tuple[int, ...]) -> list[np.ndarray]:
        """Stacked token states of ``layers`` for each input (len, dim·L, float16): the replaced-token head's
        training features, from the same forward pass (and precision) that serving runs."""
        out: list[np.ndarray | None] = [None] * len(input_ids)
        with self.embedder.lock:
            for batch in self._batches([len(ids) for ids in input_ids]):
                _, _, stacked = self._forward([input_ids[i] for i in batch], layers=layers)
                for row, i in enumerate(batch):
                    out[i] = stacked[row, :len(input_ids[i])]  # type: ignore[index]
        return out  # type: ignore[return-value]

    def encode_groups(self, groups: list[list[str]]) -> np.ndarray:
        """Each text of each group embedded on its own (normalised mean of its token states, as ``Embedder.encode``),
        shape (groups, texts per group, dim): RAGPart's fragments of one chunk.

        A group is packed into one row: its texts one after another, each attending only to itself (a block-diagonal
        mask) with positions restarting at 0, which is the same computation as separate rows. Five 28-token fragments
        as five rows cost 1.6x their chunk's pass (small matrices, per-row overhead), and on 25-word chunks 1.7x;
        packed they cost what the chunk costs (benchmarks/perf.py, README "Speed")."""
        import torch

        n = len(groups[0]) if groups else 0
        out = np.zeros((len(groups), n, self.embedder.dim), dtype=np.float32)
        if not groups:
            return out
        if getattr(self.transformer.config, "_attn_implementation", None) != "sdpa":
            # Eager attention adds the mask to the scores: a boolean block mask would be wrong there. Unpacked.
            return self.embedder.encode([t for g in groups for t in g]).reshape(len(groups), n, -1)
        with self.embedder.lock:  # the tokenizer too (Embedder.tokenizer)
            pieces = self.tokenizer([t for g in groups for t in g], truncation=True,
                                    max_length=self.max_length)["input_ids"]
            rows = [pieces[i * n:(i + 1) * n] for i in range(len(groups))]
            for batch in self._batches([sum(map(len, r)) for r in rows]):
                width = max(sum(map(len, rows[i])) for i in batch)
                width += -width % self.embedder.pad_to
                ids = torch.zeros((len(batch), width), dtype=torch.long)
                positions = torch.zeros((len(batch), width), dtype=torch.long)
                segment = torch.full((len(batch), width), -1, dtype=torch.long)
                for r, i in enumerate(batch):
                    at = 0
                    for k, piece in enumerate(rows[i]):
                        ids[r, at:at + len(piece)] = torch.tensor(piece)
                        positions[r, at:at + len(piece)] = torch.arange(len(piece))
                        segment[r, at:at + len(piece)] = k
                        at += len(piece)
                # Padding attends to itself only, so no softmax row is empty; it is left out of every mean.
                mask = (segment[:, :, None] == segment[:, None, :]) & (segment[:, :, None] >= 0)
                mask |= torch.eye(width, dtype=torch.bool)[None]
                with torch.inference_mode(), self.embedder.compute():
                    states = self.transformer(input_ids=ids, attention_mask=mask[:, None],
                                              position_ids=positions).last_hidden_state.float()
                member = torch.nn.functional.one_hot(segment.clamp(min=0), n).float() * (segment >= 0)[..., None]
                means = torch.einsum("bwk,bwd->bkd", member, states) / member.sum(dim=1)[..., None]
                out[batch] = torch.nn.functional.normalize(means, dim=-1).numpy()
        return out

    def encode_ids(self, input_ids: list[list[int]]) -> np.ndarray:
        """Normalised mean-pooled vectors of already-tokenised inputs (the exact masked embeddings)."""
        out = np.zeros((len(input_ids), self.embedder.dim), dtype=np.float32)
        with self.embedder.lock:
            for batch in self._batches([len(ids) for ids in input_ids]):
                states, mask, _ = self._forward([input_ids[i] for i in batch])
                summed = (states * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
                summed /= np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
                out[batch] = summed
        return out


def masked_estimate(profile_total: np.ndarray, tokens: int, window_sums: np.ndarray,
                    window_lengths: np.ndarray) -> np.ndarray:
    """First-order masked embeddings: the mean of the remaining token states, normalised."""
    rest = (profile_total[None, :] - window_sums) / np.maximum(tokens - window_lengths, 1)[:, None]
    return rest / np.maximum(np.linalg.norm(rest, axis=1, keepdims=True), 1e-12)
