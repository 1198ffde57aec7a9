"""Tests for papertide.ingest."""
