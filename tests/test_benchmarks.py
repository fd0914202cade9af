"""The benchmarks' own instruments, over REST: what ``bench perf`` reports about the write-back gates.

The gates stop at the first refusal, so a corpus that refuses many answers early makes the gate latency look
cheap (bench perf's 100k corpus did: 10 of 30 answers refused by the citations' flood check). These tests hold
the instrument to what it claims: the decision mix names the check that refused, and the full-path figure
counts only answers that ran every gate; the HNSW comparison starts from the corpus the flat server had before
it wrote anything.
"""

from __future__ import annotations

import httpx
from conftest import LiveServer
from test_defences import FLOOD, FLOOD_QUERY
from writeback_helpers import demo, ingest

from benchmarks.core import decision_key, writeback_latency
from benchmarks.perf import snapshot, top5

QUESTIONS = ["Who first climbed Mount Everest?", "Which planet is the hottest?", "Who discovered penicillin?",
             "Where did Gutenberg build his printing press?", "How much water does the Amazon carry?",
             "What is DNA's structure?", "Why is Mars red?", "What are Saturn's rings made of?"]


def test_the_decision_key_names_the_check_that_refused(defended_client) -> None:
    client = defended_client
    demo(client)
    ingest(client, [{"id": f"flood-{i}", "text": text} for i, text in enumerate(FLOOD)])
    off = {"flood": {"enabled": False}}  # as for a nearby query: the retrieval filter does not see the flood
    body = client.post("/query", json={"query": FLOOD_QUERY, "writeback": True, "k": 3, "defences": off}).json()
    assert decision_key(body["writeback"]) == "rejected:screening/suspicious_support(flood)", body["writeback"]


def test_the_full_path_figure_counts_only_answers_that_ran_every_gate(defended_client) -> None:
    """The mix is over the first ``answers``; more questions are asked (up to 4x ``full_path``) until ``full_path``
    answers ran every gate."""
    client = defended_client
    demo(client)
    out = writeback_latency(client, QUESTIONS, answers=2, full_path=4)
    assert out["n"] == out["gates_only"]["n"] == sum(out["decisions"].values()) == 2
    whole = out["full_path"]
    assert 0 < whole["n"] <= 4 and whole["steps"]["contradiction"]["n"] == whole["gates_only"]["n"] == whole["n"]
    # Asked on past the first two until four ran every gate, or to the end of the questions (the cap is 2 + 16).
    assert whole["asked"] == len(QUESTIONS) if whole["n"] < 4 else 4 <= whole["asked"] <= len(QUESTIONS)
    assert "full_path" not in writeback_latency(client, QUESTIONS[:1])


def test_the_hnsw_comparison_serves_the_corpus_as_it_was_at_the_snapshot(live_server, tmp_path) -> None:
    """``bench perf`` snapshots the flat server's corpus after the ingest and serves it on an HNSW index later,
    after the flat server has written back: the copy must be whole (the same top-5 as the flat index on this
    small corpus) and hold nothing written after it."""
    with httpx.Client(base_url=live_server.url, timeout=120) as http:
        demo(http)
        snapshot(live_server.index_dir, tmp_path / "snapshot")
        flat = top5(live_server.url, QUESTIONS, len(QUESTIONS))
        ingest(http, [{"id": "late", "text": "Written after the snapshot: the okapi is a giraffid of the Congo."}])
    hnsw = LiveServer(index_dir=tmp_path / "snapshot", log_path=tmp_path / "hnsw.log",
                      extra_args=("--index-type", "hnsw"))
    ready = hnsw.start()
    try:
        assert ready["index_type"] == "hnsw" and ready["consistent"]
        assert top5(hnsw.url, QUESTIONS, len(QUESTIONS)) == flat
        assert httpx.get(f"{hnsw.url}/documents/late").status_code == 404
    finally:
        hnsw.stop()
