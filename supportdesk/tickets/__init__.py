"""Tickets: the heart of the desk.

A ticket and its number (`service`, `pids`), who may see it (`access`), the list's search
(`search`), assignment (`assignment`), messages and internal notes (`messages`), a customer's
reply (`customer_replies`), its files (`attachments`) and its timeline (`timeline`); what
callers send is parsed once in `inputs`.

May import: `core`, `files`, `accounts`, `mail.outbound` (a change that emails someone queues
the email in its own transaction).
"""
