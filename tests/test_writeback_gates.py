"""The write-back gates over REST: accept, reject per gate with its reason, queue, approve."""

from __future__ import annotations

import numpy as np
import pytest

from bragserve.policy import AttributionPolicy, ContradictionPolicy, GroundingPolicy, Policy
from conftest import open_policy
from writeback_helpers import chunk_of, demo, firsts_answer, ingest, propose


def test_supported_answer_is_accepted_and_becomes_retrievable(client) -> None:
    demo(client)
    query, answer = firsts_answer(client)
    result = propose(client, query, answer, generator="test-llm")
    assert result["decision"] == "accepted", result
    assert {g["name"] for g in result["gates"]} >= {"grounding", "attribution", "loop", "novelty", "contradiction"}
    assert all(g["passed"] for g in result["gates"])
    timings = result["timings_ms"]
    steps = {"structure", "grounding", "screening", "novelty", "neighbours", "contradiction"}  # every one ran
    assert set(timings) == {"gates", "encode", "commit"} | {f"gates.{s}" for s in steps}, timings
    assert timings["gates"] > 0 and sum(timings[f"gates.{s}"] for s in steps) <= timings["gates"] + 0.01
    # only the two cited chunks are checked (each against the other's sentence); the 18 other retrieved demo
    # chunks and the answer's neighbours (honeybees, penicillin...) are skipped before any sentence is encoded
    contradiction = next(g for g in result["gates"] if g["name"] == "contradiction")
    assert contradiction["details"]["chunks_screened"] == 2
    doc = client.get(f"/documents/{result['document_id']}").json()
    assert doc["source"] == "writeback" and doc["status"] == "active"
    assert doc["metadata"]["query"] == query and doc["metadata"]["generator"] == "test-llm"
    lineage = client.get(f"/documents/{result['document_id']}/lineage").json()
    assert {a["id"] for a in lineage["ancestors"]} == {"everest", "moon-landing"}
    hits = client.post("/query", json={"query": "first confirmed ascent in 1953 and first step on the lunar surface",
                                       "k": 5, "generate": False}).json()["passages"]
    assert result["document_id"] in {h["doc_id"] for h in hits}
    # a later answer can cite the write-back itself (one generation deep is allowed by default)
    wb_chunk = chunk_of(client, result["document_id"])
    later = propose(client, "Who first climbed Everest?",
                    f"Tenzing Norgay and Edmund Hillary made the first confirmed ascent in 1953. [{wb_chunk}] "
                    f"Olympus Mons on Mars is the tallest volcano known in the Solar System. [{chunk_of(client, 'mars')}]")
    assert later["decision"] == "accepted", later
    assert later["depth"] == 2


@pytest.mark.parametrize("policy", ["open", "default"])
def test_an_accepted_answer_is_stored_with_what_an_ingest_of_its_text_would_store(make_client, settings,
                                                                                  policy: str) -> None:
    """The novelty gate's encoder pass is reused to store an accepted answer (vector and RAGMask windows): the
    stored features must be those an ingest of the same text computes from scratch (the default policy also
    stores RAGPart fragments)."""
    client = make_client(settings, open_policy() if policy == "open" else Policy())
    demo(client)
    query, answer = firsts_answer(client)
    result = propose(client, query, answer)
    assert result["decision"] == "accepted", result
    text = client.get(f"/documents/{result['document_id']}").json()["text"]
    ingest(client, [{"id": "same-text", "text": text}])
    service = client.app.state.service
    vids = [int(chunk_of(client, doc)[1:]) for doc in (result["document_id"], "same-text")]
    stored, fresh = (service.corpus.mask_features([v], service.embedder.dim)[v] for v in vids)
    assert (stored.windows, stored.tokens, stored.window_size) == (fresh.windows, fresh.tokens, fresh.window_size)
    assert np.allclose(stored.window_sums, fresh.window_sums, atol=1e-3)
    vectors = service.corpus.embeddings(np.array(vids), service.embedder.dim)
    assert float(vectors[0] @ vectors[1]) > 0.9999
    fragments = service.corpus.fragments(vids, service.embedder.dim)
    assert len(fragments) == (2 if policy == "default" else 0)
    if fragments:
        assert np.allclose(fragments[vids[0]], fragments[vids[1]], atol=1e-3)


