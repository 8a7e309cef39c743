"""Loader emulation: glibc's and musl's rules as pure functions over the RootFS."""
