"""Accounts: staff users, their passwords and sessions (the login throttle itself is
`core.ratelimit.LoginThrottle`).

`auth` holds the password policy, bcrypt and the session tokens; `sessions` logs in and out
and checks a session on each request; `staff` manages the staff list (create, change role,
deactivate).

May import: `core`.
"""
