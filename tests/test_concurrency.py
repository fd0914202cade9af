"""Many clients at once: readers and writers on a live server, then every acknowledged write is checked."""

from __future__ import annotations

from bragserve.loadgen import Ledger, MixedTraffic, verify

from conftest import demo_documents


def test_concurrent_mixed_traffic_keeps_everything_consistent(live_server) -> None:
    import httpx

    assert httpx.post(live_server.url + "/documents", json={"documents": demo_documents()},
                      timeout=120).status_code == 200
    ledger = MixedTraffic(live_server.url, Ledger(), seed=7).run(threads=6, seconds=25, max_ops=40)
    ops = {op: len(v) for op, v in ledger.latencies.items()}
    assert sum(ops.values()) >= 40 and all(ops.get(op, 0) > 0 for op in ("ingest", "delete", "query", "writeback")), ops
    assert ledger.errors == [] and ledger.transport_failures == 0
    assert ledger.stale_reads == [], "a query returned a document after its delete was acknowledged"
    assert ledger.deleted, "the run deleted nothing: the check below would be vacuous"
    problems = verify(live_server.url, ledger)
    assert problems == [], "\n".join(problems)
    live_server.stop()
    from test_crash_safety import _sqlite_and_faiss_agree

    _sqlite_and_faiss_agree(live_server.index_dir)  # and the saved files agree too, after a clean stop
