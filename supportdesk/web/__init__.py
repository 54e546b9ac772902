"""The web process: Falcon app, pages and JSON API.

`app.create_app` builds the application from `services` (the composition root); `middleware`
(request ids, sizes, client addresses, the auth guard of `guards`), `routes` (the one table of
every route and who may call it), `schemas` and `openapi` (the published contract; what a
request holds comes from its domain's `core.fields` declaration), `errors` (the one error
envelope), `templating`, `health`, `resources/` (thin: parse, authorize, call a service,
render) and `server` (gunicorn).

May import: the domains and `core`; never `worker` or `dev`.
"""
