"""Renderers: one Protocol, one registry keyed by format."""
