"""Internals of :mod:`kling_testkit.strategies`; import from there, not from here."""
