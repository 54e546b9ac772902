"""The company's own mailboxes (DESIGN.md section 10): the `mailboxes` rows, their secrets
encrypted at rest, OAuth 2.0 tokens, and IMAP and SMTP sessions that log in with a password
or SASL XOAUTH2.

Below both directions of mail: outbound sends a ticket's replies through its mailbox's own
SMTP server, inbound fetches it over IMAP (`mail.inbound`). Imports `core` only.
"""
