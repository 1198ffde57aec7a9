"""Tests for papertide.digests."""
