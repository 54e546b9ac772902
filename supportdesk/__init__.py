"""Support Desk: an email-first, single-tenant help desk."""

__version__ = "0.1.0"
