"""Digests: choosing, rendering, MIME, delivery, senders (`senders/`), links and DKIM."""
