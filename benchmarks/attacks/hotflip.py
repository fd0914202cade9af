"""HotFlip white-box poisoning against *our* embedder (Zhong et al. 2023; PoisonedRAG white-box).

The attacker owns a fluent poison text and wants it retrieved for a target query. It
adds L tokens (initialised with the query's own tokens, as PoisonedRAG does) and
greedily flips them: the gradient of cos(query, mean-pooled passage) with respect to
each added token's input embedding ranks every vocabulary entry by first-order gain
(E @ g), and the best of a few candidate swaps, checked with real forward passes, is
kept. ``spread`` scatters the L tokens through the passage instead of a prefix, which
defeats a naive prefix mask. Iterations are bounded so a run fits on two cores.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from bragserve.embedding import Embedder


class HotFlip:
    def __init__(self, embedder: Embedder, *, seed: int = 0) -> None:
        self.model = embedder.model[0].auto_model
        self.tok = embedder.tokenizer
        self.embedder = embedder
        self.matrix = self.model.get_input_embeddings().weight.detach()
        banned = set(self.tok.all_special_ids) | {i for t, i in self.tok.vocab.items() if t.startswith("[unused")}
        self.allowed = torch.ones(self.matrix.shape[0], dtype=torch.bool)
        self.allowed[list(banned)] = False
        self.rng = random.Random(seed)

    def _similarity(self, batch: torch.Tensor, q: torch.Tensor, embeds: torch.Tensor | None = None) -> torch.Tensor:
        mask = torch.ones_like(batch)
        with self.embedder.compute():  # white-box against the model as served (bf16 where the server runs bf16)
            out = self.model(input_ids=None if embeds is not None else batch, inputs_embeds=embeds,
                             attention_mask=mask).last_hidden_state.mean(dim=1)
        return torch.nn.functional.normalize(out.float(), dim=-1) @ q

    def attack(self, query: str, text: str, *, tokens: int = 20, iterations: int = 20, candidates: int = 16,
               spread: bool = False) -> tuple[str, float, float]:
        """Returns (poison text, similarity before optimisation, after)."""
        q = torch.tensor(self.embedder.encode([query])[0])
        body = self.tok(text, add_special_tokens=False, truncation=True, max_length=200)["input_ids"]
        seed_ids = self.tok(query, add_special_tokens=False)["input_ids"]
        adv = [seed_ids[i % len(seed_ids)] for i in range(tokens)] if seed_ids else [self.tok.mask_token_id] * tokens
        if spread:  # one optimised token after every few body tokens
            gap = max(1, len(body) // tokens)
            ids, positions, j = [], [], 0
            for i, t in enumerate(body):
                if j < tokens and i % gap == 0:
                    positions.append(len(ids) + 1)
                    ids.append(adv[j])
                    j += 1
                ids.append(t)
            while j < tokens:
                positions.append(len(ids) + 1)
                ids.append(adv[j])
                j += 1
        else:
            ids, positions = adv + body, list(range(1, tokens + 1))
        seq = torch.tensor([[self.tok.cls_token_id, *ids, self.tok.sep_token_id]])
        with torch.no_grad():
            start = best = float(self._similarity(seq, q)[0])
        for _ in range(iterations):
            embeds = self.model.get_input_embeddings()(seq).detach().requires_grad_(True)
            self._similarity(seq, q, embeds)[0].backward()
            pos = self.rng.choice(positions)
            scores = self.matrix @ embeds.grad[0, pos]
            scores[~self.allowed] = -1e9
            top = torch.topk(scores, candidates).indices
            trial = seq.repeat(candidates, 1)
            trial[:, pos] = top
            with torch.no_grad():
                sims = self._similarity(trial, q)
            i = int(torch.argmax(sims))
            if float(sims[i]) > best:
                best, seq = float(sims[i]), trial[i:i + 1].clone()
        poison = self.tok.decode(seq[0, 1:-1].tolist(), clean_up_tokenization_spaces=True)
        return poison, start, best


def measure(embedder: Embedder, query: str, text: str) -> float:
    """Similarity of the poison *as text* (decoding and re-tokenising may lose a little)."""
    v = embedder.encode([query, text])
    return float(np.dot(v[0], v[1]))
