"""Papers: canonical ids, the one upsert path, and reads for pages and the API."""
