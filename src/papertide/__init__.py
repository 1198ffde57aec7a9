"""papertide: self-hostable paper discovery with transparent trending, hybrid search and digests."""

__version__ = "0.1.0"
