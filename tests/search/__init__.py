"""Tests for papertide.search."""
