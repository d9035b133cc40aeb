"""Numbers in tables: digits as asked, one dash for a missing or infinite value."""
import math

from uresnet_jax.common import formatting


def test_number_and_missing():
  assert formatting.number(0.12345) == "0.123"
  assert formatting.number(2.5, 0) == "2"
  for missing in (None, math.nan, math.inf):
    assert formatting.number(missing) == formatting.MISSING
    assert formatting.p_value(missing) == formatting.MISSING


def test_p_value_switches_to_scientific_below_a_thousandth():
  assert formatting.p_value(0.0421) == "0.042"
  assert formatting.p_value(0.00012) == "1.20e-04"


def test_mean_std_scales_both():
  assert formatting.mean_std({"mean": 0.695, "std": 0.161}, 100) == "69.5 (16.1)"
  assert formatting.mean_std({"mean": math.nan, "std": 0.1}) == formatting.MISSING
