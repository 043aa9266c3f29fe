"""Findings into words and formats: text, JSON, SARIF, GitHub workflow annotations, rule documentation (pure)."""
