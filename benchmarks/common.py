"""What every benchmark records: the machine, versions, parameters, and its results as JSON + PNG."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    import faiss
    import sentence_transformers
    import torch
    import transformers

    from bragserve.precision import native_bf16

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            # What precision="auto" picks for the embedder and the NLI model here.
            "native_bf16": native_bf16(),
            "faiss": faiss.__version__, "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "code": code_version()}


def code_version() -> str:
    """The commit measured (``+dirty`` with uncommitted changes), so a result can be traced to its code."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if dirty else "")


def percentiles(samples_ms: list[float]) -> dict:
    a = np.asarray(samples_ms)
    return {"n": len(a), "p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "p99": round(float(np.percentile(a, 99)), 2), "mean": round(float(a.mean()), 2)}


def write_results(name: str, payload: dict, rows: list[dict] | None = None) -> Path:
    """``name.json``; with the printed table's rows also ``name.md``, the table a reader (or README) quotes.

    The rows are kept in the JSON too (``table``) so the markdown can always be rebuilt from the results alone."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    if rows is not None:
        payload["table"] = rows
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    if payload.get("table"):
        (RESULTS / f"{name}.md").write_text(markdown_report(name, payload))
    return path


def markdown_report(name: str, payload: dict) -> str:
    """A heading naming what was measured on which machine and code, then the results table."""
    rows = payload["table"]
    m = payload.get("machine", {})
    seconds = payload.get("seconds")
    if isinstance(seconds, dict):
        seconds = seconds.get("total")
    about = (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores; torch {m.get('torch', '?')}, "
             f"faiss {m.get('faiss', '?')}; code {m.get('code', '?')}; measured {m.get('time', '?')}"
             + (f"; {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""))
    params = json.dumps(payload.get("parameters", {}), sort_keys=True)
    return (f"# {name}\n\n{about}\n\nParameters: `{params}`\n\n{markdown_table(rows, list(rows[0]))}\n")


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    head = "| " + " | ".join(cell(c) for c in columns) + " |"
    rule = "| " + " | ".join("---" for _ in columns) + " |"
    body = ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def save_plot(fig, name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=100)
    return path


def pyplot():
    """matplotlib's pyplot on a file-only backend (benchmarks run headless)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    line = " | ".join(c.ljust(w) for c, w in zip(columns, widths))
    sep = "-+-".join("-" * w for w in widths)
    body = "\n".join(" | ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)) for r in rows)
    return f"{line}\n{sep}\n{body}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: subprocess.Popen, url: str, seconds: float, what: str) -> None:
    """Until ``url`` answers 200; a process that exits first is an error naming its exit code, not a timeout."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{what} not ready after {seconds:.0f} s")


@dataclass
class Server:
    """A real `bragserve serve` on loopback, for benchmarks that measure over HTTP."""

    index_dir: Path
    args: tuple[str, ...] = ()
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        self.port = free_port()
        log = open(self.index_dir.parent / f"{self.index_dir.name}.server.log", "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "bragserve", "serve", "--index", str(self.index_dir),
                                      "--port", str(self.port), *self.args], stdout=log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        wait_ready(self.proc, self.url + "/readyz", 300, "bragserve server")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=120)
