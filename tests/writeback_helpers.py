"""Helpers shared by the write-back tests: a small corpus and chunk-id lookups over REST."""

from __future__ import annotations

from conftest import demo_documents


def ingest(client, docs: list[dict]) -> None:
    r = client.post("/documents", json={"documents": docs})
    assert r.status_code == 200, r.text


def chunk_of(client, doc_id: str, ordinal: int = 0) -> str:
    return client.get(f"/documents/{doc_id}").json()["chunks"][ordinal]["chunk_id"]


def propose(client, query: str, answer: str, **extra) -> dict:
    r = client.post("/writebacks", json={"query": query, "answer": answer, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def demo(client) -> None:
    ingest(client, demo_documents())


def firsts_answer(client) -> tuple[str, str]:
    """An answer combining two demo documents verbatim: supported, and new as a whole."""
    everest, moon = chunk_of(client, "everest"), chunk_of(client, "moon-landing")
    answer = (f"Tenzing Norgay and Edmund Hillary made the first confirmed ascent in 1953. [{everest}] "
              f"Neil Armstrong was the first person to step onto the lunar surface, followed by Buzz Aldrin, while "
              f"Michael Collins remained in orbit. [{moon}]")
    return "Who made the first Everest ascent and who first walked on the Moon?", answer
