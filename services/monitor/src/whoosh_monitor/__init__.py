"""WHOOSH monitor."""
