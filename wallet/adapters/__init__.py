"""Adapters: the ports implemented on PostgreSQL, Redis and in memory."""
