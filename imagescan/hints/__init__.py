"""Provenance of judged files and a fix hint for every root cause (issue 11)."""
