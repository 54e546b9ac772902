"""Falcon resources: thin; parse, authorize, call a service, render."""
