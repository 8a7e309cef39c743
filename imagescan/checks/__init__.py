"""Checks: one pure function per finding kind, over the processes the loader built."""
