"""Ingest-time detectors for documents built to be retrieved for a query rather than to inform.

Five signatures of the known attacks, each cheap and query-independent:

- a copied question: PoisonedRAG's black-box poison is literally ``question + "." +
  text``; ordinary prose rarely contains a question, and almost never a lower-case one;
- optimised trigger tokens: HotFlip picks any vocabulary entry, so its runs decode into
  non-words (glued word pieces, stray symbols, mixed scripts);
- a run of words no English word list knows (``non_words``: the glued pieces the
  word-piece test misses; bragserve/non_words.py);
- a run of words that do not follow from each other (``disfluency``: optimised tokens
  that are English words, which the two tests above pass; bragserve/disfluency.py);
- a dominating span: a window whose removal moves the document's own embedding far,
  the query-independent form of the RAGMask signal (off by default: measured first).

A hit quarantines the document (stored, audited, reviewable, never retrievable);
nothing is dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bragserve.non_words import worst_run
from bragserve.policy import IngestScreeningPolicy
from bragserve.retrieval.features import ChunkFeatures
from bragserve.retrieval.token_encoder import masked_estimate

_WH = {"who", "whom", "whose", "what", "when", "where", "which", "why", "how"}
_AUX = {"is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should", "has", "have",
        "had", "may", "might", "must", "shall"}
_WH_FOLLOW = _AUX | {"many", "much", "long", "old", "far", "often", "big", "large", "type", "kind", "year"}
# A boundary after . ? ! even with no space ("...season 4.Chicago Fire"), as the attack concatenates; never after
# an initial ("Roger O. Egeberg"), which cut 2.5% of HotpotQA's planted questions in two.
_SENTENCE_END = re.compile(r"(?<![\s(][A-Z]\.)(?<=[.?!])\s*(?=[A-Z\"'(\[])|(?<=[?!])\s+|\n+")
_WORD = re.compile(r"\S+")
_STRIP = "\"'()[]{}<>,.;:!?`"
# Words a title leaves in lower case ("How Can You Mend a Broken Heart").
_TITLE_SMALL = {"a", "an", "the", "and", "but", "or", "nor", "of", "in", "on", "at", "to", "for", "by", "with", "from",
                "as", "into", "vs"}
_QUOTES = "\"'\u201c\u2018"


@dataclass(frozen=True)
class ScreeningHit:
    detector: str
    detail: str
    score: float


def _is_title(sentence: str) -> bool:
    """A question that names a work ("What's My Line?", "\"What Child Is This?\" is a carol"): every word past the
    first capitalised but a title's small words, in the quoted name when the sentence opens with one. A typed
    query is lower case or sentence case, so its verbs and common nouns are not capitalised."""
    text = sentence.strip()
    if text[:1] in _QUOTES and (end := next((i for i, c in enumerate(text[1:], 1) if c in _QUOTES + "\u201d\u2019"),
                                            None)):
        text = text[1:end]
    words = [w.strip(_STRIP) for w in text.split()[1:]]
    words = [w for w in words if w and w.lower() not in _TITLE_SMALL]
    return len(words) >= 2 and all(w[:1].isupper() for w in words)


def _is_question(sentence: str) -> bool:
    words = sentence.strip().split()
    first = words[0].strip(_STRIP) if words else ""
    if _is_title(sentence):
        return False
    # Two words only in lower case ("define preventive."): a typed query, while "Why not?" opens real prose.
    if len(words) < (2 if first[:1].islower() else 3) or len(words) > 40:
        return False
    lower = first.lower()
    if "?" in sentence.rstrip()[-3:]:
        return lower in _WH or lower in _AUX or len(words) <= 25
    if first[:1].islower():  # "shanghai gmt time difference": a typed query, not prose (nor a cut snippet)
        lowered = {w.lower().strip(_STRIP) for w in words}
        return len(words) <= 8 or (len(words) <= 20 and bool(lowered & _WH))
    if lower not in _WH and lower not in _AUX:
        return False
    if first == "Which" and len(words) <= 25:  # "Which French pilot flew L'Oiseau Blanc." ("What we call" is prose)
        return "," not in sentence
    return lower in _WH and words[1].lower().strip(_STRIP) in _WH_FOLLOW and "," not in sentence


def copied_question(text: str) -> ScreeningHit | None:
    """A question opening the document. Questions later in a text are common in real prose (FAQs,
    quotations); a planted query goes first, where it dominates the embedding. Elsewhere RAGMask
    catches it at query time."""
    first = next((s for s in _SENTENCE_END.split(text.strip()) if s and s.strip()), "")
    if _is_question(first):
        return ScreeningHit("copied_question", first.strip()[:200], 1.0)
    return None


def _odd_word(word: str, word_pieces: Callable[[str], list[str]]) -> bool:
    core = word.strip(_STRIP)
    if not core:
        return len(word) > 1  # a run of symbols
    if any(ord(c) > 127 and unicodedata.category(c).startswith(("L", "S", "M")) for c in core):
        return not all(unicodedata.category(c).startswith("L") for c in core) or len(core) < 3
    if re.search(r"[A-Za-z]", core) and re.search(r"\d", core):
        return not re.fullmatch(r"\d+(st|nd|rd|th|s|m|km|kg|cm|mm|am|pm|g|bn|k)", core.lower())
    if re.search(r"[^\w'\-./%$&,]", core):
        return True
    return any(len(word_pieces(part)) >= 4 for part in core.split("-") if part)


def trigger_tokens(text: str, threshold: float, word_pieces: Callable[[str], list[str]],
                   window: int = 8) -> ScreeningHit | None:
    words = _WORD.findall(text)
    window = min(window, len(words))
    if window < 4:
        return None
    odd = np.array([_odd_word(w, word_pieces) for w in words], dtype=float)
    shares = np.convolve(odd, np.ones(window), mode="valid") / window
    worst = int(np.argmax(shares))
    if shares[worst] >= threshold:
        return ScreeningHit("trigger_tokens", " ".join(words[worst:worst + window])[:200], float(shares[worst]))
    return None


def non_words(text: str, min_unknown: int, window: int = 12) -> ScreeningHit | None:
    count, words = worst_run(text, window)
    if count >= min_unknown:
        return ScreeningHit("non_words", f"{count} of {window} words unknown: {words}"[:200], count / window)
    return None


def disfluent(features: list[ChunkFeatures], threshold: float) -> ScreeningHit | None:
    """The document's worst window by the replaced-token head, if it reaches ``threshold`` (the head scored it in
    the ingest's forward pass: ``ChunkFeatures.disfluency``)."""
    worst = max((f.disfluency for f in features if f.disfluency is not None), key=lambda d: d[0], default=None)
    if worst is not None and worst[0] >= threshold:
        return ScreeningHit("disfluency", worst[1][:200], worst[0])
    return None


