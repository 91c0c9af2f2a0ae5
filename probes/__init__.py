"""Probes: gather raw facts through an injected transport and parse them into typed observations.

A probe never prints and never judges; severity is decided by profiles in ``baselines``.
"""
