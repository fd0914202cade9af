"""Retrieval: dense search (later: RAGPart voting, RAGMask screening)."""
