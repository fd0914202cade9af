"""Runs of words no English word list knows: the fingerprint of optimised trigger tokens.

HotFlip-style attacks pick any vocabulary entry, and the chosen pieces decode glued to
their neighbours ("oliveape", "americaarina", "photoshophop"). The word-piece test in
``ingest_screening.trigger_tokens`` misses most of them (they split into only two or
three pieces: 1% of the 3,000 shipped Contriever-HotFlip poisons at 0.5), but almost
none is a word: wordfreq's English list (a few hundred thousand words, names included,
from Wikipedia, subtitles, news, books, web text) does not contain them. Honest text
has unknown words too (transliterations, species, pronunciations), so the test looks
for a *run* of them, ignores text in parentheses and brackets (where pronunciations
and native spellings live) and words outside ASCII letters (other scripts are not
what an English-vocabulary attack produces).

Measured on the shipped Contriever-HotFlip poisons (3,000) against their clean gold
passages plus the SQuAD dev paragraphs (2,923 documents): ≥ 4 unknown words among 12
flags 67.6% of the poisons and 0.79% of the clean documents; ≥ 3 among 8 flags 80.6%
and 1.7%. No fluent PoisonedRAG text (1,500) is flagged at either setting.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from wordfreq import zipf_frequency

_ASIDE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_ASCII_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@lru_cache(maxsize=200_000)
def is_unknown(word: str) -> bool:
    """Not in wordfreq's English list at any frequency (lower-case input)."""
    return zipf_frequency(word, "en") == 0.0


def worst_run(text: str, window: int) -> tuple[int, str]:
    """The most unknown words in any ``window`` consecutive words, and those words."""
    words = [w for w in _WORD.findall(_ASIDE.sub(" ", text).lower()) if _ASCII_WORD.fullmatch(w)]
    if not words:
        return 0, ""
    window = min(window, len(words))
    unknown = np.array([is_unknown(w) for w in words], dtype=np.int32)
    counts = np.convolve(unknown, np.ones(window, dtype=np.int32), mode="valid")
    at = int(np.argmax(counts))
    return int(counts[at]), " ".join(words[at:at + window])
