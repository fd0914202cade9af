"""Any OpenAI-compatible chat endpoint (llama.cpp server, vLLM, Ollama, OpenAI) as the generator.

The prompt asks for a ``[chunk_id]`` after every sentence. What comes back is parsed,
not trusted: missing, malformed or invented citations are the attribution gate's
business, never a crash here. Transport failures are a 502 for the caller.
"""

from __future__ import annotations

import numpy as np

from bragserve.errors import BragserveError
from bragserve.generation.base import Answer, AnswerSentence, Passage
from bragserve.settings import Settings
from bragserve.text import split_cited

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages you are given. After every sentence, write the id of "
    "the passage that supports it in square brackets, exactly as given, for example [c12]. Do not use outside "
    "knowledge. If the passages do not answer the question, say so in one sentence.")


class GeneratorUnavailable(BragserveError):
    status, code = 502, "generator_unavailable"


def build_messages(query: str, passages: list[Passage]) -> list[dict[str, str]]:
    context = "\n\n".join(f"[{p.chunk_id}] {p.text}" for p in passages)
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Passages:\n\n{context}\n\nQuestion: {query}\n\nAnswer with citations:"}]


class OpenAICompatGenerator:
    def __init__(self, settings: Settings) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise BragserveError("the openai_compat generator needs the openai package: "
                                 "pip install 'bragserve[llm]'") from exc
        if not settings.openai_base_url:
            raise BragserveError("generation.generator = 'openai_compat' needs BRAGSERVE_OPENAI_BASE_URL",
                                 code="config_error")
        self._openai = openai
        self.client = openai.OpenAI(base_url=settings.openai_base_url,
                                    api_key=settings.openai_api_key.get_secret_value(),
                                    timeout=settings.openai_timeout_s, max_retries=1)
        self.model = settings.openai_model
        self.max_tokens = settings.openai_max_tokens
        self.name = f"openai_compat:{self.model}"

    def answer(self, query: str, query_vector: np.ndarray, passages: list[Passage]) -> Answer:
        if not passages:
            return Answer("", (), self.name, {"reason": "no passages"})
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=build_messages(query, passages), temperature=0.0,
                max_tokens=self.max_tokens)
        except self._openai.OpenAIError as exc:
            raise GeneratorUnavailable(f"the generator endpoint failed: {exc.__class__.__name__}: "
                                       f"{str(exc)[:200]}") from None
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        sentences = tuple(AnswerSentence(s.text, s.citations, 0.0) for s in split_cited(text))
        return Answer(text, sentences, self.name, {"model": response.model, "usage": response.usage.model_dump()
                                                   if response.usage else None})