def test_unsupported_sentence_is_rejected_for_grounding(client) -> None:
    demo(client)
    everest = chunk_of(client, "everest")
    result = propose(client, "Who first climbed Everest?",
                     f"Edmund Hillary later opened a famous bakery in Paris that sold croissants. [{everest}]")
    assert result["decision"] == "rejected" and result["reason"] == "grounding", result
    assert "not entailed" in result["message"]


COPIED = [
    {"id": "teaching", "text": "A teacher must enjoy teaching. If they do not enjoy what they are doing, the students "
                               "will be able to tell."},
    {"id": "bridge", "text": "The Harbour Bridge opened to traffic in 1932. Its steel arch spans 503 metres."},
    {"id": "brava", "text": "It is not true that Brava is made of gold. Brava is a volcanic island in Cape Verde."},
]


@pytest.mark.parametrize("verbatim", [True, False])
def test_a_sentence_its_citation_states_word_for_word_is_grounded_without_the_model(make_client, settings,
                                                                                   verbatim: bool) -> None:
    client = make_client(settings, Policy(grounding=GroundingPolicy(verbatim=verbatim)))
    ingest(client, COPIED)
    answer = (f"A teacher must enjoy teaching. [{chunk_of(client, 'teaching')}] "
              f"The Harbour Bridge opened to traffic in 1932. [{chunk_of(client, 'bridge')}]")
    result = propose(client, "What must a teacher enjoy, and when did the Harbour Bridge open?", answer)
    grounding = next(g for g in result["gates"] if g["name"] == "grounding")
    if verbatim:
        assert result["decision"] == "accepted", result
        assert grounding["score"] == 1.0 and grounding["details"]["verbatim"] == [0, 1]
    else:  # the NLI model alone doubts the first sentence against the very text it was cut from
        assert result["decision"] != "accepted" and grounding["score"] < 0.9, result
        assert grounding["details"]["verbatim"] == []


def test_words_inside_a_longer_sentence_are_not_taken_as_stated(make_client, settings) -> None:
    client = make_client(settings, Policy())
    ingest(client, COPIED)
    result = propose(client, "What is Brava made of?", f"Brava is made of gold. [{chunk_of(client, 'brava')}]")
    assert result["decision"] == "rejected" and result["reason"] == "grounding", result
    assert next(g for g in result["gates"] if g["name"] == "grounding")["details"]["verbatim"] == []


@pytest.mark.parametrize("citation,problem", [("c999999", "does not exist"), ("zz", "does not exist")])
def test_fabricated_citation_is_rejected_for_attribution(client, citation, problem) -> None:
    demo(client)
    result = propose(client, "Who first climbed Everest?",
                     f"Tenzing Norgay and Edmund Hillary made the first confirmed ascent in 1953. [{citation}]")
    assert result["decision"] == "rejected" and result["reason"] == "attribution"
    assert problem in result["message"]


def test_uncited_sentence_is_rejected_for_attribution(client) -> None:
    demo(client)
    everest = chunk_of(client, "everest")
    result = propose(client, "Who first climbed Everest?",
                     f"Tenzing Norgay and Edmund Hillary made the first confirmed ascent in 1953. [{everest}] "
                     "Mount Everest is 8,849 metres high.")
    assert result["decision"] == "rejected" and result["reason"] == "attribution"
    assert "sentence 2 carries no citation" in result["message"]


def test_citation_not_retrieved_for_the_query_is_rejected(make_client, settings) -> None:
    client = make_client(settings, Policy(attribution=AttributionPolicy(retrievable_k=3)))
    demo(client)
    coffee = chunk_of(client, "coffee")
    result = propose(client, "Who first climbed Mount Everest?",
                     f"Brazil is the largest producer of coffee in the world. [{coffee}]")
    assert result["decision"] == "rejected" and result["reason"] == "attribution"
    assert "not retrieved for this query" in result["message"]


def test_misattributed_sentence_names_the_real_source(client) -> None:
    demo(client)
    moon = chunk_of(client, "moon-landing")
    result = propose(client, "Who first climbed Mount Everest?",
                     f"Tenzing Norgay and Edmund Hillary made the first confirmed ascent of Mount Everest in 1953. "
                     f"[{moon}]")
    assert result["decision"] == "rejected" and result["reason"] == "attribution", result
    assert f"supported by {chunk_of(client, 'everest')}" in result["message"]


