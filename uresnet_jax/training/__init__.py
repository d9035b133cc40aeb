"""A training run: the loop, the cohort and records it needs, scoring of held-out subjects during
and after it."""
