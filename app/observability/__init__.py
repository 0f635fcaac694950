"""Logging with trace ids, Prometheus metrics and health checks."""
