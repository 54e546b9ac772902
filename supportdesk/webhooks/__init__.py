"""Outgoing webhooks (DESIGN.md section 13): registered by ADMIN, queued in the
transaction of the change that fires them, delivered by the worker."""
