"""The squashed, virtual root filesystem of an image: nothing is written to disk."""
