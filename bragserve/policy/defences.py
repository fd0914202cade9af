"""Policy sections for the poisoning defences: the ones a request may override (``DEFENCE_SECTIONS``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bragserve.policy.section import PolicySection


class RagPartPolicy(PolicySection):
    """RAGPart (ALGORITHMS.md §2): vote over C(N, k) views built from independently embedded fragments."""

    enabled: bool = Field(False, description="Retrieve by RAGPart vote instead of plain top-k (off by default: "
                                             "no measured gain yet, see benchmarks/results/poison_quick.json).")
    store_fragments: bool = Field(True, description="Embed and store N fragments per chunk at ingest (needed by "
                                                    "RAGPart; costs extra encoder work at ingest).")
    fragments: int = Field(5, ge=2, le=12, description="N: contiguous fragments per chunk, near-equal by words "
                                                       "(fixed at ingest).")
    views_k: int = Field(3, ge=1, le=12, description="k: fragments averaged per view; C(N, k) views are searched.")
    depth: int = Field(20, ge=0, le=200, description="Passages each view retrieves (top-p per view), whatever k, so "
                                                     "that the vote ranks the first candidates alike for every k "
                                                     "(the flood filter's pool is among them); a query needing more "
                                                     "candidates gets the rest from a deeper vote, after them. "
                                                     "0 = the query's candidate count (varies with k).")
    mode: Literal["vote", "intersection"] = Field("vote", description="Rank by views that retrieved a chunk "
                                                                      "(ties: best rank), or keep only chunks every "
                                                                      "view retrieved.")
    index: Literal["fragments", "views"] = Field(
        "fragments", description="How the views are searched (set per server, not per request): fragments = score "
                                 "every chunk's N fragment vectors with one product and sum them into exact view "
                                 "cosines (N fp32 vectors per chunk in memory); views = one FAISS index per view "
                                 "(C(N, k) vectors per chunk, stored as `encoding`).")
    encoding: Literal["fp32", "fp16", "sq8"] = Field("fp16", description="index = views: storage of the view "
                                                                         "vectors in memory.")


class RagMaskPolicy(PolicySection):
    """RAGMask (ALGORITHMS.md §3): a span whose masking collapses similarity marks a poison."""

    enabled: bool = Field(False, description="Screen retrieved candidates by masking spans (off by default: no "
                                             "measured gain yet, and it demotes short genuine passages).")
    method: Literal["fast", "exact"] = Field("fast", description="fast: first-order estimates from ingest-time "
                                                                 "token sums, exact re-encoding only for what the "
                                                                 "estimate flags; exact: re-encode every window.")
    alpha: float = Field(2.0, ge=1, le=10, description="Candidates screened = alpha * k (at most, when lazy).")
    min_candidates: int = Field(10, ge=1, le=500, description="...and at least this many, whatever k: a query asking "
                                                              "for 3 re-ranks the same candidates as one asking for 5 "
                                                              "(alpha * 5), so its passages are among theirs.")
    lazy: bool = Field(True, description="Screen candidates best first, only until the top k are settled: the "
                                         "passages returned and their order are the same as when all alpha * k are "
                                         "screened (a flag only lowers a similarity), and a candidate that cannot "
                                         "reach the top k is listed as unscreened. false: screen all alpha * k (the "
                                         "attack benchmark does, to count flags).")
    mask_tokens: int = Field(15, ge=1, le=128, description="m: tokens masked at once (fixed at ingest for fast).")
    stride: int = Field(8, ge=1, le=128, description="Tokens between window starts (fixed at ingest for fast).")
    delta: float = Field(0.1, ge=0, le=1, description="A window is suspicious when masking it lowers the "
                                                       "query-chunk cosine by at least delta.")
    min_share_ratio: float = Field(1.5, ge=0, le=10, description="A window must also carry this many times its "
                                                                 "share of the tokens in relative similarity (a "
                                                                 "short genuine chunk loses a lot to any window).")
    screen_margin: float = Field(0.5, ge=0, le=1, description="fast: candidates whose estimated drop reaches "
                                                              "screen_margin * delta are verified exactly.")


class EchoPolicy(PolicySection):
    """Retrieval-time: a candidate that repeats the query word for word is text built to be retrieved for it.

    PoisonedRAG's black-box poison is ``question + answer``; an honest passage answers a
    question rather than quoting it (keyword queries and quoted passages are another matter:
    ``questions_only``). Such candidates are left out of the top k (reported,
    not deleted). Measured before choosing 0.9: every shipped PoisonedRAG text with its
    question echoes it; of the queries checked (4+ words, read as questions: NQ 182 of 200,
    HotpotQA 199, MS MARCO 54) 0, 0 and 3 (FAQ pages) echo in their own gold passage, and 63
    of 10,504 SQuAD dev questions (0.6%) do."""

    enabled: bool = Field(True, description="Leave out candidates that repeat the query word for word.")
    threshold: float = Field(0.9, gt=0, le=1, description="Share of the query's words repeated as one unbroken run "
                                                          "(case and punctuation ignored) that marks an echo.")
    min_words: int = Field(4, ge=1, le=100, description="Queries shorter than this are not checked (a short query "
                                                        "recurs in honest text).")
    questions_only: bool = Field(True, description="Check only queries that read as questions: honest text quotes "
                                                   "keywords and passages (a user pasting a sentence to find its "
                                                   "document, pages titled with the keywords), rarely a question.")
    candidates: float = Field(3.0, ge=1, le=20, description="Candidates fetched = candidates * k, so that k remain "
                                                            "when the planted echoes are left out (PoisonedRAG plants "
                                                            "k of them).")


class FloodPolicy(PolicySection):
    """Retrieval-time: near-identical candidates from several ingested documents are a planted flood.

    PoisonedRAG plants k variations of one text per target so that they fill the top k.
    Measured on the attack benchmark's corpus before choosing 0.75 and 3 documents: 100% of
    query-as-poison and 98% of paraphrase poisons are in such a group, and 4.0% of the
    2,923 clean documents. At 0.8 (89% of paraphrase poisons, 1.3% of clean documents) the
    paraphrases one laundered answer was stitched from (0.69-0.80 to each other) formed no
    group. Linked groups also take in an encyclopedia's paragraphs on one subject, which is
    what ``core_similarity`` tells apart. ``bragserve.retrieval.flood`` says what it cannot catch."""

    enabled: bool = Field(True, description="Act on groups of near-identical candidates from several ingested "
                                            "documents (write-backs take no part).")
    similarity: float = Field(0.75, ge=0, le=1, description="Cosine between two chunks of different documents that "
                                                           "links them into one group.")
    min_documents: int = Field(3, ge=2, le=100, description="Distinct documents a group needs to be a flood.")
    core_similarity: float = Field(
        0.0, ge=0, le=1, description="A group is a flood only when min_documents of its chunks, from different "
                                     "documents, are pairwise at least this close: planted variants say the same "
                                     "thing, an article's paragraphs only link in a chain. 0: every group counts "
                                     "(the shipped policies: 0.8 gives an encyclopedia its recall back, and lets "
                                     "more paraphrase floods through).")
    action: Literal["remove", "keep_one"] = Field(
        "remove", description="remove: leave every member out of the top k (reported, not deleted); keep_one: keep "
                              "the best member (a corpus of mirrored pages keeps its text) but flag it, so no "
                              "write-back can rest on it alone.")
    pool: int = Field(15, ge=2, le=500, description="Floods are found among this many best candidates whatever k, "
                                                   "so that a passage is treated alike by a query asking for 3 and "
                                                   "one asking for 20 (POST /writebacks checks citations among 20); "
                                                   "a later candidate close to a flood's member joins it. k more are "
                                                   "fetched, and more when a flood takes those too, so that k "
                                                   "remain.")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        """A policy file written for the 3 x k rule names what replaced it, rather than an unknown key."""
        if isinstance(data, dict) and "candidates" in data:
            raise ValueError(f"flood.candidates (3 x k compared) was replaced by flood.pool, a fixed count "
                             f"({cls.model_fields['pool'].default} by default), so that a passage's verdict does not "
                             "depend on k")
        return data


class DisfluentMatchPolicy(PolicySection):
    """Retrieval-time: a candidate unusually close to the query that also reads as word salad was optimised for it.

    HotFlip buys similarity with fluency: our white-box poisons sit at cosine 0.83-0.95 to
    their query, where honest passages rarely go (gold passages' 90th percentile: 0.74-0.86
    by data set), and their worst window reads as replaced tokens. The ingest screen has to
    judge a document without a query, so its disfluency threshold must be high enough for
    every honest document (0.28); here the closeness is a second piece of evidence, and a
    much lower threshold costs little. Measured before choosing 0.80 and 0.15 (90 fresh
    poisons of our HotFlip, targets the benchmark does not use; 1,000 gold passages and SQuAD
    paragraphs with their own questions): 97 / 93 / 100% of prefix / spread / 60-flip
    poisons are caught. No gold passage of NQ, HotpotQA or SQuAD is left out for its own
    question; 9 of MS MARCO's 209 are, all for keyword queries ("define preventive", "weather
    in sparta greece") whose dictionary and SEO snippets open with the keywords and read like
    lists. So other queries get the strict ingest screen's threshold (``keyword_disfluency``,
    0.28: 1 of the 209, and 23 of 24 fresh poisons for MS MARCO's keyword queries). A candidate
    the query quotes almost whole (90% of its words as one run) is kept: a user pasted that
    document to find it.

    Spread HotFlip buys less similarity (2 of our 30 fresh spread poisons at 0.79; the
    benchmark's own two that got through at 0.74 and 0.79, worst windows 0.33 to 0.40). So a
    question also leaves out a candidate from ``wide_similarity`` (0.70) whose worst window
    reaches ``wide_disfluency`` (0.30): on the fresh set prefix 96.7 -> 100% and spread 93.3 ->
    96.7% caught. Only 0.51% of the poison benchmark's clean chunks score 0.28 or more, and
    for 0.15% of 2,067 SQuAD questions (none of the benchmark's NQ / HotpotQA / MS MARCO
    questions) a top-5 gold paragraph is left out. Keyword queries get no wide tier: the two
    gold snippets it would take are dictionary lists for "synonyms of ignorant" and "tax
    planning defined". Write-backs take no part: the answer screen judged them with the same
    head before they were stored."""

    enabled: bool = Field(True, description="Leave out ingested candidates at least min_similarity to the query "
                                            "whose stored disfluency reaches `disfluency`.")
    min_similarity: float = Field(0.80, ge=0, le=1, description="Cosine to the query from which a candidate's "
                                                               "fluency is checked.")
    disfluency: float = Field(0.15, gt=0, le=1, description="For a query that reads as a question: the "
                                                            "candidate's worst window (mean replaced-token "
                                                            "probability, bragserve/disfluency.py, stored at "
                                                            "ingest) at or above which it is left out.")
    keyword_disfluency: float = Field(0.28, ge=0, le=1, description="The same for any other query (keyword "
                                                                    "snippets read like lists, so it is higher); "
                                                                    "0 = such queries are not checked.")
    wide_similarity: float = Field(0.70, ge=0, le=1, description="For a question: a candidate at least this close "
                                                                 "(below min_similarity) is left out when its worst "
                                                                 "window reaches wide_disfluency.")
    wide_disfluency: float = Field(0.30, ge=0, le=1, description="The worst window that leaves out a candidate "
                                                                 "between wide_similarity and min_similarity (0 = "
                                                                 "no wide tier).")


class IngestScreeningPolicy(PolicySection):
    """Detectors for documents built to be retrieved rather than to inform; hits are quarantined."""

    enabled: bool = Field(True, description="Screen documents at ingest; flagged ones are quarantined for review.")
    copied_question: bool = Field(True, description="Flag a document that embeds a question (a query planted to "
                                                    "be retrieved for it).")
    trigger_tokens: float = Field(0.0, ge=0, le=1, description="Flag a run of tokens this share of which are "
                                                               "non-words (optimised trigger tokens); 0 disables.")
    non_words: int = Field(0, ge=0, le=12, description="Flag a document with at least this many words unknown to "
                                                       "an English word list among any 12 consecutive words "
                                                       "(optimised trigger tokens; bragserve/non_words.py); 0 "
                                                       "disables.")
    disfluency: float = Field(0.6, ge=0, le=1, description="Flag a document with a run of word pieces whose mean "
                                                           "replaced-token probability reaches this (optimised "
                                                           "tokens: Contriever-HotFlip's token salad reaches 0.6, "
                                                           "query-initialised HotFlip's English words 0.28; "
                                                           "bragserve/disfluency.py); 0 disables.")
    span_dominance: float = Field(0.0, ge=0, le=2, description="Flag a document whose embedding moves this far "
                                                               "(1 - cosine) when one mask window is removed; "
                                                               "0 disables.")


class ScreeningPolicy(PolicySection):
    """Anti-laundering: a write-back may not rest only on suspicious sources."""

    enabled: bool = Field(True, description="Reject write-backs any sentence of which is supported only by "
                                            "flagged, quarantined or low-trust chunks.")
    min_trust: float = Field(0.0, ge=0, le=1, description="Chunks below this trust do not count as support.")
    query_echo: float = Field(0.9, ge=0, le=1, description="A chunk that repeats this share of the query's words as "
                                                           "one unbroken run does not count as support: text built "
                                                           "to be retrieved for the query (0 = off).")
    query_echo_min_words: int = Field(4, ge=1, le=100, description="Queries shorter than this are not checked for "
                                                                   "echoes (a short query recurs in honest text).")
    non_words: int = Field(3, ge=0, le=8, description="An answer sentence with at least this many words unknown to "
                                                      "an English word list among any 8 consecutive words copies "
                                                      "optimised trigger tokens: it is not a verified answer (0 = "
                                                      "off).")
    disfluency: float = Field(0.30, ge=0, le=1, description="An answer with a run of word pieces whose mean "
                                                           "replaced-token probability reaches this copies optimised "
                                                           "tokens that are English words (bragserve/disfluency.py; "
                                                           "0 = off).")
    released: bool = Field(True, description="A document a person released from an ingest-screen quarantine is "
                                             "served, but is no support for a write-back: what the screen found "
                                             "still stands against it becoming a verified answer.")
    ragmask: bool = Field(True, description="When retrieval did not run RAGMask, screen the chunks an answer cites "
                                            "with it (ragmask's settings) before the gates: a chunk with a span whose "
                                            "masking collapses its similarity to the query is no support. It costs "
                                            "write-backs only, not the passages served.")
    flood: float = Field(0.8, ge=0, le=1, description="A cited ingested chunk that forms, with flood.min_documents - 1 "
                                                      "chunks of other ingested documents among its flood.pool "
                                                      "nearest, a group pairwise at this cosine or more belongs to a "
                                                      "planted flood and is no support, even when too little of the "
                                                      "flood reached the query's candidates for the retrieval filter "
                                                      "to see it (0 = off). A corpus holding its text in several "
                                                      "documents (overlapping exports, revisions under separate ids) "
                                                      "looks like one: 36.5% of bench perf's 100k corpus.")
    source_disfluency: float = Field(0.28, ge=0, le=1, description="A cited ingested chunk whose worst window the "
                                                                   "replaced-token head scores at this or more reads "
                                                                   "as optimised tokens and is no support, wherever "
                                                                   "the answer quotes it (0 = off).")


class CorroborationPolicy(PolicySection):
    min_sources: int = Field(1, ge=1, le=10, description="Distinct documents that must support each answer "
                                                         "sentence for a write-back.")


DEFENCE_SECTIONS = ("ragpart", "ragmask", "echo", "flood", "disfluent_match", "screening", "corroboration")
