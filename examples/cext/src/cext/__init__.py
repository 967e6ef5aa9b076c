"""Adds integers in C."""

from cext._add import add

__all__ = ["add"]
