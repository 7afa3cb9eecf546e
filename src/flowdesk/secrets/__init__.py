"""Secrets and connections: credentials kept encrypted in the database, and the
named API endpoints whose authentication refers to them.

Values leave this package only for a run (`load_secrets`), never for a page, a
listing or an export.
"""
