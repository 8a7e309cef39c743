"""ELF facts: what the loader emulation needs from each file, parsed once."""
