"""Browsers: backend contracts, processes, the session keeper."""
