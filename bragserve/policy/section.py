"""The base of every policy section: unknown keys are errors and a loaded policy never changes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PolicySection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
