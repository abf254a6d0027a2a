"""Digests, from matches to mail, in reading order.

`digest` chooses and ranks a subscriber's papers; `views` (through `display`, `highlight`,
`abstracts`) is what a paper shows; `templates`, `pieces` and `render` make the digest's
text and HTML within the size budget, their per-run caches owned by `caches`; `mime` makes
the message and `compose` one pending digest's email; `deliver` sends the outbox, with
`renderproc` rendering ahead in a helper process, over `senders/`; `links` signs the links
in mail and `dkim` signs the messages.
"""
