"""Search: keyword (full text), semantic (pgvector) and hybrid (reciprocal rank fusion)."""
