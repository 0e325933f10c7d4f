"""People's files: fetched to disk in the worker, relayed as files or as expiring links."""
