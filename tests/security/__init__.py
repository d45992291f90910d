"""Security tests: attacks on sessions and logins, bad input and store faults.

This folder is a package so that its conftest gets its own module name and
does not replace ``tests/conftest.py`` in ``sys.modules``.
"""
