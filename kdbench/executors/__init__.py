"""Executors run a list of specs through workers: serially (default), or spread over devices/jobs."""
