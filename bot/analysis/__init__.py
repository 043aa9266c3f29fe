"""The pure analyzer: SQL text and repository context in, findings out. No network, Redis or GitHub."""
