"""Inbound email: parsing (`parse`), threading into tickets (`service`), and the ways in
(the signed webhook in `resources/inbound.py`, the SMTP listener in `smtp`)."""
