"""Transactional use cases, called by API endpoints and by job tasks; each owns its transaction."""
