"""openft.train."""
