"""Persistence: the SQLite corpus (source of truth) and the FAISS vector index (a rebuildable cache)."""
