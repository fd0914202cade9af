"""Chunk boundaries and the extractive generator's contract (deterministic, every sentence cited)."""

from __future__ import annotations

import numpy as np

from bragserve.chunking import chunk_text
from bragserve.generation import Passage
from bragserve.generation.extractive import ExtractiveGenerator
from bragserve.policy import GenerationPolicy
from bragserve.text import find_citations, split_sentences


def test_chunks_respect_sentences_budget_and_overlap() -> None:
    sentences = [f"This is sentence {i} of a test document about granite quarries." for i in range(20)]
    text = " ".join(sentences)
    chunks = chunk_text(text, max_words=30, overlap_sentences=1)
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert all(text[c.start:c.end] == c.text for c in chunks)
    covered = {s.start for c in chunks for s in split_sentences(text) if c.start <= s.start < c.end}
    assert len(covered) == 20                                  # nothing dropped
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end and b.end > a.end               # one sentence of overlap, always progress


def test_a_sentence_longer_than_the_budget_is_cut_at_words() -> None:
    text = "word " * 250
    chunks = chunk_text(text.strip(), max_words=100, overlap_sentences=0)
    assert [len(c.text.split()) for c in chunks] == [100, 100, 50]


def test_citation_helpers() -> None:
    assert find_citations("Paris is big [c12] and old [c3][c12].") == ["c12", "c3"]


def test_extractive_answer_is_deterministic_and_cited(embedder) -> None:
    passages = [
        Passage("c1", "a", "Honeybees dance to share where flowers are. A colony has one queen.", 0.8, "ingested", 1),
        Passage("c2", "b", "Octopuses have three hearts. They have blue blood.", 0.5, "ingested", 2),
    ]
    generator = ExtractiveGenerator(embedder, GenerationPolicy())
    q = embedder.encode_query("How do bees tell others where flowers are?")
    first = generator.answer("How do bees tell others where flowers are?", q, passages)
    second = generator.answer("How do bees tell others where flowers are?", q, list(passages))
    assert first == second
    assert first.sentences[0].text == "Honeybees dance to share where flowers are."
    assert all(s.citations and set(s.citations) <= {"c1", "c2"} for s in first.sentences)
    assert first.text.startswith("Honeybees dance to share where flowers are. [c1]")


def test_no_passages_no_answer(embedder) -> None:
    generator = ExtractiveGenerator(embedder, GenerationPolicy())
    answer = generator.answer("anything", np.zeros(embedder.dim, dtype=np.float32), [])
    assert answer.text == "" and answer.sentences == ()
