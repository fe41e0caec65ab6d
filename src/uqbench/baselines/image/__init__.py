"""Image classification baselines, one script per method."""
