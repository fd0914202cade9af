"""Answer generators: a protocol, the offline extractive default, and a factory."""

from __future__ import annotations

from bragserve.embedding import Embedder
from bragserve.generation.base import Answer, AnswerSentence, Generator, Passage
from bragserve.generation.extractive import ExtractiveGenerator
from bragserve.policy import GenerationPolicy
from bragserve.settings import Settings


def create_generator(policy: GenerationPolicy, embedder: Embedder, settings: Settings) -> Generator:
    """The generator a policy names."""
    if policy.generator == "openai_compat":
        from bragserve.generation.openai_compat import OpenAICompatGenerator

        return OpenAICompatGenerator(settings)
    return ExtractiveGenerator(embedder, policy)


__all__ = ["Answer", "AnswerSentence", "Generator", "Passage", "create_generator"]
