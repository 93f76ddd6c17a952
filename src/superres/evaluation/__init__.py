"""superres.evaluation."""
