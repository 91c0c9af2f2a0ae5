"""The `precaution` command line: the only layer that prints."""
