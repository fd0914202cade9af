"""OpenAI-compatible facade: existing clients and chat UIs use bragserve as a model called ``bragserve``.

The last user message is the query; the answer comes back as the assistant message with
numbered citations and a source list, so a plain chat window still shows where every
sentence came from. Streaming sends the same answer as OpenAI-style server-sent events
(one sentence per chunk): the answer is complete before the first byte, because the
gates judge whole answers.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from bragserve.api.auth import Reader
from bragserve.api.deps import ServiceDep
from bragserve.api.openai_schemas import (MODEL_ID, AssistantMessage, ChatCompletion, ChatCompletionRequest, Choice,
                                          ModelCard, ModelList)
from bragserve.errors import InvalidInput, NotFound
from bragserve.service import QueryResult

router = APIRouter(prefix="/v1", tags=["openai"])

_STARTED = int(time.time())
NO_ANSWER = "I could not find an answer to that in the corpus."


def _query_text(body: ChatCompletionRequest) -> str:
    if body.model != MODEL_ID:
        raise NotFound(f"model {body.model!r} does not exist; this server serves {MODEL_ID!r}",
                       code="model_not_found")
    for message in reversed(body.messages):
        if message.role == "user":
            text = message.text().strip()
            if text:
                return text
            break
    raise InvalidInput("messages: the last user message must have text (it is the query)", code="no_user_message")


def _pieces(result: QueryResult) -> list[str]:
    """The answer as sentences with [n] markers, then the numbered sources."""
    answer = result.answer
    if answer is None or not answer.text:
        return [NO_ANSWER]
    numbers: dict[str, int] = {}
    pieces = []
    for sentence in answer.sentences:
        marks = "".join(f"[{numbers.setdefault(c, len(numbers) + 1)}]" for c in sentence.citations)
        pieces.append(f"{sentence.text} {marks}".rstrip() + " ")
    by_id = {p.chunk_id: p for p in result.passages}
    sources = [f"[{n}] {by_id[c].doc_id} ({c})" for c, n in numbers.items() if c in by_id]
    if sources:
        pieces.append("\n\nSources:\n" + "\n".join(sources))
    return pieces


def _extras(result: QueryResult) -> dict:
    outcome = result.writeback
    return {"citations": result.answer.cited if result.answer else [],
            "passages": [{"chunk_id": p.chunk_id, "doc_id": p.doc_id, "score": p.score} for p in result.passages],
            "writeback": None if outcome is None else {"decision": outcome.decision, "reason": outcome.reason,
                                                       "document_id": outcome.document_id},
            "query_id": outcome.query_id if outcome else None}


def _sse(completion_id: str, created: int, pieces: list[str], extras: dict) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **more: object) -> str:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces:
        yield chunk({"content": piece})
    yield chunk({}, "stop", bragserve=extras)
    yield "data: [DONE]\n\n"


@router.get("/models", response_model=ModelList, summary="The one model this server serves")
def list_models(_: Reader) -> ModelList:
    return ModelList(data=[ModelCard(id=MODEL_ID, created=_STARTED)])


@router.post("/chat/completions", response_model=ChatCompletion, summary="Answer the last user message (OpenAI "
                                                                          "chat format, streaming or not)")
def chat_completions(principal: Reader, body: ChatCompletionRequest, service: ServiceDep,
                     request: Request) -> ChatCompletion | StreamingResponse:
    result = service.query(query=_query_text(body), k=body.k, writeback=body.writeback, actor=principal.actor)
    request.app.state.metrics.observe_query(result)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    pieces, extras = _pieces(result), _extras(result)
    if body.stream:
        return StreamingResponse(_sse(completion_id, created, pieces, extras), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    return ChatCompletion(id=completion_id, created=created, bragserve=extras,
                          choices=[Choice(message=AssistantMessage(content="".join(pieces).strip()))])
