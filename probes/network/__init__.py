"""Network probes (Art. 24(2)): discovery, port and service scans, passive link checks."""
