"""openft.evals."""
