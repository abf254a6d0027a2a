"""The errors paperbot reports to people: each renders as one line that says what and where.

Every exception of paperbot is here, except those private to one module. The tree:

* PaperbotError: reported to a user as one line, never a traceback
  + ConfigError: the config file is invalid (`path` says where)
  + ParseError: a source's document is not what its kind expects
  + EntryError: one item of a document cannot become a paper (skipped with a warning)
  + FetchError: a source URL could not be fetched
    - FetchDeadline: a source's whole fetch ran past its deadline
  + SendError: a digest could not be handed to the mail server (`permanent`: a 5xx)
    - FatalSendError: every further message would fail too: sending stops
      - ServerUnavailable: the server cannot be reached now; a later run may
      - Stopping: not a mail problem: a stop was asked for (also a Withheld)
    - RecipientRefused: the server refused the recipient (a hard bounce when permanent)
    - ConnectionTrouble: a timeout or lost connection mid-message (retried)
      - DeliveryUnconfirmed: the whole message went out, no verdict came back
    - Withheld: a `before_transmit` hook stopped this message before its final dot
  + TokenError: a link's token is forged, for another purpose, or expired
  + BounceReadError: the bounce mailbox cannot be read (IMAP login, a missing Maildir)
  + StoreError: the SQLite store cannot be opened, read or written
    - StoreUnusable: the file is not a store paperbot can use
    - StoreFull: the disk is full (the step was rolled back)
    - StoreBusy: another process holds the database's lock too long
  + QueryError: an alert query that cannot be parsed (`column` says where)
  + LockBusy: another paperbot run holds the run lock too long
  + BackupError: a backup could not be made, or would replace a file without --force
* CronError (a ValueError, so that config validation reports it at its field): a schedule
  that is not a cron expression
"""

from __future__ import annotations

from typing import ClassVar


class PaperbotError(Exception):
    """Base of every error paperbot reports to a user as one line (never a traceback)."""


class ConfigError(PaperbotError):
    """The config file is invalid; `path` is where (e.g. `sources[2].kind`)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class ParseError(PaperbotError):
    """A source's document is not what its kind expects (changed page, error feed, bad XML)."""


class FetchError(PaperbotError):
    """A source URL could not be fetched (network error, HTTP error, too large).

    `body` is the start of an error answer's body (a 4xx page), where a server may say
    why; the source's kind can read it (`SourceKind.explain`).
    """

    body: bytes = b""

    def __init__(self, url: str, message: str, *, body: bytes = b"") -> None:
        self.url = url
        self.body = body
        super().__init__(f"{url}: {message}")


class FetchDeadline(FetchError):
    """A source's whole fetch (its pages, retries and waits) ran past its deadline.

    The line names the deadline and where the fetch was: `gave up after the 300 s
    deadline (page 3 of https://…: still reading, 1,024 bytes so far)`.
    """

    def __init__(self, url: str, seconds: float, where: str) -> None:
        self.url = url
        self.seconds = seconds
        PaperbotError.__init__(self, f"gave up after the {seconds:g} s deadline ({where})")


class SendError(PaperbotError):
    """A digest could not be handed to the mail server; `permanent` for 5xx refusals.

    `fatal` errors (server unreachable, authentication or TLS failure) stop the whole send.
    """

    fatal: ClassVar[bool] = False

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        self.permanent = permanent
        super().__init__(message)


class FatalSendError(SendError):
    """A failure every further message would hit too (auth, TLS, unreachable server, no disk).

    The caller stops sending and leaves the rest pending instead of trying each of them.
    """

    fatal: ClassVar[bool] = True


class ServerUnavailable(FatalSendError):
    """The server cannot be reached now (refused, timed out, busy greeting): worth a retry later.

    Unlike an authentication or TLS failure, waiting may fix it.
    """


class RecipientRefused(SendError):
    """The server refused the recipient at RCPT TO; with `permanent` this is a hard bounce."""


class ConnectionTrouble(SendError):
    """A timeout or a lost connection in the middle of a message: the server, not the message.

    Worth a retry; many in a row mean the server is stuck (the delivery's circuit breaker).
    """


class DeliveryUnconfirmed(ConnectionTrouble):
    """The whole message went out (final dot written) but no verdict came back.

    The server may have it: sending it again may deliver it twice (same Message-ID).
    """


class Withheld(SendError):
    """Raised by a `before_transmit` hook: this message must not go out after all.

    The sender drops the conversation before the final dot, so the server discards it.
    """


class Stopping(FatalSendError, Withheld):
    """Not a mail problem: a stop was asked for, so no further message is started (and one
    not yet sent whole is withheld)."""

    def __init__(self) -> None:
        super().__init__("stopping: shutdown requested; left pending for the next run")


class TokenError(PaperbotError):
    """A token is forged, for another purpose, or expired."""


class BounceReadError(PaperbotError):
    """The bounce mailbox cannot be read: IMAP refused us, or the Maildir is missing."""


class StoreError(PaperbotError):
    """The SQLite store cannot be opened, read or written; the message names its file."""


class StoreUnusable(StoreError):
    """The file at the database path is not a store paperbot can use (empty, truncated,
    another application's, damaged, or of a newer schema): a usage error, never a new install."""


class StoreFull(StoreError):
    """The disk (or the database's size limit) is full: the step was rolled back whole."""


class StoreBusy(StoreError):
    """Another process holds the database's lock for longer than this one would wait."""


class EntryError(PaperbotError):
    """One item of a source's document cannot become a paper (no title, no identity).

    The item is skipped with one warning; the rest of the document is still read.
    """


class QueryError(PaperbotError):
    """An alert query that cannot be parsed; `column` (1-based) is where the problem is."""

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"{message} at column {column}")


# --- timing and run ----------------------------------------------------------------------------


class CronError(ValueError):
    """A schedule that is not a cron expression; the message says why in one line."""


class LockBusy(PaperbotError):
    """Another paperbot run held the lock for longer than this one was willing to wait."""


class BackupError(PaperbotError):
    """`paperbot backup` could not make a whole, checked copy (or FILE exists: --force)."""
