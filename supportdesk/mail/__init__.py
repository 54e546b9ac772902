"""Email, both ways (shared DESIGN.md section 6).

`outbound`: composing an email, the transactional outbox, the Redis queue's keys and
operations, SMTP sending, thread tokens. It sits below `tickets`, which queue email.
`inbound`: parsing a received email in a sandbox, threading it into a ticket, the SMTP
listener, the sender's DMARC verdict, the quarantine, and the fetcher of the company's
mailboxes over IMAP. It sits above `tickets`, which it drives.
`mailboxes`: the company's own mailboxes' rows, secrets at rest, OAuth 2.0 tokens and the
IMAP and SMTP logins (password or XOAUTH2). It sits below both directions, which need them.
`eml_folder`: the `.eml` folder format of the development mailbox.
"""
