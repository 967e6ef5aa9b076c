"""Reliability and security scenarios: the shared env cache never loses, corrupts or reuses a
broken environment. Run them with ``pytest tests/reliability`` (``--stress`` scales them up).
"""
