"""The model registry: versions, aliases, lifecycle stages, approvals, lineage."""
