"""Host probes: on-site inspection of one machine (Art. 24(1)), locally or over SSH."""
