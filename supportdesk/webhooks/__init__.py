"""Outgoing webhooks (DESIGN.md section 13): registered by ADMIN (service.py), queued in the
transaction of the ticket change that fires them (events.py, called by
tickets.timeline.record_event), sent by the worker (worker/webhooks.py) through the pinned,
bounded HTTP client (client.py) to targets the SSRF rules allow (targets.py).

Below tickets, beside mail.outbound: imports core, accounts (the audit log) and
mail.mailboxes (SecretBox) only."""
