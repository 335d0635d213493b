"""openft.worker."""
