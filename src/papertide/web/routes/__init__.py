"""Routers: pages, search, subscribe, api, dev."""
