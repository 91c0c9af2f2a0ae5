"""Baselines and profiles: pure comparison of observations with expectations; findings and remediation."""
