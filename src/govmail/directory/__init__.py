"""directory layer."""
