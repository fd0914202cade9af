"""Passage-level NLI pairs derived from SQuAD v1.1, the shape of a RAG write-back check.

For every question we take the sentence that holds its gold answer and build:
- entailment: that sentence (or a clause of it around the answer) against a window
  of the passage that contains it;
- contradiction: the same statement with the answer swapped for another answer of
  the same kind (year, number, name, phrase) from the same article;
- neutral: a sentence the window does not contain (from elsewhere in the passage or
  from another passage of the same article).
Articles at even positions are for training, odd ones for the held-out dev set, so
the growth benchmark can report on articles the model never saw.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from bragserve.text import Sentence, split_sentences
from bragserve.training.nli_datasets import LABELS, NLIPair

_MAX_PREMISE_WORDS = 110


@dataclass(frozen=True)
class _QA:
    article: int
    paragraph: int
    sentences: tuple[Sentence, ...]
    sentence_index: int
    answer: str
    answer_start: int


def answer_kind(answer: str) -> str:
    """A coarse entity type, so that a swapped answer is plausible in its slot."""
    a = answer.strip()
    if re.fullmatch(r"\d{4}", a):
        return "year"
    if re.search(r"\d", a):
        return "number"
    if a[:1].isupper():
        return "name"
    return "phrase"


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def _window(sentences: tuple[Sentence, ...], center: int, rng: random.Random) -> tuple[int, int]:
    """Sentence range [lo, hi) around center, grown at random up to the word budget."""
    lo, hi = center, center + 1
    words = len(sentences[center].text.split())
    target = rng.randint(1, 4)
    while hi - lo < target:
        grew = False
        for side in rng.sample(("left", "right"), 2):
            if side == "left" and lo > 0 and words + len(sentences[lo - 1].text.split()) <= _MAX_PREMISE_WORDS:
                lo -= 1
                words += len(sentences[lo].text.split())
                grew = True
                break
            if side == "right" and hi < len(sentences) and words + len(sentences[hi].text.split()) <= _MAX_PREMISE_WORDS:
                words += len(sentences[hi].text.split())
                hi += 1
                grew = True
                break
        if not grew:
            break
    return lo, hi


def _statement(qa: _QA, rng: random.Random) -> tuple[str, int, int]:
    """The entailed statement and the answer's span inside it."""
    sent = qa.sentences[qa.sentence_index]
    a_start = qa.answer_start - sent.start
    a_end = a_start + len(qa.answer)
    if rng.random() < 0.5:
        return sent.text, a_start, a_end
    # A clause around the answer: a few words either side, cut at word boundaries.
    words_before = sent.text[:a_start].split()
    words_after = sent.text[a_end:].split()
    left = " ".join(words_before[-rng.randint(3, 8):])
    right = " ".join(words_after[: rng.randint(3, 8)])
    clause = (left + " " if left else "") + qa.answer + (" " + right if right else "")
    start = len(left) + (1 if left else 0)
    return clause, start, start + len(qa.answer)


def _collect(data: list[dict], articles: list[int]) -> tuple[list[_QA], dict[int, list[str]]]:
    qas: list[_QA] = []
    answers_by_article: dict[int, list[str]] = {}
    for ai in articles:
        answers_by_article[ai] = []
        for pi, para in enumerate(data[ai]["paragraphs"]):
            context = para["context"]
            sentences = tuple(split_sentences(context))
            for q in para["qas"]:
                ans = q["answers"][0]
                start, text = ans["answer_start"], ans["text"]
                if context[start:start + len(text)] != text:
                    continue
                idx = next((i for i, s in enumerate(sentences) if s.start <= start and start + len(text) <= s.end), None)
                if idx is None:
                    continue
                qas.append(_QA(ai, pi, sentences, idx, text, start))
                answers_by_article[ai].append(text)
    return qas, answers_by_article


def build_pairs(squad_path: Path, split: str, seed: int = 13) -> list[NLIPair]:
    """One pair per question, labels in rotation so the classes stay balanced."""
    data = json.loads(Path(squad_path).read_text(encoding="utf-8"))["data"]
    parity = 0 if split == "train" else 1
    articles = [i for i in range(len(data)) if i % 2 == parity]
    qas, answers_by_article = _collect(data, articles)
    rng = random.Random(seed)
    rng.shuffle(qas)
    pairs: list[NLIPair] = []
    for n, qa in enumerate(qas):
        label = LABELS[n % 3]
        lo, hi = _window(qa.sentences, qa.sentence_index, rng)
        premise = " ".join(s.text for s in qa.sentences[lo:hi])
        source = f"squad_{split}"
        if label == "entailment":
            statement, _, _ = _statement(qa, rng)
            pairs.append(NLIPair(premise, statement, label, source))
        elif label == "contradiction":
            statement, a0, a1 = _statement(qa, rng)
            kind = answer_kind(qa.answer)
            gold, premise_norm = _norm(qa.answer), _norm(premise)
            candidates = [
                a for a in answers_by_article[qa.article]
                if answer_kind(a) == kind and _norm(a) and _norm(a) not in gold and gold not in _norm(a)
                and _norm(a) not in premise_norm
            ]
            if not candidates:
                continue
            swapped = statement[:a0] + rng.choice(candidates) + statement[a1:]
            pairs.append(NLIPair(premise, swapped, label, source))
        else:
            outside = [s.text for i, s in enumerate(qa.sentences) if not lo <= i < hi]
            if not outside or rng.random() < 0.5:
                other = [p for p in data[qa.article]["paragraphs"]]
                para = rng.choice(other)["context"]
                outside = [s.text for s in split_sentences(para) if _norm(s.text) not in _norm(premise)]
            if not outside:
                continue
            pairs.append(NLIPair(premise, rng.choice(outside), label, source))
    return pairs
