"""baselines/uci."""
