"""Digests: compose (pure), render (pure), mail, and the ledger that sends each one once."""
