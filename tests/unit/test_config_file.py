"""The config file as bytes and YAML: encodings, anchors and aliases, duplicate keys, URLs
and size are refused with one ConfigError naming the place, never an internal error.

The hostile files here are hand-made (a Latin-1 byte, an alias bomb, a duplicate key).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.config.checks import check_url
from bot.config.load import MAX_CONFIG_BYTES, load_config, parse_config
from bot.errors import ConfigError
from bot.models import MAX_PAPERS

GOOD = """\
database: data/paperbot.db
base_url: https://papers.example.org
sources:
  - name: arxiv
    kind: arxiv-rss
    categories: [cs.LG]
  - {name: lab, kind: rss, url: "http://127.0.0.1:8765/feed.xml"}
smtp:
  host: smtp.example.org
  from: bot@example.org
subscribers:
  - email: ada@example.org
    keywords: [grokking]
"""


def refusal(text: str | bytes, tmp_path: Path) -> str:
    """The one-line ConfigError that loading this file gives."""
    path = tmp_path / "paperbot.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "\n" not in message
    return message.replace(str(path), "paperbot.yaml")


def test_the_good_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.yaml"
    path.write_text(GOOD, encoding="utf-8")
    config = load_config(path)
    assert [s.name for s in config.sources] == ["arxiv", "lab"]
    assert config.base_url == "https://papers.example.org"


# --- bytes -----------------------------------------------------------------------------------


def test_a_latin1_byte_names_its_line_and_column(tmp_path: Path) -> None:
    text = GOOD.replace("keywords: [grokking]", "keywords: [café]").encode("latin-1")
    assert refusal(text, tmp_path) == (
        "paperbot.yaml:line 13, column 19: not UTF-8 text (byte 0xe9): save the file as UTF-8"
    )


def test_a_utf16_file_is_refused_at_its_first_byte(tmp_path: Path) -> None:
    message = refusal(GOOD.encode("utf-16"), tmp_path)
    assert message.startswith("paperbot.yaml:line 1, column 1: not UTF-8 text (byte 0xff)")


def test_a_utf8_file_with_accents_and_a_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "paperbot.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("grokking", "réseaux").encode("utf-8"))
    assert load_config(path).subscribers[0].keywords == ("réseaux",)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    line = b"# a comment line, padding the file past the limit\n"
    text = GOOD.encode() + line * (MAX_CONFIG_BYTES // len(line) + 1)
    assert len(text) > MAX_CONFIG_BYTES
    message = refusal(text, tmp_path)
    assert message.startswith("paperbot.yaml: the file is larger than 16 MB, too large")


def test_a_device_that_never_ends_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    with pytest.raises(ConfigError, match="larger than 16 MB"):
        load_config(Path("/dev/zero"))


# --- YAML ------------------------------------------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
subscribers:
  - email: ada@example.org
    keywords: *i
"""


def test_an_alias_bomb_is_refused_at_its_first_anchor(tmp_path: Path) -> None:
    assert refusal(BILLION_LAUGHS, tmp_path) == (
        "paperbot.yaml:line 1, column 4: YAML anchors and aliases (&name, *name) are not"
        " allowed in the config: write the value out"
    )


def test_an_alias_is_refused_where_it_is_used(tmp_path: Path) -> None:
    text = GOOD + "  - email: bo@example.org\n    keywords: *grok\n"
    assert refusal(text, tmp_path).startswith("paperbot.yaml:line 15, column 15: YAML anchors")


