"""A wallet service: exact money over a JSON REST API and a web page."""
