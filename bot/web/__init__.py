"""The subscription web app (Starlette): sign up with double opt-in, manage alerts with a
preview, one-click unsubscribe (RFC 8058), and the safeguards a public form needs.

Pages work without JavaScript (`/static/web.js` only makes the preview live). Every form
carries a CSRF token bound to a cookie, except the one-click unsubscribe POST, which the
signed token in its URL authorizes. Forms that send mail have a honeypot field and are
rate-limited per client network and per address; the counts live in the store, so that a
restart does not reset them and several workers share them. What a visitor sees never
depends on whether an address is subscribed: only the mail, which goes to the address's
owner, differs.

Where things are: `server` (create_app, serve, listen), `site` (what every route shares),
the routes in `signup`, `manage`, `feedback` and `livepreview`, `pages` (templates, message pages,
static files), `errorpages` (4xx, 503 + Retry-After, 500, /healthz), `guard` (CSRF,
honeypot, middleware), `limits` (rate limits), `forms` (alert form parsing), `mail` (the
app's mails), `preview`, `recent` and `matches` (what the pages list; pure).
"""
