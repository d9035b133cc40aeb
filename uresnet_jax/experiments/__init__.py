"""Runs built from the stages: cross-validation, the paper's experiments and ablations, fine-tuning,
held-out phantom domains, model cards, benchmarks."""
