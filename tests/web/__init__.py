"""Tests for papertide.web."""
