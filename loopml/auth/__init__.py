"""Who acts: actors for the audit log (API tokens and roles come with the server)."""
