"""One conformance suite for every backend of the engine's contracts."""
