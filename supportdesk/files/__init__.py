"""Files: where attachments live and what may be uploaded.

`storage` is the backend (a folder on disk or S3), `uploads` checks an upload (size, kind by
its first bytes, image dimensions through `image_sizes`). A ticket's attachments (rows, links,
access) are in `supportdesk.tickets.attachments`, since they need the ticket's access rules.

May import: `core`.
"""
