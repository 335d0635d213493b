"""openft.services."""
