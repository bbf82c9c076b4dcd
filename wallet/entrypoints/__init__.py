"""Entrypoints: HTTP (JSON API and pages) and the command line."""
