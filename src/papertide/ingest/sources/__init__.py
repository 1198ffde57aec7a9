"""One module per source: fetch raw bytes, parse them into PaperIn records."""
