"""openft.cli."""
