"""Text baselines: CLINC150 intent detection with out-of-scope queries (``uqbench run text/...``)."""
