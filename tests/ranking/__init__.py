"""Tests for papertide.ranking."""
