"""The ``bragserve`` command: serve, ingest, query, nli, keys, audit, bench; the trainers live in
bragserve/training/commands.py.

Command bodies are a few lines that call the library; domain errors become one-line
``click.ClickException`` messages, never tracebacks.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bragserve import __version__
from bragserve.errors import BragserveError
from bragserve.training.commands import train_disfluency, train_nli

log = logging.getLogger("bragserve")


def _offline() -> None:
    # Nothing may reach a model hub at run time: resolve everything locally.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _domain_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BragserveError as exc:
            raise click.ClickException(exc.message) from None
    return wrapper


index_option = click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                            help="Corpus directory (default: indexes/default, or BRAGSERVE_INDEX_DIR).")
policy_option = click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
                             default=None, help="Policy TOML (default: policies/default.toml).")


@click.group()
@click.version_option(__version__, prog_name="bragserve")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """bragserve: a self-growing, poisoning-robust RAG server."""
    _offline()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "sentence_transformers", "transformers", "huggingface_hub", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.command()
@index_option
@policy_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.option("--index-type", type=click.Choice(["flat", "hnsw"]), default=None, help="Vector index kind.")
@click.option("--require-auth", is_flag=True, help="Every route but /healthz and /readyz needs an API key, even "
                                                    "before one exists.")
@click.option("--insecure-open", is_flag=True, help="Allow serving a non-loopback address with no API keys "
                                                     "(anyone who can reach it can read and write).")
@_domain_errors
def serve(index_dir: Path | None, policy_path: Path | None, host: str, port: int, index_type: str | None,
          require_auth: bool, insecure_open: bool) -> None:
    """Serve the REST API on one corpus (one process: it owns the index directory).

    Example: bragserve serve --index indexes/default --port 8000
    """
    import uvicorn

    from bragserve.api.app import create_app
    from bragserve.policy import load_policy
    from bragserve.settings import load_settings
    from bragserve.store.keys import KeyStore
    from bragserve.store.lock import IndexLock

    settings = load_settings(index_dir=index_dir, index_type=index_type, require_auth=require_auth or None)
    policy, source = load_policy(policy_path)
    loopback = _is_loopback(host)
    has_keys = KeyStore(settings.index_dir).any_active()
    if not loopback and not has_keys and not settings.require_auth and not insecure_open:
        raise click.ClickException(
            f"refusing to serve {host} with no API keys: anyone who can reach it could read and change the corpus. "
            f"Create a key first (bragserve keys create --role admin --name ops --index {settings.index_dir}), "
            "bind 127.0.0.1, or pass --insecure-open.")
    lock = IndexLock.acquire(settings.index_dir)  # fail now, not after uvicorn has started
    log.info("serving %s on http://%s:%d (policy %s, %s)", settings.index_dir, host, port, source, policy.hash[:12])
    if settings.require_auth or has_keys:
        log.info("API keys required (Authorization: Bearer) on every route but /healthz and /readyz")
    else:
        log.warning("no API keys exist: serving OPEN (no authentication) on %s%s; the first key created with "
                    "`bragserve keys create` turns authentication on", host,
                    "" if loopback else " (--insecure-open)")
    app = create_app(settings, policy, policy_source=source, lock=lock, open_when_keyless=loopback or insecure_open)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                limit_concurrency=settings.max_concurrent_requests, timeout_keep_alive=5)


def _is_loopback(host: str) -> bool:
    """True when every address the host name resolves to is a loopback address."""
    import ipaddress
    import socket

    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


@cli.group()
def keys() -> None:
    """API keys: create (printed once), list, revoke. Works while a server runs; changes apply at once.

    Example: bragserve keys create --role reader --name chat-ui --index indexes/default
    """


_ROLE_HELP = ("reader: query; writer: ingest, delete, write-backs, feedback; reviewer: reviews, restore; "
              "auditor: audit log, metrics; admin: everything, keys")


def _key_store(index_dir: Path | None):
    from bragserve.settings import load_settings
    from bragserve.store.keys import KeyStore

    return KeyStore(load_settings(index_dir=index_dir).index_dir)


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["reader", "writer", "reviewer", "auditor", "admin"]),
              help=_ROLE_HELP)
@click.option("--name", required=True, help="Who or what uses the key.")
@click.option("--rate", "rate_per_minute", type=click.IntRange(0), default=None,
              help="Requests per minute (default: BRAGSERVE_RATE_LIMIT_PER_MINUTE; 0: unlimited).")
@index_option
@_domain_errors
def keys_create(role: str, name: str, rate_per_minute: int | None, index_dir: Path | None) -> None:
    """Create a key and print it (the only time it is shown).

    Example: bragserve keys create --role reader --name chat-ui --index indexes/default
    """
    key, token = _key_store(index_dir).create(role=role, name=name, rate_per_minute=rate_per_minute)
    click.echo(token)
    click.echo(f"created key {key.id} ({key.role}, {key.name!r}); store it now: it cannot be shown again",
               err=True)


@keys.command("list")
@index_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
@_domain_errors
def keys_list(index_dir: Path | None, as_json: bool) -> None:
    """List keys (id, role, name, created, revoked); never their secrets.

    Example: bragserve keys list --index indexes/default --json
    """
    for key in _key_store(index_dir).list():
        if as_json:
            click.echo(json.dumps({**key.__dict__, "active": key.active}))
        else:
            state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
            rate = "default" if key.rate_per_minute is None else key.rate_per_minute
            click.echo(f"{key.id}  {key.role:<8}  {key.name}  created {key.created_at}  rate {rate}  {state}")


@keys.command("revoke")
@click.argument("key_id")
@index_option
@_domain_errors
def keys_revoke(key_id: str, index_dir: Path | None) -> None:
    """Revoke a key; a running server refuses it from its next request.

    Example: bragserve keys revoke 3f9c2a1b7d44 --index indexes/default
    """
    key = _key_store(index_dir).revoke(key_id)
    click.echo(f"revoked {key.id} ({key.role}, {key.name!r}) at {key.revoked_at}")


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@index_option
@policy_option
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1, 10_000),
              help="Documents encoded together; bigger batches sort by length better and pad less.")
@_domain_errors
def ingest(path: Path, index_dir: Path | None, policy_path: Path | None, batch_size: int) -> None:
    """Add documents from JSONL (id, text, metadata?, trust?), a POST /documents JSON body, or a folder of .txt/.md.

    Example: bragserve ingest examples/demo.jsonl --index indexes/default
    """
    from tqdm import tqdm

    from bragserve.policy import load_policy
    from bragserve.settings import load_settings
    from bragserve.ingest import NewDocument
    from bragserve.service import Service
    from bragserve.sources import read_documents

    rows = read_documents(path)
    settings = load_settings(index_dir=index_dir)
    policy, source = load_policy(policy_path)
    service = Service.open(settings, policy, source)
    counts: dict[str, int] = {}
    try:
        with tqdm(total=len(rows), unit="doc", desc="ingest", file=sys.stderr) as bar:
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                docs = [NewDocument(text=r["text"], id=r.get("id"), metadata=r.get("metadata") or {},
                                    trust=float(r.get("trust", 1.0))) for r in batch]
                for result in service.ingest(documents=docs):
                    counts[result.status] = counts.get(result.status, 0) + 1
                bar.update(len(batch))
    finally:
        service.close()
    click.echo(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + f" ({settings.index_dir})")


@cli.command()
@click.argument("text")
@index_option
@policy_option
@click.option("-k", "k", type=int, default=None, help="Passages to retrieve.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@_domain_errors
def query(text: str, index_dir: Path | None, policy_path: Path | None, k: int | None, as_json: bool) -> None:
    """Answer a question from a corpus on disk (read-only; safe while a server runs).

    Example: bragserve query "Who won Super Bowl 50?" --json
    """
    from bragserve.policy import load_policy
    from bragserve.settings import load_settings
    from bragserve.service import Service

    settings = load_settings(index_dir=index_dir)
    policy, source = load_policy(policy_path)
    if not (Path(settings.index_dir) / "corpus.db").exists():
        raise click.ClickException(f"no corpus at {settings.index_dir}; ingest something first")
    service = Service.open(settings, policy, source, readonly=True)
    try:
        result = service.query(query=text, k=k)
    finally:
        service.close()
    if as_json:
        click.echo(json.dumps({
            "query": result.query, "answer": result.answer.text if result.answer else None,
            "passages": [p.__dict__ for p in result.passages], "timings_ms": result.timings_ms}))
        return
    click.echo(result.answer.text if result.answer and result.answer.text else "(no answer found)")
    for p in result.passages:
        click.echo(f"  [{p.chunk_id}] {p.score:.3f} {p.doc_id}: {p.text[:100]}")


@cli.command()
@click.argument("premise")
@click.argument("hypothesis")
@click.option("--model", default="bundled", show_default=True, help="NLI checkpoint path or id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line.")
@_domain_errors
def nli(premise: str, hypothesis: str, model: str, as_json: bool) -> None:
    """Score whether PREMISE entails HYPOTHESIS.

    Example: bragserve nli "A man plays a guitar." "A person makes music."
    """
    from bragserve.gates.nli import NLIError, NLIModel

    try:
        score = NLIModel(model).score([(premise, hypothesis)])[0]
    except NLIError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps({**score.as_dict(), "label": score.label}))
    else:
        for name, value in score.as_dict().items():
            click.echo(f"{name:<14}{value:.4f}")


cli.add_command(train_nli)
cli.add_command(train_disfluency)


@cli.group()
def bench() -> None:
    """Benchmarks (run from a source checkout: the code lives in benchmarks/).

    Example: bragserve bench poison --data ../shared/data --quick
    """


# Each benchmark parses its own arguments (its --help lists them); the CLI only finds it in the checkout.
BENCHMARKS = {
    "poison": ("Attacks x defences against a live service; see benchmarks/poison.py.",
               "bragserve bench poison --data ../shared/data --quick"),
    "growth": ("Does the write-back loop help later queries, and what does it let in? See benchmarks/growth.py.",
               "bragserve bench growth --squad ../shared/data/squad/dev-v1.1.json --quick"),
    "growth-ceiling": ("The most an ideal extractive write-back loop could add on SQuAD re-asks (no server); see "
                       "benchmarks/growth_ceiling.py.",
                       "bragserve bench growth-ceiling --squad ../shared/data/squad/dev-v1.1.json"),
    "flood": ("Flood filter rules: attack ASR vs what they cost honest queries, in process; see benchmarks/flood.py.",
              "bragserve bench flood --data ../shared/data"),
    "perf": ("Ingest, latency per defence, gates, txtai peer, floor, memory and scaling; see benchmarks/perf.py.",
             "bragserve bench perf --quick"),
    "ragpart": ("RAGPart search by fragment scores vs FAISS view indexes (fp32/fp16/sq8): latency, memory, recall; "
                "see benchmarks/ragpart.py.",
                "bragserve bench ragpart --sizes 2000,10000"),
    "load": ("Sustained mixed load on loopback: throughput, p99, consistency; see benchmarks/load.py.",
             "bragserve bench load --seconds 30 --clients 1,4,8"),
    "gates-llm": ("What the write-back gates accept and stop from an abstractive LLM vs the extractive generator; "
                  "see benchmarks/gates_llm.py.",
                  "bragserve bench gates-llm --squad ../shared/data/squad/dev-v1.1.json --questions 200"),
}


def _bench_command(name: str, summary: str, example: str) -> click.Command:
    @click.pass_context
    def run(ctx: click.Context) -> None:
        _bench_module(name).main(ctx.args)

    return click.Command(name, callback=run, help=f"{summary}\n\nExample: {example}",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


for _name, (_summary, _example) in BENCHMARKS.items():
    bench.add_command(_bench_command(_name, _summary, _example))


def _bench_module(name: str):
    import importlib
    import sys

    root = Path(__file__).resolve().parent.parent
    module = name.replace("-", "_")
    if not (root / "benchmarks" / f"{module}.py").exists():
        raise click.ClickException("the benchmarks ship with the source checkout; run from a clone of bragserve")
    sys.path.insert(0, str(root))
    return importlib.import_module(f"benchmarks.{module}")


def _audit_db(index_dir: Path | None):
    import sqlite3

    import sqlite_utils

    from bragserve.settings import load_settings

    path = Path(load_settings(index_dir=index_dir).index_dir) / "corpus.db"
    if not path.exists():
        raise click.ClickException(f"no corpus at {path.parent}")
    return sqlite_utils.Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True))


@cli.group("audit")
def audit_group() -> None:
    """Read and verify the append-only, hash-chained audit log.

    Example: bragserve audit verify --index indexes/default
    """


@audit_group.command("verify")
@index_option
def audit_verify(index_dir: Path | None) -> None:
    """Check every record's hash and the chain; exit 1 naming the first broken record.

    Example: bragserve audit verify --index indexes/default
    """
    from bragserve import audit

    result = audit.verify(_audit_db(index_dir))
    if result.ok:
        click.echo(f"ok: {result.count} records, chain intact")
        return
    click.echo(f"BROKEN at {result.first_broken}: {result.problem} ({result.count} records verified before it)",
               err=True)
    sys.exit(1)


@audit_group.command("export")
@index_option
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
def audit_export(index_dir: Path | None, fmt: str) -> None:
    """Write every record, in order, one JSON object per line.

    Example: bragserve audit export --format jsonl > audit.jsonl
    """
    from bragserve import audit

    for record in audit.export(_audit_db(index_dir)):
        click.echo(json.dumps(record, ensure_ascii=False, sort_keys=True))


@audit_group.command("show")
@click.argument("record_id")
@index_option
def audit_show(record_id: str, index_dir: Path | None) -> None:
    """Print one record (id like a42) as JSON.

    Example: bragserve audit show a42
    """
    from bragserve import audit

    seq = audit.parse_audit_id(record_id)
    record = audit.get(_audit_db(index_dir), seq) if seq is not None else None
    if record is None:
        raise click.ClickException(f"no audit record {record_id!r}")
    click.echo(json.dumps(record.as_dict(), ensure_ascii=False, indent=2, sort_keys=True))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
