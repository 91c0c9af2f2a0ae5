"""The precaution agent: runs probes, compares with profiles and baselines, records and reports."""

__version__ = "0.1.0"
