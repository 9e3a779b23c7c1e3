"""Observability: metrics scraped from real servers."""
