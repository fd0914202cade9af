"""bragserve: a self-growing, poisoning-robust RAG server."""

__version__ = "0.1.0"