def test_near_copy_of_a_chunk_is_rejected_for_novelty(client) -> None:
    demo(client)
    everest = chunk_of(client, "everest")
    text = client.get("/documents/everest").json()["text"]
    verbatim = propose(client, "Tell me about Mount Everest", text.replace(". ", f". [{everest}] ") + f" [{everest}]")
    assert verbatim["decision"] == "rejected" and verbatim["reason"] == "novelty", verbatim
    assert f"restates {everest} verbatim" in verbatim["message"]
    near = propose(client, "Tell me about Mount Everest",
                   f"Mount Everest, on the border between Nepal and China, is the highest mountain above sea level, "
                   f"at 8,849 metres. [{everest}] Tenzing Norgay and Edmund Hillary made the first confirmed ascent "
                   f"in 1953. [{everest}]")
    assert near["decision"] == "rejected" and near["reason"] == "novelty", near
    assert f"near-duplicate of {everest}" in near["message"]


BRIDGE = [
    {"id": "bridge-guide", "text": "The Harbour Bridge opened to traffic in 1932. The bridge was designed by the "
                                   "engineer John Bradfield. Its steel arch spans 503 metres across the harbour. "
                                   "Painting the whole bridge takes about ten years."},
    {"id": "bridge-pamphlet", "text": "The Harbour Bridge opened to traffic in 1950."},
]


def test_contradicted_answer_is_queued_and_approval_writes_it(client) -> None:
    ingest(client, BRIDGE)
    guide = chunk_of(client, "bridge-guide")
    result = propose(client, "When did the Harbour Bridge open?",
                     f"The Harbour Bridge was opened to traffic in 1932. [{guide}]")
    assert result["decision"] == "review" and result["reason"] == "contradiction", result
    assert chunk_of(client, "bridge-pamphlet") in result["message"]
    assert next(g for g in result["gates"] if g["name"] == "contradiction")["details"]["chunks_screened"] >= 1
    pending = client.get("/reviews").json()
    assert pending["count"] == 1 and pending["data"][0]["id"] == result["review_id"]
    approved = client.post(f"/reviews/{result['review_id']}/approve", json={"note": "checked the archive"}).json()
    assert approved["decision"] == "accepted" and approved["document_id"]
    assert client.get(f"/documents/{approved['document_id']}").json()["source"] == "writeback"
    assert client.get("/reviews").json()["count"] == 0
    again = client.post(f"/reviews/{result['review_id']}/approve")
    assert again.status_code == 409


# Two planted pages agree on a false date; the guide that contradicts them is not among what the query retrieves.
PLANTED = [
    {"id": "guide", "text": "The steel arch of the Harbour Bridge spans 503 metres and was designed by the engineer "
                            "John Bradfield. Painting the whole structure takes about ten years, and six million "
                            "rivets hold it together. The Harbour Bridge opened to traffic in 1932. Its pylons are "
                            "faced with granite quarried near Moruya."},
    {"id": "planted-1", "text": "Years of strikes had delayed the work, and the Harbour Bridge finally opened to "
                                "traffic in 1950."},
    {"id": "planted-2", "text": "Records show the Harbour Bridge was opened to traffic in 1950. The ceremony drew "
                                "large crowds."},
]


@pytest.mark.parametrize("neighbours, pair_search, decision", [(1, "fragments", "review"),
                                                                (1, "sentences", "review"),
                                                                (0, "fragments", "accepted")])
def test_contradiction_looks_beyond_what_the_query_retrieved(make_client, settings, neighbours, pair_search,
                                                             decision) -> None:
    """Under a poisoning attack the query retrieves only the poisons; the clean source is the answer's neighbour.
    Found by the stored fragment vectors (default) or by encoding every candidate's sentences."""
    policy = Policy(attribution=AttributionPolicy(retrievable_k=2), contradiction=ContradictionPolicy(
        neighbours=neighbours, pair_search=pair_search))
    client = make_client(settings, policy)
    ingest(client, PLANTED)
    query = "When did the Harbour Bridge open to traffic?"
    retrieved = client.post("/query", json={"query": query, "k": 2, "generate": False}).json()["passages"]
    assert {p["doc_id"] for p in retrieved} == {"planted-1", "planted-2"}
    result = propose(client, query, f"The Harbour Bridge opened to traffic in 1950. [{chunk_of(client, 'planted-1')}]")
    assert result["decision"] == decision, result
    if decision == "review":
        assert result["reason"] == "contradiction" and chunk_of(client, "guide") in result["message"]
        gate = next(g for g in result["gates"] if g["name"] == "contradiction")
        by_fragments = gate["details"]["searched_by_fragments"]
        assert by_fragments == (gate["details"]["chunks_screened"] if pair_search == "fragments" else 0), gate


