"""RQ job functions: they orchestrate the analyzer and the GitHub adapter, and hold no logic of their own."""
