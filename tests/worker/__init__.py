"""Tests for papertide.worker."""
