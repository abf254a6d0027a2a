"""Bounce-parser evaluation (not a test): a PyPI library over the real bounce corpus.

    .venv/bin/pip install flufl.bounce bounced   # not dependencies of paperbot
    .venv/bin/python bench/bounces.py [--library flufl|bounced] [--heldout]

Reads every `.eml` of tests/fixtures/bounces/ (the held-out ones only with --heldout: leave
them alone until the final acceptance check) and the expected class of each failed recipient
from PROVENANCE.md there. For each file prints the recipients the library found, temporary
(soft) or permanent (hard), and a verdict:

- ok: every expected recipient found, in its class, and nothing else;
- UNSAFE: an address reported permanent where we expect soft or no bounce at all (counting it
  as hard could suspend a live subscriber);
- missed: an expected recipient not found (the bounce would be left unread);
- weaker: a hard bounce reported as temporary (safe, only slower to suspend);
- extra: an address found that the message does not name as failed.

"right addresses" counts the files where the library found exactly the failed addresses,
whatever class it gave them.

Then the totals. Issue 15's preparation; the numbers are in the branch's report.
"""

from __future__ import annotations

import argparse
import email
import re
from collections import Counter
from collections.abc import Callable
from email.message import Message
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "bounces"
ROW = re.compile(r"^\| `(?P<file>[^`]+\.eml)` \|.*\| (?:hard|soft|not a bounce) \| (?P<rc>.*) \|")
RECIPIENT = re.compile(r"`([^`]+@[^`]+)` \((hard|soft),")

Found = dict[str, str]  # address -> "hard" | "soft"


def expectations() -> dict[str, Found]:
    """File (relative to the corpus) -> expected failed recipients and their class."""
    table: dict[str, Found] = {}
    for line in (CORPUS / "PROVENANCE.md").read_text().splitlines():
        if m := ROW.match(line):
            table[m["file"]] = {a.lower(): c for a, c in RECIPIENT.findall(m["rc"])}
    return table


def flufl(msg: Message) -> Found:
    """flufl.bounce: all_failures() gives (temporary, permanent) sets of bytes addresses."""
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(msg)
    found = {a.decode(errors="replace").lower(): "soft" for a in temporary}
    found.update({a.decode(errors="replace").lower(): "hard" for a in permanent})
    return found


def bounced(msg: Message) -> Found:
    """bounced: RFC 3464 only; a failed 5xx is permanent, anything else temporary."""
    from bounced.bounced import get_bounces

    found: Found = {}
    for b in get_bounces(msg) or ():
        address = b.recipient[1].lower() if b.recipient else ""
        if address and b.action in ("failed", "delayed"):
            hard = b.action == "failed" and str(b.status or "").startswith("5")
            found[address] = "hard" if hard else "soft"
    return found


LIBRARIES: dict[str, Callable[[Message], Found]] = {"flufl": flufl, "bounced": bounced}


def verdicts(expected: Found, found: Found) -> list[str]:
    """Every way the library's answer differs from the expectation ("ok" if none)."""
    out = []
    for address, cls in found.items():
        if cls == "hard" and expected.get(address) != "hard":
            out.append(f"UNSAFE {address}")
        elif address not in expected:
            out.append(f"extra {address}")
    for address, cls in expected.items():
        if address not in found:
            out.append(f"missed {address}")
        elif cls == "hard" and found[address] == "soft":
            out.append(f"weaker {address}")
    return out or ["ok"]


def main() -> None:
    """Print one line per file, then totals by verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", choices=sorted(LIBRARIES), default="flufl")
    parser.add_argument("--heldout", action="store_true", help="also the held-out files")
    args = parser.parse_args()
    read = LIBRARIES[args.library]
    table = expectations()
    totals: Counter[str] = Counter()
    files = [f for f in sorted(table) if args.heldout or not f.startswith("heldout/")]
    for name in files:
        msg = email.message_from_bytes((CORPUS / name).read_bytes())
        try:
            found = read(msg)
            marks = verdicts(table[name], found)
        except Exception as exc:  # a library crash is a result here, not a bench failure
            found, marks = {}, [f"ERROR {type(exc).__name__}: {exc}"[:80]]
        shown = ", ".join(f"{a} {c}" for a, c in sorted(found.items())) or "-"
        print(f"{name:52} {shown:60.60} {'; '.join(marks):.100}")
        totals["files"] += 1
        totals["ok" if marks == ["ok"] else "not ok"] += 1
        totals["right addresses"] += set(found) == set(table[name])
        totals.update(m.split()[0] for m in marks if m != "ok")
    print(", ".join(f"{k}: {v}" for k, v in totals.items()))


if __name__ == "__main__":
    main()
