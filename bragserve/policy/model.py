"""The policy: every threshold and switch that decides behaviour, loaded from a reviewed TOML file.

The policy comes from ``policies/*.toml`` and says *how the system decides*; where it
runs is the settings' job (``bragserve.settings``). Unknown keys are errors, and the
policy's hash is recorded with every decision it makes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from pathlib import Path

from pydantic import ValidationError, model_validator

from bragserve.errors import ConfigError, InvalidInput, validation_problems
from bragserve.policy.answers import (AttributionPolicy, ChunkingPolicy, ContradictionPolicy, GenerationPolicy,
                                      GroundingPolicy, LoopPolicy, NoveltyPolicy, RetrievalPolicy, WritebackPolicy)
from bragserve.policy.defences import (DEFENCE_SECTIONS, CorroborationPolicy, DisfluentMatchPolicy, EchoPolicy,
                                       FloodPolicy, IngestScreeningPolicy, RagMaskPolicy, RagPartPolicy,
                                       ScreeningPolicy)
from bragserve.policy.section import PolicySection

log = logging.getLogger(__name__)

DEFAULT_POLICY_PATH = Path("policies/default.toml")


class Policy(PolicySection):
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
    flood: FloodPolicy = FloodPolicy()
    disfluent_match: DisfluentMatchPolicy = DisfluentMatchPolicy()
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
            raise InvalidInput(f"invalid defences: {validation_problems(exc)}", code="invalid_defences") from None

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical policy, recorded with every decision it makes."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


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
        raise ConfigError(f"policy file {path} is invalid: {validation_problems(exc)}") from None
