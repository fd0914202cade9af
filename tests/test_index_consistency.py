"""The FAISS index is a cache of SQLite: missing, stale or corrupt files are repaired at start-up."""

from __future__ import annotations

import logging
import sqlite3

import faiss
import numpy as np
import pytest

from bragserve.errors import ConfigError, IndexLocked
from bragserve.ingest import NewDocument
from bragserve.policy import Policy
from bragserve.service import Service
from bragserve.settings import load_settings
from bragserve.store.vectors import INDEX_FILE, HNSWIndex

from conftest import demo_documents


def _open(settings, embedder) -> Service:
    return Service.open(settings, Policy(), embedder=embedder, nli=_NLI.get("model"))


_NLI: dict = {}


@pytest.fixture(autouse=True)
def _share_nli(nli) -> None:
    _NLI["model"] = nli


def _seed(settings, embedder, n: int = 10) -> None:
    service = _open(settings, embedder)
    service.ingest(documents=[NewDocument(text=d["text"], id=d["id"]) for d in demo_documents()[:n]])
    service.close()


def test_missing_index_file_is_rebuilt(settings, embedder, caplog) -> None:
    _seed(settings, embedder)
    (settings.index_dir / INDEX_FILE).unlink()
    with caplog.at_level(logging.INFO):
        service = _open(settings, embedder)
    assert service.status()["consistent"] and service.index.count() == 10
    assert "repaired from SQLite: 10 added, 0 removed" in caplog.text
    service.close()


def test_corrupt_index_file_is_rebuilt(settings, embedder, caplog) -> None:
    _seed(settings, embedder)
    (settings.index_dir / INDEX_FILE).write_bytes(b"not a faiss index")
    with caplog.at_level(logging.INFO):
        service = _open(settings, embedder)
    assert service.status()["consistent"] and service.index.count() == 10
    assert "unreadable" in caplog.text
    service.close()


def test_stale_index_is_repaired_both_ways(settings, embedder, caplog) -> None:
    _seed(settings, embedder)
    path = str(settings.index_dir / INDEX_FILE)
    index = faiss.read_index(path)
    ids = faiss.vector_to_array(index.id_map)
    index.remove_ids(ids[:3])                                        # vectors SQLite says are active
    index.add_with_ids(np.ones((2, index.d), dtype=np.float32) / np.sqrt(index.d),
                       np.array([9001, 9002], dtype=np.int64))        # vectors SQLite never had
    faiss.write_index(index, path)
    with caplog.at_level(logging.WARNING):
        service = _open(settings, embedder)
    assert "repaired from SQLite: 3 added, 2 removed" in caplog.text
    assert service.status()["consistent"]
    hits = service.query(query="smallest planet closest to the Sun", generate=False).passages
    assert hits[0].doc_id == "mercury"
    service.close()


def test_other_embedder_is_refused(settings, embedder) -> None:
    _seed(settings, embedder, 2)
    with sqlite3.connect(settings.index_dir / "corpus.db") as db:
        db.execute("UPDATE meta SET value = '{\"dim\": 768, \"model\": \"other\"}' WHERE key = 'embedder'")
    with pytest.raises(ConfigError, match="embedded with"):
        _open(settings, embedder)


def test_hnsw_soft_delete_and_rebuild(tmp_path, embedder) -> None:
    settings = load_settings(index_dir=tmp_path / "h", index_type="hnsw", hnsw_rebuild_ratio=0.25)
    service = _open(settings, embedder)
    service.ingest(documents=[NewDocument(text=d["text"], id=d["id"]) for d in demo_documents()])
    assert service.delete_document("mars").removed_vids == [3]
    index = service.index.index
    assert isinstance(index, HNSWIndex) and len(index.tombstones) == 1
    hits = service.query(query="Red Planet Olympus Mons", k=5, generate=False).passages
    assert "mars" not in {h.doc_id for h in hits}
    for doc in ("venus", "jupiter", "saturn", "mercury", "nile", "amazon", "everest"):
        service.delete_document(doc)
    assert len(index.tombstones) == 0 and index.index.ntotal == 22   # passed 25%: rebuilt without them
    assert service.status()["consistent"]
    service.close()
    reopened = _open(settings, embedder)
    assert reopened.status()["consistent"] and reopened.index.count() == 22
    reopened.close()


def test_second_writer_on_same_directory_is_refused(settings, embedder) -> None:
    first = _open(settings, embedder)
    with pytest.raises(IndexLocked, match="in use"):
        _open(settings, embedder)
    first.close()
    _open(settings, embedder).close()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_searching_leaves_the_encoder_its_threads(tmp_path, embedder, kind: str) -> None:
    """FAISS searches on one OpenMP thread, but the runtime is shared with torch: a search (or opening the
    index) must not leave the calling thread's encoder on one thread, as an import-time setting once did."""
    import threading

    import torch

    fresh: list[int] = []  # a new thread starts from the runtime's default, whatever this one was set to
    reader = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    reader.start()
    reader.join()
    settings = load_settings(index_dir=tmp_path / kind, index_type=kind)
    _seed(settings, embedder)
    service = _open(settings, embedder)
    passages, _ = service.retrieve(embedder.encode_query("Who first climbed Everest?"), 3,
                                   Policy().with_overrides({"ragpart": {"enabled": True}, "echo": {"enabled": False}}))
    assert passages and torch.get_num_threads() == fresh[0]
    service.close()


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_batched_search_finds_what_single_searches_find(tmp_path, embedder, kind: str) -> None:
    """The gates search around every answer sentence at once (one matrix product on a flat index): the
    batch must return, for each query, the same chunks with the same scores as searching it alone, deleted
    chunks left out."""
    settings = load_settings(index_dir=tmp_path / kind, index_type=kind)
    _seed(settings, embedder, n=20)
    service = _open(settings, embedder)
    assert service.delete_document("mars").removed_vids == [3]
    queries = embedder.encode(["Who first climbed Everest?", "The largest volcano on Mars", "Which river is longest?"])
    batched = service.index.search_many(queries, 8)
    for query, (scores, ids) in zip(queries, batched):
        alone_scores, alone_ids = service.index.search(query, 8)
        assert list(ids) == list(alone_ids) and np.allclose(scores, alone_scores, atol=1e-5)
        assert len(ids) == 8 and 3 not in set(ids.tolist())  # mars's chunk, deleted
    assert service.index.search_many(queries[:0], 8) == []
    service.close()
