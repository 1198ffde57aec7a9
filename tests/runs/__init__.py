"""Tests for papertide.runs."""
