"""Ingestion: sources parse raw responses into PaperIn records; service.py runs and records them."""
