"""Tests that drive the example portal in headless Chromium, and the deployment checks they rely on.

This folder is a package so that its conftest and helper modules get their own
module names and do not replace ``tests/conftest.py`` in ``sys.modules``.
"""
