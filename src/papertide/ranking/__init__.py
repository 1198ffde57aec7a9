"""Ranking: the published trending formula (pure) and its computation over the database."""
