"""Inbound email: parsing in a child process (`sandbox`, `parse`, `readable`, and the HTML
sanitized to be shown as written: `original_html`), threading into
a ticket (`service`), and the ways in (the signed webhook in `web/resources/inbound.py`, the
SMTP listener in `smtp`).

May import: `tickets` and everything below it.
"""
