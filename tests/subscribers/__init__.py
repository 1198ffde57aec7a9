"""Tests for papertide.subscribers."""
