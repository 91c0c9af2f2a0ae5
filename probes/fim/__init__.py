"""The file-integrity engine: walks trees, stats every entry and hashes files through a transport (host I/O,
so it lives with the probes; ``baselines`` only judges what it produced)."""
