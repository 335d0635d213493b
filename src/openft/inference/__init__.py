"""openft.inference."""
