"""Email, both ways (shared DESIGN.md section 6).

`outbound`: composing an email, the transactional outbox, the Redis queue's keys and
operations, SMTP sending, thread tokens. It sits below `tickets`, which queue email.
`inbound`: parsing a received email in a sandbox, threading it into a ticket, the SMTP
listener. It sits above `tickets`, which it drives.
`eml_folder`: the `.eml` folder format of the development mailbox.
"""
