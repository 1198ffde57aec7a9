"""Search: keyword (BM25, a tantivy index), semantic (pgvector) and hybrid (the two scores fused)."""
