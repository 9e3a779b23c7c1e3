"""Compatibility tests: the official SDKs against a real ``parsec serve`` process."""
