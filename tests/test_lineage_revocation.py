"""Lineage, transitive revocation when a source goes, restore, feedback, and the loop limits."""

from __future__ import annotations

from bragserve.policy import AttributionPolicy, LoopPolicy, NoveltyPolicy, Policy
from conftest import demo_documents
from writeback_helpers import chunk_of, demo, firsts_answer, ingest, propose


def _chain(client) -> tuple[str, str]:
    """wb1 cites everest and moon-landing; wb2 cites wb1 and mars."""
    demo(client)
    query, answer = firsts_answer(client)
    wb1 = propose(client, query, answer)["document_id"]
    wb2 = propose(client, "Who first climbed Everest and what is the tallest volcano?",
                  f"Tenzing Norgay and Edmund Hillary made the first confirmed ascent in 1953. "
                  f"[{chunk_of(client, wb1)}] Olympus Mons on Mars is the tallest volcano known in the Solar System, "
                  f"about 22 kilometres high. [{chunk_of(client, 'mars')}]")["document_id"]
    assert wb1 and wb2
    return wb1, wb2


def _retrievable(client, doc_id: str) -> bool:
    hits = client.post("/query", json={"query": "first confirmed ascent in 1953", "k": 30, "generate": False,
                                       "writeback": False}).json()["passages"]
    return doc_id in {h["doc_id"] for h in hits}


def test_deleting_a_source_revokes_dependants_transitively_and_restore_undoes_it(make_client, settings) -> None:
    client = make_client(settings, Policy(loop=LoopPolicy(max_generated_share=1.0)))
    wb1, wb2 = _chain(client)
    assert _retrievable(client, wb1) and _retrievable(client, wb2)
    deleted = client.delete("/documents/everest").json()
    assert deleted["revoked"] == [wb1, wb2]
    for wb in (wb1, wb2):
        assert client.get(f"/documents/{wb}").json()["status"] == "revoked"
        assert not _retrievable(client, wb)
    lineage = client.get(f"/documents/{wb2}/lineage").json()
    assert lineage["revocation_causes"] == [wb1]
    assert {a["id"] for a in lineage["ancestors"]} == {wb1, "mars", "everest", "moon-landing"}
    assert {d["id"] for d in client.get("/documents/everest/lineage").json()["descendants"]} == {wb1, wb2}
    restored = client.post("/documents/everest/restore").json()
    assert restored["status"] == "active" and restored["restored"] == [wb1, wb2]
    assert _retrievable(client, wb1) and _retrievable(client, wb2)
    assert client.get("/readyz").json()["consistent"]


def test_a_dependant_returns_only_when_every_source_is_back(client) -> None:
    demo(client)
    query, answer = firsts_answer(client)
    wb1 = propose(client, query, answer)["document_id"]
    client.delete("/documents/everest")
    client.post("/documents/moon-landing/quarantine", json={"reason": "suspicious"})
    client.post("/documents/everest/restore")
    assert client.get(f"/documents/{wb1}").json()["status"] == "revoked"
    assert client.post("/documents/moon-landing/restore").json()["restored"] == [wb1]
    assert client.get(f"/documents/{wb1}").json()["status"] == "active"


def test_updating_a_source_revokes_what_was_built_on_the_old_text(client) -> None:
    demo(client)
    query, answer = firsts_answer(client)
    wb1 = propose(client, query, answer)["document_id"]
    ingest(client, [{"id": "everest", "text": "Mount Everest is in the Himalayas."}])
    assert client.get(f"/documents/{wb1}").json()["status"] == "revoked"


def test_feedback_down_revokes_a_writeback_and_up_is_recorded(client) -> None:
    demo(client)
    query, answer = firsts_answer(client)
    wb1 = propose(client, query, answer)["document_id"]
    up = client.post("/feedback", json={"document_id": "everest", "signal": "up"}).json()
    assert up["revoked"] == []
    down = client.post("/feedback", json={"document_id": wb1, "signal": "down", "note": "wrong"}).json()
    assert down["revoked"] == [wb1]
    assert client.get(f"/documents/{wb1}").json()["status"] == "revoked"
    assert client.post("/feedback", json={"signal": "up"}).status_code == 422
    assert client.post("/feedback", json={"document_id": "nope", "signal": "up"}).status_code == 404
    assert client.post("/feedback", json={"query_id": "q-nope", "signal": "down"}).status_code == 404


def test_max_generated_share_holds_on_a_flooded_corpus(make_client, settings) -> None:
    client = make_client(settings, Policy(novelty=NoveltyPolicy(max_similarity=1.0),
                                          attribution=AttributionPolicy(retrievable_k=40)))
    demo(client)
    everest = chunk_of(client, "everest")
    accepted = 0
    for doc in demo_documents()[:8]:
        if doc["id"] == "everest":
            continue
        first = doc["text"].split(". ")[0].rstrip(".") + "."
        r = propose(client, "Who made the first confirmed ascent of Everest?",
                    f"Tenzing Norgay and Edmund Hillary made the first confirmed ascent in 1953. [{everest}] "
                    f"{first} [{chunk_of(client, doc['id'])}]")
        accepted += r["decision"] == "accepted"
    assert accepted >= 6
    for k in (3, 5, 10):
        hits = client.post("/query", json={"query": "first confirmed ascent of Everest in 1953", "k": k,
                                           "generate": False}).json()["passages"]
        generated = sum(h["source"] == "writeback" for h in hits)
        assert len(hits) == k and generated <= int(0.3 * k)
        assert hits[0]["doc_id"] == "everest"


def test_max_depth_holds(make_client, settings) -> None:
    client = make_client(settings, Policy(loop=LoopPolicy(max_depth=1, max_generated_share=1.0)))
    wb1, wb2 = _chain(client)
    third = propose(client, "Who first climbed Everest and what is the tallest volcano?",
                    f"Tenzing Norgay and Edmund Hillary made the first confirmed ascent in 1953. "
                    f"[{chunk_of(client, wb2)}] Saturn is less dense than water. [{chunk_of(client, 'saturn')}]")
    assert third["decision"] == "rejected" and third["reason"] == "loop_depth", third
    client0 = make_client(settings.model_copy(update={"index_dir": settings.index_dir.parent / "d0"}),
                          Policy(loop=LoopPolicy(max_depth=0, max_generated_share=1.0)))
    demo(client0)
    query, answer = firsts_answer(client0)
    wb = propose(client0, query, answer)["document_id"]
    r = propose(client0, "Who first climbed Everest?", f"Tenzing Norgay and Edmund Hillary made the first confirmed "
                f"ascent in 1953. [{chunk_of(client0, wb)}] Saturn is less dense than water. "
                f"[{chunk_of(client0, 'saturn')}]")
    assert r["reason"] == "loop_depth"


def test_reposting_cannot_lift_a_quarantine_or_replace_a_writeback(client) -> None:
    demo(client)
    client.post("/documents/mars/quarantine", json={"reason": "suspicious"})
    mars = client.get("/documents/mars").json()
    r = client.post("/documents", json={"documents": [{"id": "mars", "text": mars["text"], "metadata": mars["metadata"]}]})
    assert r.json()["documents"][0]["status"] == "unchanged"
    assert client.get("/documents/mars").json()["status"] == "quarantined"
    query, answer = firsts_answer(client)
    wb = propose(client, query, answer)["document_id"]
    r = client.post("/documents", json={"documents": [{"id": wb, "text": "Overwritten."}]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert client.get(f"/documents/{wb}").json()["source"] == "writeback"
