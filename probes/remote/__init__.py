"""Remote probes (Art. 24(3)): tests of equipment and systems over SSH."""
