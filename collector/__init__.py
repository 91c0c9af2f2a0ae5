"""The precaution collector (storage, dashboard, notices, rectification tracking, metrics).

Not built yet: it arrives with its own issue. The console script exists so installs are complete and
says so plainly.
"""

__version__ = "0.1.0"
