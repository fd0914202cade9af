"""schemathesis against the live OpenAPI spec: no server errors, and every response matches the spec
(status codes, content types, bodies). Bounded: a fixed seed and at most 10 examples per operation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from bragserve.store.keys import KeyStore

from conftest import demo_documents

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(live_server, tmp_path) -> None:
    token = KeyStore(live_server.index_dir).create(role="admin", name="fuzzer", rate_per_minute=0)[1]
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.post(live_server.url + "/documents", json={"documents": demo_documents()}, headers=auth,
                      timeout=120).status_code == 200
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    run = subprocess.run([st, "run", f"{live_server.url}/openapi.json", "-H", f"Authorization: Bearer {token}",
                          "--checks", CHECKS, "--max-examples", "10", "--seed", "1", "--request-timeout", "60",
                          "--phases", "examples,coverage,fuzzing", "--no-color"],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    summary = run.stdout[-4000:]
    assert run.returncode == 0, summary + run.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary.split("SUMMARY")[-1], summary
    assert "Traceback" not in live_server.log(), live_server.log()[-3000:]  # nothing blew up unseen