def test_a_merge_key_needs_an_alias_and_is_refused(tmp_path: Path) -> None:
    text = "defaults: &d {max_papers: 5}\nsubscribers:\n  - <<: *d\n    email: a@example.org\n"
    assert "YAML anchors and aliases" in refusal(text, tmp_path)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("database: data/paperbot.db\n", "database: data/paperbot.db\ndatabase: other.db\n"),
            "paperbot.yaml:line 2, column 1: duplicate key 'database' (first on line 1)",
        ),
        (
            ("  from: bot@example.org\n", "  from: bot@example.org\n  host: smtp2.example.org\n"),
            "paperbot.yaml:line 11, column 3: duplicate key 'host' (first on line 9)",
        ),
        (
            ("    keywords: [grokking]\n", "    keywords: [grokking]\n    keywords: [diffusion]\n"),
            "paperbot.yaml:line 14, column 5: duplicate key 'keywords' (first on line 13)",
        ),
        (
            ('kind: rss, url: "http', 'kind: rss, kind: html, url: "http'),
            "paperbot.yaml:line 7, column 28: duplicate key 'kind' (first on line 7)",
        ),
    ],
    ids=["top-level", "smtp", "in-a-list-item", "flow-mapping-one-line"],
)
def test_a_duplicate_key_is_refused_at_any_depth(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert GOOD.count(old) == 1
    assert refusal(GOOD.replace(old, new), tmp_path) == expected


def test_keys_that_yaml_reads_as_one_are_duplicates(tmp_path: Path) -> None:
    message = refusal("alerts: {source_failures: 3}\n'alerts': {}\n", tmp_path)
    assert "duplicate key 'alerts'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # libyaml says where (PyYAML alone runs out of Python's recursion first)
        ("[" * 5000 + "]" * 5000, "paperbot.yaml:line 1, column 1001: invalid YAML: exceeded"),
        ("max_papers: " + "9" * 5000, "paperbot.yaml: invalid YAML: Exceeds the limit"),
    ],
    ids=["nested-too-deeply", "an-integer-of-5000-digits"],
)
def test_yaml_that_python_cannot_hold_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    assert refusal(text, tmp_path).startswith(expected)


# --- URLs ------------------------------------------------------------------------------------

BAD_URLS = [
    ("htp://example.org/feed.xml", "must start with https:// or http://"),
    ("ftp://example.org/feed.xml", "must start with https:// or http://"),
    ("example.org/feed.xml", "must start with https:// or http://"),
    ("https://", "has no host name"),
    ("http:///feed.xml", "has no host name"),
    ("https://exa mple.org/feed.xml", "cannot contain spaces"),
    ("https://example.org/feed.xml ", "cannot contain spaces"),
    ("https://example.org/\tfeed", "cannot contain spaces"),
    ("https://example.org/\x7ffeed", "cannot contain spaces or control characters"),
    ("https://example.org:99999/feed.xml", "port 99999 is out of range"),
    ("http://[::1/feed", "not a valid URL"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_URLS)
def test_a_bad_source_url_names_the_source(url: str, problem: str) -> None:
    raw = yaml.safe_load(GOOD)
    raw["sources"].append({"name": "third", "kind": "rss", "url": url})
    with pytest.raises(ConfigError) as refused:
        parse_config(yaml.safe_dump(raw))
    assert refused.value.path == "sources[2].url"
    assert problem in refused.value.message


@pytest.mark.parametrize(("url", "problem"), BAD_URLS)
def test_a_bad_base_url_is_refused(url: str, problem: str) -> None:
    raw = yaml.safe_load(GOOD) | {"base_url": url}
    with pytest.raises(ConfigError) as refused:
        parse_config(yaml.safe_dump(raw))
    assert refused.value.path == "base_url"
    assert problem in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/arxiv/feed.xml",
        "https://export.arxiv.org/api/query?search_query=cat:cs.LG&max_results=100",
        "https://mila.quebec/en/research/publications",
        "http://[::1]:8080/feed",
        "https://bücher.example/feed",
    ],
)
def test_good_urls_pass(url: str) -> None:
    assert check_url(url) == url


def test_a_max_papers_above_what_a_digest_holds_counts_as_the_most_it_holds() -> None:
    text = """
max_papers: 20
subscribers:
  - email: ada@example.org
    keywords: [grokking]
    max_papers: 500
  - email: bo@example.org
    keywords: [grokking]
"""
    config = parse_config(text)

    assert [s.max_papers for s in config.subscribers] == [MAX_PAPERS, 20]
