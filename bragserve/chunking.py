"""Sentence-aware chunking: whole sentences packed up to a word budget, with sentence overlap.

Chunks keep their character span in the document so a citation can point back to
the exact text, and a chunk never cuts a sentence unless that sentence alone is
longer than the budget (then it is cut at word boundaries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bragserve.text import Sentence, split_sentences

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkSpan:
    text: str
    start: int
    end: int


def _pieces(text: str, sentence: Sentence, max_words: int) -> list[Sentence]:
    """A sentence longer than the budget, cut into word-bounded pieces."""
    words = list(_WORD.finditer(text, sentence.start, sentence.end))
    if len(words) <= max_words:
        return [sentence]
    out = []
    for i in range(0, len(words), max_words):
        group = words[i:i + max_words]
        start, end = group[0].start(), group[-1].end()
        out.append(Sentence(text[start:end], start, end))
    return out


def chunk_text(text: str, *, max_words: int, overlap_sentences: int) -> list[ChunkSpan]:
    """Split a document into chunks; a short document is one chunk."""
    if len(_WORD.findall(text)) <= max_words:  # one chunk whatever its sentences: skip the (slow) splitter
        stripped = text.strip()
        if not stripped:
            return []
        start = len(text) - len(text.lstrip())
        return [ChunkSpan(stripped, start, start + len(stripped))]
    units: list[Sentence] = []
    for sentence in split_sentences(text):
        units += _pieces(text, sentence, max_words)
    if not units:
        return []
    counts = [len(u.text.split()) for u in units]
    chunks: list[ChunkSpan] = []
    i = 0
    while i < len(units):
        j, words = i, 0
        while j < len(units) and (j == i or words + counts[j] <= max_words):
            words += counts[j]
            j += 1
        start, end = units[i].start, units[j - 1].end
        chunks.append(ChunkSpan(text[start:end], start, end))
        if j >= len(units):
            break
        # Step back for overlap, but always move forward by at least one unit, and
        # drop the overlap when it leaves no room for new text (a chunk inside its predecessor).
        nxt = max(j - overlap_sentences, i + 1)
        if nxt < j and sum(counts[nxt:j]) + counts[j] > max_words:
            nxt = j
        i = nxt
    return chunks
