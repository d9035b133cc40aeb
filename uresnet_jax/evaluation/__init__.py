"""Scoring of label maps (no model needed): the WMH challenge metrics, cohort statistics, the
classical baseline, reports and figures."""
