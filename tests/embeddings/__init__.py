"""Tests for papertide.embeddings."""
