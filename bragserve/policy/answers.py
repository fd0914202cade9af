"""Policy sections for how an answer is built and judged: retrieval, chunking, generation and the write-back gates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bragserve.policy.section import PolicySection


class RetrievalPolicy(PolicySection):
    default_k: int = Field(5, ge=1, le=100, description="Passages returned when a query names no k.")
    max_k: int = Field(100, ge=1, le=100, description="Largest k a query may ask for.")


class ChunkingPolicy(PolicySection):
    max_words: int = Field(120, ge=10, le=2000, description="Words per chunk (all-MiniLM-L6-v2 reads 256 tokens).")
    overlap_sentences: int = Field(1, ge=0, le=10, description="Sentences repeated at the start of the next chunk.")


class GenerationPolicy(PolicySection):
    generator: Literal["extractive", "openai_compat"] = Field(
        "extractive", description="Which generator answers queries: the offline extractive one, or any "
                                  "OpenAI-compatible endpoint (settings: BRAGSERVE_OPENAI_*).")
    max_sentences: int = Field(3, ge=1, le=20, description="Most sentences in an extractive answer.")
    min_similarity: float = Field(0.2, ge=-1, le=1, description="Sentences less similar to the query are not used.")
    relative_margin: float = Field(0.25, ge=0, le=2, description="Sentences this far below the best one are dropped.")


class WritebackPolicy(PolicySection):
    on_query: bool = Field(True, description="Run the write-back gates after POST /query unless the request says "
                                             "otherwise.")
    max_answer_chars: int = Field(4000, ge=10, description="Longest answer the gates will consider.")


class GroundingPolicy(PolicySection):
    min: float = Field(0.9, ge=0, le=1, description="Weakest sentence's P(entailment) needed to accept (the "
                                                    "Bidirectional RAG code writes back only at >= 0.9).")
    review_min: float = Field(0.65, ge=0, le=1, description="From here up to `min` the answer is queued for "
                                                            "review instead of rejected (the paper's 0.65 gate).")
    verbatim: bool = Field(True, description="A cited chunk that holds the sentence word for word, as one of its "
                                             "own sentences, entails it without the NLI model (the model scored "
                                             "3 of 153 such copies below `min`); false: every pair goes to NLI.")


class AttributionPolicy(PolicySection):
    retrievable_k: int = Field(20, ge=1, le=100, description="For POST /writebacks: a citation must be among this "
                                                             "many passages retrieved for the query.")
    min_citation_support: float = Field(0.5, ge=0, le=1, description="Every citation of a sentence must entail it "
                                                                     "at least this much (no padding citations).")
    prefilter_similarity: float = Field(0.4, ge=-1, le=1, description="When a sentence's citations do not entail "
                                                                      "it, only retrieved chunks at least this "
                                                                      "similar to it are scored as its real source "
                                                                      "(on SQuAD every one was >= 0.53).")


class NoveltyPolicy(PolicySection):
    max_similarity: float = Field(0.90, ge=0, le=1, description="Cosine to the nearest active chunk at or above "
                                                                "which an answer is a duplicate.")


class ContradictionPolicy(PolicySection):
    enabled: bool = Field(True, description="Check each answer sentence against the other retrieved chunks, the "
                                            "chunks the other sentences cite, and the answer's nearest neighbours.")
    min_probability: float = Field(0.8, ge=0, le=1, description="P(contradiction) from any active retrieved chunk "
                                                                "at or above which the answer is queued.")
    min_similarity: float = Field(0.6, ge=-1, le=1, description="Only chunk sentences at least this similar to an "
                                                                "answer sentence are checked (they must be about "
                                                                "the same thing to contradict it).")
    max_pairs: int = Field(12, ge=0, le=200, description="Most (chunk, sentence) pairs checked per answer.")
    prefilter_similarity: float = Field(0.4, ge=-1, le=1, description="Chunks whose stored embedding is less similar "
                                                                      "than this to every answer sentence are not "
                                                                      "split and encoded (on SQuAD, 0.4 skipped 69% "
                                                                      "of chunks and none holding a sentence >= 0.6).")
    neighbours: int = Field(5, ge=0, le=100, description="Also check this many active chunks nearest each answer "
                                                         "sentence in the whole corpus beyond those the query "
                                                         "retrieved: a poisoned query retrieves only the poisons, and "
                                                         "the clean source that contradicts them is out of its top-k.")
    pair_search: Literal["fragments", "sentences"] = Field(
        "fragments", description="How the sentences about the same thing are found: by the fragment vectors stored "
                                 "at ingest (no encoder pass; chunks without fragments fall back) or by encoding "
                                 "every candidate chunk's sentences.")
    fragment_similarity: float = Field(0.6, ge=-1, le=1, description="pair_search = fragments: a fragment at least "
                                                                     "this similar to an answer sentence makes the "
                                                                     "sentence holding most of it (with one either "
                                                                     "side) a premise.")
    skip_stated: bool = Field(True, description="A premise window holding the answer sentence word for word, as "
                                                "one of its sentences, states it and is not checked against it "
                                                "(the grounding gate's verbatim rule); the pair budget goes to "
                                                "chunks that could disagree.")


class LoopPolicy(PolicySection):
    max_depth: int = Field(1, ge=0, le=10, description="A write-back may cite write-backs only this many "
                                                       "generations deep (0: never).")
    max_generated_share: float = Field(0.3, ge=0, le=1, description="Most write-backs in any retrieved top-k, as "
                                                                    "a share of k; the rest is ingested text.")
