"""openft.api."""