def span_dominance(features: list[ChunkFeatures]) -> float:
    """Largest 1 - cos(chunk, chunk with one window removed) over the document's chunks (first-order)."""
    worst = 0.0
    for f in features:
        if not len(f.windows):
            continue
        lengths = np.array([b - a for a, b, _, _ in f.windows])
        est = masked_estimate(f.mask_total, f.mask_tokens, f.window_sums.astype(np.float32), lengths)
        worst = max(worst, float(1.0 - (est @ f.vector).min()))
    return worst


def screen(text: str, features: list[ChunkFeatures], policy: IngestScreeningPolicy,
           word_pieces: Callable[[str], list[str]]) -> list[ScreeningHit]:
    if not policy.enabled:
        return []
    hits = []
    if policy.copied_question and (hit := copied_question(text)):
        hits.append(hit)
    if policy.trigger_tokens and (hit := trigger_tokens(text, policy.trigger_tokens, word_pieces)):
        hits.append(hit)
    if policy.non_words and (hit := non_words(text, policy.non_words)):
        hits.append(hit)
    if policy.disfluency and (hit := disfluent(features, policy.disfluency)):
        hits.append(hit)
    if policy.span_dominance:
        score = span_dominance(features)
        if score >= policy.span_dominance:
            hits.append(ScreeningHit("span_dominance", f"one window moves the embedding by {score:.3f}", score))
    return hits
