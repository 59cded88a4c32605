"""Sweep report: per-variant metrics, paired comparisons with control, manipulation check, figures."""
