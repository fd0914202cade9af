"""The OpenAI-compatible facade, driven by the official ``openai`` client against a live server."""

from __future__ import annotations

import httpx
import openai
import pytest

from bragserve.store.keys import KeyStore

from conftest import demo_documents


@pytest.fixture
def served(live_server):
    """A live server with the demo corpus and a reader key (so the facade is tested with auth on)."""
    writer_token = KeyStore(live_server.index_dir).create(role="writer", name="loader")[1]
    r = httpx.post(live_server.url + "/documents", json={"documents": demo_documents()},
                   headers={"Authorization": f"Bearer {writer_token}"}, timeout=120)
    assert r.status_code == 200, r.text
    reader_token = KeyStore(live_server.index_dir).create(role="reader", name="chat-ui")[1]
    return live_server, openai.OpenAI(base_url=live_server.url + "/v1", api_key=reader_token, max_retries=0)


def test_models_and_chat_completion(served) -> None:
    _, client = served
    assert [m.id for m in client.models.list().data] == ["bragserve"]
    completion = client.chat.completions.create(
        model="bragserve", temperature=0.2, messages=[
            {"role": "system", "content": "Answer from the corpus."},
            {"role": "user", "content": "Who first climbed Mount Everest?"}])
    content = completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert "Hillary" in content and "[1]" in content and "Sources:" in content and "everest" in content
    extra = completion.model_extra["bragserve"]
    assert extra["citations"] and extra["passages"][0]["doc_id"] == "everest"


def test_streaming_gives_the_same_answer(served) -> None:
    _, client = served
    question = [{"role": "user", "content": [{"type": "text", "text": "Who first climbed Mount Everest?"}]}]
    whole = client.chat.completions.create(model="bragserve", messages=question, extra_body={"writeback": False})
    stream = client.chat.completions.create(model="bragserve", messages=question, stream=True,
                                            extra_body={"writeback": False})
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks).strip()
    assert len(chunks) >= 3 and chunks[-1].choices[0].finish_reason == "stop"
    assert streamed == whole.choices[0].message.content


def test_facade_errors_reach_the_client(served) -> None:
    server, client = served
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="last user message"):
        client.chat.completions.create(model="bragserve", messages=[{"role": "assistant", "content": "hi"}])
    anonymous = openai.OpenAI(base_url=server.url + "/v1", api_key="bsk_wrong_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.models.list()