# Pages that copy the planted sentence word for word (mirrors, write-backs restating it), and the guide that
# contradicts it.
MIRRORED = PLANTED[:2] + [
    {"id": f"mirror-{i}", "text": f"The Harbour Bridge opened to traffic in 1950. {extra}"}
    for i, extra in enumerate(["Crowds lined the foreshore to watch the ribbon cut by the premier.",
                               "A horseman slashed the ribbon before the official ceremony began.",
                               "Trams and trains crossed it on the first day, along with thousands on foot."])]


@pytest.mark.parametrize("skip_stated, decision", [(True, "review"), (False, "accepted")])
def test_copies_of_the_answer_do_not_crowd_out_the_source_that_contradicts_it(make_client, settings, skip_stated,
                                                                              decision) -> None:
    """A window that states the answer sentence word for word cannot contradict it: skipped, it leaves the pair
    budget to the guide. Checked, the three copies (closest first) use it up and the contradiction is missed."""
    policy = Policy(contradiction=ContradictionPolicy(max_pairs=3, skip_stated=skip_stated))
    client = make_client(settings, policy)
    ingest(client, MIRRORED)
    result = propose(client, "When did the Harbour Bridge open to traffic?",
                     f"The Harbour Bridge opened to traffic in 1950. [{chunk_of(client, 'planted-1')}]")
    assert result["decision"] == decision, result
    gate = next(g for g in result["gates"] if g["name"] == "contradiction")
    assert gate["details"]["stated"] == (3 if skip_stated else 0), gate
    if decision == "review":
        assert result["reason"] == "contradiction" and chunk_of(client, "guide") in result["message"]


def test_an_answer_stitched_from_disagreeing_sources_is_queued(client) -> None:
    """Each sentence is entailed by its own citation, but one source contradicts the other sentence."""
    ingest(client, BRIDGE[:1] + PLANTED[1:2])
    body = client.post("/query", json={"query": "When did the Harbour Bridge open to traffic?", "k": 2,
                                       "writeback": True}).json()
    assert {c["doc_id"] for c in body["citations"]} == {"bridge-guide", "planted-1"}, body["answer"]
    assert body["writeback"]["decision"] == "review" and body["writeback"]["reason"] == "contradiction", body


def test_rejecting_a_review_writes_nothing(client) -> None:
    ingest(client, BRIDGE)
    guide = chunk_of(client, "bridge-guide")
    result = propose(client, "When did the Harbour Bridge open?",
                     f"The Harbour Bridge was opened to traffic in 1932. [{guide}]")
    rejected = client.post(f"/reviews/{result['review_id']}/reject", json={"note": "sources disagree"}).json()
    assert rejected["decision"] == "rejected"
    assert client.get("/documents", params={"source": "writeback"}).json()["count"] == 0
    assert client.get("/reviews", params={"status": "rejected"}).json()["count"] == 1


def test_query_response_carries_the_writeback_decision(client) -> None:
    demo(client)
    body = client.post("/query", json={"query": "Who first climbed Mount Everest?", "writeback": True}).json()
    wb = body["writeback"]
    assert wb["decision"] in ("accepted", "rejected", "review")
    assert wb["gates"] and body["query_id"].startswith("q-")
    assert client.post("/query", json={"query": "Who first climbed Mount Everest?", "writeback": False}).json()[
        "writeback"] is None


def test_writeback_bad_input(client) -> None:
    demo(client)
    assert client.post("/writebacks", json={"query": "q", "answer": "  "}).json()["error"]["code"] == "empty_answer"
    assert client.post("/writebacks", json={"query": "q"}).status_code == 422
    assert client.post("/writebacks", json={"query": "q", "answer": "x" * 5000}).json()["error"]["code"] == \
        "answer_too_long"
    assert client.post("/reviews/r-nope/approve").status_code == 404
    assert client.post("/query", json={"query": "q", "generate": False, "writeback": True}).status_code == 422
