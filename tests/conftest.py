"""Shared fixtures: a real HTTP server and a real SMTP server on 127.0.0.1."""

from tests.httpserver import http_server, http_server_factory  # noqa: F401
from tests.smtpserver import smtp_server, smtp_server_factory, tls_certificate  # noqa: F401
from tests.webapp import web_site, web_site_factory  # noqa: F401
