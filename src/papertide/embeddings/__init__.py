"""Embeddings: load the model once, claim stale papers, encode and write vectors."""
