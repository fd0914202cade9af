"""Fixtures: the real embedder (loaded once), an in-process app per test, and a live uvicorn server.

Every test gets its own temporary corpus directory; live servers bind 127.0.0.1 on a
free port and are stopped afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from fastapi.testclient import TestClient  # noqa: E402

from bragserve.api.app import create_app  # noqa: E402
from bragserve.embedding import Embedder  # noqa: E402
from bragserve.gates.nli import NLIModel  # noqa: E402
from bragserve.policy import Policy, load_policy  # noqa: E402
from bragserve.service import Service  # noqa: E402
from bragserve.settings import Settings, load_settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo.json"


def demo_documents() -> list[dict]:
    return json.loads(DEMO.read_text())["documents"]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder("bundled")


@pytest.fixture(scope="session")
def nli() -> NLIModel:
    return NLIModel(load_settings().nli_model)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(index_dir=tmp_path / "index")


@pytest.fixture
def make_client(embedder: Embedder, nli: NLIModel) -> Iterator:
    """Factory for an in-process client over its own service; closed at teardown."""
    opened: list[TestClient] = []

    def make(settings: Settings, policy: Policy | None = None) -> TestClient:
        policy = policy or open_policy()
        service = Service.open(settings, policy, embedder=embedder, nli=nli)
        client = TestClient(create_app(settings, policy, service=service), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def open_policy() -> Policy:
    """policies/open.toml: every poisoning defence off."""
    return load_policy(ROOT / "policies" / "open.toml")[0]


@pytest.fixture
def client(make_client, settings: Settings) -> TestClient:
    """A client on the undefended policy: storage, loop and API tests assert plain dense ranking.
    The defences have their own tests (test_defences.py) on the default policy."""
    return make_client(settings, open_policy())


@pytest.fixture
def defended_client(make_client, settings: Settings) -> TestClient:
    return make_client(settings, Policy())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            r = httpx.get(url + "/readyz", timeout=2)
            if r.status_code == 200:
                return r.json()
            last = r.text
        except httpx.TransportError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"server at {url} not ready after {timeout}s: {last}")


@dataclass
class LiveServer:
    index_dir: Path
    log_path: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> dict:
        self.port = free_port()
        log = self.log_path.open("a")
        cmd = [sys.executable, "-m", "bragserve", "serve", "--index", str(self.index_dir),
               "--host", "127.0.0.1", "--port", str(self.port), *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
        return wait_until_ready(self.url, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(index_dir=tmp_path / "index", log_path=tmp_path / "server.log")
    server.start()
    yield server
    server.stop()
