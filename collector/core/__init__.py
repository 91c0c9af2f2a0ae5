"""Settings, paths, the collector CA and security helpers."""
