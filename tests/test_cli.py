"""The command line as a user runs it: a subprocess per command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bragserve", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_ingest_folder_then_query_json(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "tides.md").write_text("# Tides\n\nOcean tides are caused mainly by the gravity of the Moon.")
    (docs / "sub" / "bread.txt").write_text("Sourdough bread rises because of wild yeast and lactic acid bacteria.")
    (docs / "ignored.csv").write_text("a,b")
    index = tmp_path / "ix"
    r = run("ingest", str(docs), "--index", str(index))
    assert r.returncode == 0, r.stderr
    assert "2 created" in r.stdout
    r = run("query", "What makes sourdough rise?", "--index", str(index), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["passages"][0]["doc_id"] == "sub:bread.txt"
    assert "[c" in out["answer"]


def test_ingest_jsonl_reports_bad_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "Fine."}\n{"id": "b", "text": \n')
    r = run("ingest", str(bad), "--index", str(tmp_path / "ix"))
    assert r.returncode != 0 and "bad.jsonl:2" in r.stderr and "Traceback" not in r.stderr


def test_ingest_refuses_a_directory_a_server_owns(live_server) -> None:
    demo = ROOT / "examples" / "demo.json"
    r = run("ingest", str(demo), "--index", str(live_server.index_dir))
    assert r.returncode != 0 and "in use by another bragserve process" in r.stderr


def test_query_without_corpus_is_a_clear_error(tmp_path: Path) -> None:
    r = run("query", "anything", "--index", str(tmp_path / "none"))
    assert r.returncode != 0 and "no corpus" in r.stderr


def test_every_command_has_help_with_an_example() -> None:
    import click

    from bragserve.cli import cli

    def walk(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
        out = []
        for name, command in group.commands.items():
            out.append((prefix + name, command))
            if isinstance(command, click.Group):
                out += walk(command, prefix + name + " ")
        return out
    for name, command in walk(cli):
        assert command.help and "Example:" in command.help, name


def test_every_bench_command_finds_its_benchmark_in_the_checkout() -> None:
    from bragserve.cli import BENCHMARKS, _bench_module

    for name in BENCHMARKS:
        assert callable(_bench_module(name).main), name
