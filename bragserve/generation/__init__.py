"""Answer generators: a protocol, the offline extractive default, and a factory."""

from __future__ import annotations

from bragserve.config import GenerationPolicy
from bragserve.embedding import Embedder
from bragserve.generation.base import Answer, AnswerSentence, Generator, Passage
from bragserve.generation.extractive import ExtractiveGenerator


def create_generator(policy: GenerationPolicy, embedder: Embedder) -> Generator:
    """The generator a policy names (later: openai_compat)."""
    if policy.generator == "extractive":
        return ExtractiveGenerator(embedder, policy)
    raise ValueError(f"unknown generator {policy.generator!r}")


__all__ = ["Answer", "AnswerSentence", "Generator", "Passage", "create_generator"]
