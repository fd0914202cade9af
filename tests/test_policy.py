"""Policies load and validate strictly; the shipped default.toml states exactly the built-in defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bragserve.errors import ConfigError
from bragserve.policy import Policy, load_policy

ROOT = Path(__file__).resolve().parent.parent


def test_default_policy_file_matches_builtin_defaults() -> None:
    policy, source = load_policy(ROOT / "policies" / "default.toml")
    assert policy == Policy()
    assert policy.hash == Policy().hash and len(policy.hash) == 64


def test_every_policy_field_is_documented() -> None:
    undocumented = [f"{section}.{name}" for section, field in Policy.model_fields.items()
                    for name, sub in field.annotation.model_fields.items() if not sub.description]
    assert undocumented == []


@pytest.mark.parametrize("text,fragment", [
    ("[retrieval]\ndefault_kk = 3\n", "retrieval.default_kk"),
    ("[retrieval]\ndefault_k = 0\n", "retrieval.default_k"),
    ("[colour]\nred = 1\n", "colour"),
    ("[generation]\ngenerator = \"gpt\"\n", "generation.generator"),
    ("[retrieval]\ndefault_k = 50\nmax_k = 10\n", "default_k must not exceed"),
    ("retrieval = [", "not valid TOML"),
    ("[flood]\ncandidates = 3.0\n", "replaced by flood.pool"),
])
def test_invalid_policies_are_refused_with_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert fragment in info.value.message


def test_missing_policy_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_policy(tmp_path / "nope.toml")


def test_serve_refuses_a_bad_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[retrieval]\nunknown = 1\n")
    r = subprocess.run([sys.executable, "-m", "bragserve", "serve", "--index", str(tmp_path / "ix"), "--policy",
                        str(bad), "--port", "0"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode != 0
    assert "retrieval.unknown" in r.stderr and "Traceback" not in r.stderr
