"""Commit-message trailers, rule by rule, and against Git's own reading."""

from __future__ import annotations

import subprocess

import pytest

from konorkestra.repo.deletions import TRAILER
from konorkestra.repo.trailers import parse_trailers, trailer_values
from tests.helpers.git import git_env

MESSAGES = {
    "plain": "Drop web\n\nKonorkestra-Allow-Delete: web\n",
    "body and trailers": "Drop web\n\nMoved.\n\nKonorkestra-Allow-Delete: web\nAcked-by: B <b@x>\n",
    "subject only": "Konorkestra-Allow-Delete: web\n",
    "subject spanning lines": "Konorkestra-Allow-Delete: web\nmore title\n",
    "not the last paragraph": "Drop\n\nKonorkestra-Allow-Delete: web\n\nJust prose.\n",
    "mixed block": "Drop\n\nKonorkestra-Allow-Delete: web\nthis line is prose\n",
    "signed-off rescues a mixed block": (
        "Drop\n\nKonorkestra-Allow-Delete: web\nprose\nSigned-off-by: A <a@x>\n"
    ),
    "too much prose even with signed-off": (
        "Drop\n\nprose\nprose\nprose\nprose\nSigned-off-by: A <a@x>\n"
    ),
    "folded value": "Drop\n\nKonorkestra-Allow-Delete: web,\n  db\n",
    "space before colon": "Drop\n\nKonorkestra-Allow-Delete : web\n",
    "space inside the token": "Drop\n\nKonorkestra Allow Delete: web\n",
    "comments ignored": "Drop\n\nKonorkestra-Allow-Delete: web\n# a comment\n",
    "trailing blank lines": "Drop\n\nKonorkestra-Allow-Delete: *\n\n\n",
    "whitespace-only separator": "Drop\n \t\nKonorkestra-Allow-Delete: web\n",
    "repeated": "Drop\n\nKonorkestra-Allow-Delete: web\nkonorkestra-allow-delete: db\n",
}


def _git_parse(message: str) -> list[tuple[str, str]]:
    out = subprocess.run(
        ["git", "interpret-trailers", "--parse", "--no-divider"],
        input=message,
        env=git_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pairs = []
    for line in out.splitlines():
        key, _, value = line.partition(":")
        pairs.append((key.strip(), value.strip()))
    return pairs


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_trailers_are_read_as_git_reads_them(name: str) -> None:
    message = MESSAGES[name]
    assert parse_trailers(message) == _git_parse(message)


def test_t1_only_the_last_paragraph_holds_trailers() -> None:
    assert parse_trailers(MESSAGES["not the last paragraph"]) == []
    assert parse_trailers(MESSAGES["body and trailers"])[0] == ("Konorkestra-Allow-Delete", "web")


def test_t2_the_subject_is_never_a_trailer() -> None:
    assert parse_trailers(MESSAGES["subject only"]) == []
    assert parse_trailers(MESSAGES["subject spanning lines"]) == []


def test_t3_folded_values_are_unfolded() -> None:
    assert trailer_values(MESSAGES["folded value"], TRAILER) == ["web, db"]


def test_t4_a_block_with_prose_is_not_trailers_unless_git_signed_it() -> None:
    assert parse_trailers(MESSAGES["mixed block"]) == []
    assert trailer_values(MESSAGES["signed-off rescues a mixed block"], TRAILER) == ["web"]
    assert parse_trailers(MESSAGES["too much prose even with signed-off"]) == []


def test_t5_keys_compare_case_insensitively_in_order() -> None:
    assert trailer_values(MESSAGES["repeated"], TRAILER.upper()) == ["web", "db"]
