"""A stateful fake GitHub for the App's end-to-end tests, checked against GitHub's published descriptions."""
