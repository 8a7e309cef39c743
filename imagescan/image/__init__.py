"""Image sources: engine, archives, OCI layouts, registries, directories."""
