"""The slice of the OpenAI chat API that bragserve speaks: enough for the official clients and chat UIs.

Requests accept (and ignore) the sampling fields clients always send; an answer from a
corpus is not sampled. Responses carry the standard fields plus a ``bragserve`` object
(citations, passages, write-back decision) that OpenAI clients keep as an extra field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

MODEL_ID = "bragserve"


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: StrictStr
    text: StrictStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...: accepted, not used
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, max_tokens, ...: an extractive answer ignores them
    model: StrictStr = Field(MODEL_ID, description=f"Must be {MODEL_ID!r} (see GET /v1/models).",
                             json_schema_extra={"enum": [MODEL_ID]})
    messages: list[ChatMessage] = Field(..., min_length=1, description="The last user message is the query.")
    stream: StrictBool = Field(False, description="Server-sent events, as OpenAI streams them.")
    k: StrictInt | None = Field(None, description="bragserve extension: passages to retrieve.")
    writeback: StrictBool | None = Field(None, description="bragserve extension: run the write-back gates.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[Choice]
    bragserve: dict[str, Any] = Field(default_factory=dict, description="Citations, passages and the write-back "
                                                                        "decision behind the answer.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "bragserve"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
