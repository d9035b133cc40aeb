"""Shared test set-up: XLA's persistent compilation cache, so repeated compiles are cheap."""
import pathlib

import jax

jax.config.update(
    "jax_compilation_cache_dir", str(pathlib.Path(__file__).resolve().parents[1] / "data" / "jax_cache")
)
