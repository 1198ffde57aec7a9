"""Tests for papertide.ingest.sources."""
