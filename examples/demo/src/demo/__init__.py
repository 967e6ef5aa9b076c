"""Tiny text helpers, written to run on Python 3.9 and newer."""

import sys

__all__ = ["interpreter", "slug", "word_counts"]


def slug(text):
    """Lower-case, dash-separated form of ``text``: 'Hello, World' -> 'hello-world'."""
    words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return "-".join(words)


def word_counts(text):
    """How often each word appears, most frequent first (ties in first-seen order)."""
    counts = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def interpreter():
    """'3.12' for Python 3.12: tests use it to check each cell runs its own Python."""
    return "{}.{}".format(*sys.version_info[:2])
