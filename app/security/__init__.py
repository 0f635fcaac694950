"""Security primitives: keyring, blind indexes, passwords, tokens and sessions, RBAC."""
