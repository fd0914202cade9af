"""Sentence splitting shared by chunking, generation, gates and NLI data, and the word-level
comparison of a query with a passage shared by retrieval (echo filter) and the gates.

One segmenter for the whole package, so that a chunk's sentences, an answer's
sentences and the NLI training pairs are cut the same way.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

import pysbd

_local = threading.local()
_CITATION = re.compile(r"\[([A-Za-z0-9_.:#-]+)\]")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Sentence:
    """A sentence and its character span in the text it came from."""

    text: str
    start: int
    end: int


def _segmenter() -> pysbd.Segmenter:
    # pysbd segmenters keep state between calls, so each thread gets its own.
    seg = getattr(_local, "segmenter", None)
    if seg is None:
        seg = pysbd.Segmenter(language="en", clean=False, char_span=True)
        _local.segmenter = seg
    return seg


@lru_cache(maxsize=20_000)
def _split_cached(text: str) -> tuple[Sentence, ...]:
    out: list[Sentence] = []
    for span in _segmenter().segment(text):
        stripped = span.sent.strip()
        if not stripped:
            continue
        lead = len(span.sent) - len(span.sent.lstrip())
        start = span.start + lead
        out.append(Sentence(stripped, start, start + len(stripped)))
    return tuple(out)


def split_sentences(text: str) -> list[Sentence]:
    """Split text into sentences with character offsets (cached: passages recur)."""
    if not text.strip():
        return []
    return list(_split_cached(text))


def find_citations(sentence: str) -> list[str]:
    """Chunk ids cited as ``[id]`` in a sentence, in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _CITATION.finditer(sentence):
        seen.setdefault(match.group(1), None)
    return list(seen)


_MARKER_GROUP = re.compile(r"\s*((?:\[[A-Za-z0-9_.:#-]+\]\s*)+)")


@dataclass(frozen=True)
class CitedSentence:
    text: str                   # without citation markers
    citations: tuple[str, ...]  # in order, without repeats


def split_cited(answer: str) -> list[CitedSentence]:
    """Split an answer into sentences and attach each ``[id]`` marker to the sentence it follows.

    Generators write both "Claim. [c1]" and "Claim [c1]." styles; markers are removed
    first and then assigned to the last sentence that starts before them, so neither
    style moves a citation onto the next sentence.
    """
    stripped_parts: list[str] = []
    markers: list[tuple[int, list[str]]] = []
    pos, length = 0, 0
    for match in _MARKER_GROUP.finditer(answer):
        stripped_parts.append(answer[pos:match.start()])
        length += match.start() - pos
        markers.append((length, _CITATION.findall(match.group(1))))
        stripped_parts.append(" ")
        length += 1
        pos = match.end()
    stripped_parts.append(answer[pos:])
    stripped = "".join(stripped_parts)
    sentences = split_sentences(stripped)
    cites: list[dict[str, None]] = [{} for _ in sentences]
    for offset, ids in markers:
        owner = None
        for i, sentence in enumerate(sentences):
            if sentence.start < offset:
                owner = i
        if owner is not None:
            for cid in ids:
                cites[owner].setdefault(cid, None)
    out = []
    for sentence, found in zip(sentences, cites):
        text = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", sentence.text)).strip()
        if text:
            out.append(CitedSentence(text, tuple(found)))
    return out


def words(text: str) -> list[str]:
    """Lower-cased words without punctuation: what an echo of the query is compared on."""
    return _WORD.findall(text.lower())


_WH = frozenset("who whom whose what when where which why how".split())
_AUX = frozenset("is are was were do does did can could will would should has have had may might must shall".split())


def reads_as_question(query: str) -> bool:
    """A question rather than keywords or a quoted passage: ends with "?", opens with a question or auxiliary word,
    has a question word among its first three ("in what year"), or a blank to fill ("___")."""
    w = words(query)
    if not w:
        return False
    return query.rstrip().endswith("?") or w[0] in _AUX or bool(_WH & set(w[:3])) or "___" in query


def query_echo(query: str, text: str) -> float:
    """Share of the query's words that ``text`` repeats as one unbroken run (case and punctuation ignored).

    PoisonedRAG's black-box poison is ``question + answer``: text built to be retrieved for a
    query quotes it, honest text answers it. Used at retrieval (``echo``) and by the
    anti-laundering gate (``screening.query_echo``)."""
    q, t = words(query), words(text)
    if not q or not t:
        return 0.0
    run = SequenceMatcher(None, q, t, autojunk=False).find_longest_match(0, len(q), 0, len(t))
    return run.size / len(q)
