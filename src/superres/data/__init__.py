"""superres.data."""
