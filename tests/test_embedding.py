"""The embedder's precision: bf16 (the default on CPUs with native bf16) must give the vectors fp32 gives, to
bf16's precision, wherever a vector is made (a query, a stored chunk, a masked window), so a corpus embedded in one
is searched with the other."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bragserve.embedding import Embedder
from bragserve.retrieval.token_encoder import TokenEncoder

TEXTS = ["Who first climbed Mount Everest?",
         "Edmund Hillary and Tenzing Norgay reached the summit of Mount Everest on 29 May 1953.",
         "Honeybees communicate the direction and distance of food with a waggle dance. The dance is performed "
         "on the vertical comb, and its angle to the vertical gives the direction relative to the sun."]


@pytest.fixture(scope="module")
def fp32() -> Embedder:
    return Embedder("bundled", precision="fp32")


@pytest.fixture(scope="module")
def bf16() -> Embedder:
    return Embedder("bundled", precision="bf16")


def test_bf16_vectors_are_fp32_vectors_to_bf16_precision(fp32: Embedder, bf16: Embedder) -> None:
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    a, b = fp32.encode(TEXTS), bf16.encode(TEXTS)
    assert b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.9999
    # The same ranking of passages for the question either way.
    assert list(np.argsort(-(a[1:] @ a[0]))) == list(np.argsort(-(b[1:] @ b[0])))


def test_stored_chunk_vectors_match_query_vectors_in_bf16(bf16: Embedder) -> None:
    """Ingest stores the token encoder's pooled vector; queries use encode. Both must run in the same precision,
    or a document would not find itself."""
    profiles = TokenEncoder(bf16).profile(TEXTS, size=8, stride=4)
    stored = np.stack([p.vector for p in profiles])
    assert (stored * bf16.encode(TEXTS)).sum(axis=1).min() > 0.9999


def test_readyz_reports_the_precisions(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert set(body["precision"]) == {"embedder", "nli"}
    assert body["precision"]["embedder"] in ("fp32", "bf16")
