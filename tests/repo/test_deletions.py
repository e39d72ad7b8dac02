"""Destructive commits, rule by rule (konorkestra.repo.deletions D1–D6), no store needed."""

from __future__ import annotations

from konorkestra.repo.deletions import AllowDelete, deletion_diagnostics
from konorkestra.repo.diagnostics import Diagnostic, Severity

NOBODY = AllowDelete()


def verdicts(diagnostics: list[Diagnostic]) -> list[tuple[str, str | None, str]]:
    return [(d.code, d.name, str(d.severity)) for d in diagnostics]


def test_d1_a_commit_that_removes_no_group_gets_no_diagnostic() -> None:
    assert deletion_diagnostics({"web"}, {"web", "db"}, {}, NOBODY) == []
    assert deletion_diagnostics(set(), set(), {}, NOBODY) == []
    assert deletion_diagnostics({"web"}, {"web"}, None, NOBODY) == []


def test_d1_every_removed_group_gets_exactly_one_diagnostic() -> None:
    found = deletion_diagnostics({"a", "b", "c", "keep"}, {"keep"}, {"a": 2}, AllowDelete.of(["b"]))
    assert verdicts(found) == [
        ("group-deleted", "a", "error"),
        ("group-deleted", "b", "warning"),
        ("group-deleted", "c", "warning"),
    ]


def test_d2_a_group_with_enrolled_nodes_is_refused_naming_group_count_and_trailer() -> None:
    [d] = deletion_diagnostics({"web", "db"}, {"db"}, {"web": 3}, NOBODY)
    assert (d.code, d.severity, d.kind, d.name) == ("group-deleted", Severity.ERROR, "Group", "web")
    assert "'web'" in d.message and "3 enrolled nodes" in d.message
    assert d.hint is not None and "Konorkestra-Allow-Delete: web" in d.hint


def test_d2_the_trailer_naming_the_group_or_star_allows_it() -> None:
    for allowed in (AllowDelete.of(["db, web"]), AllowDelete.of(["*"])):
        [d] = deletion_diagnostics({"web", "db"}, {"db"}, {"web": 3}, allowed)
        assert d.severity is Severity.WARNING and "3 enrolled nodes" in d.message
    [d] = deletion_diagnostics({"web", "db"}, {"db"}, {"web": 3}, AllowDelete.of(["webx"]))
    assert d.is_error


def test_d3_a_group_without_nodes_may_go_without_opt_in() -> None:
    [d] = deletion_diagnostics({"web", "db"}, {"db"}, {"web": 0}, NOBODY)
    assert d.severity is Severity.WARNING and "no enrolled node" in d.message
    [d] = deletion_diagnostics({"web", "db"}, {"db"}, {}, NOBODY)  # absent means 0
    assert d.severity is Severity.WARNING


def test_d4_unknown_node_counts_get_the_callers_severity() -> None:
    [d] = deletion_diagnostics({"web", "db"}, {"db"}, None, NOBODY)
    assert d.is_error and "Konorkestra-Allow-Delete: web" in (d.hint or "")
    [d] = deletion_diagnostics({"web", "db"}, {"db"}, None, NOBODY, unknown=Severity.WARNING)
    assert d.severity is Severity.WARNING
    [d] = deletion_diagnostics({"web", "db"}, {"db"}, None, AllowDelete.of(["web"]))
    assert d.severity is Severity.WARNING


def test_d5_removing_every_group_needs_star() -> None:
    found = deletion_diagnostics({"web", "db"}, set(), {"web": 2}, AllowDelete.of(["web,db"]))
    assert verdicts(found) == [
        ("every-group-deleted", None, "error"),
        ("group-deleted", "db", "warning"),
        ("group-deleted", "web", "warning"),
    ]
    assert "every Group (2)" in found[0].message and "web: 2 enrolled nodes" in found[0].message
    assert "Konorkestra-Allow-Delete: *" in (found[0].hint or "")
    everything = deletion_diagnostics({"web", "db"}, set(), {"web": 2}, AllowDelete.of(["*"]))
    assert all(not d.is_error for d in everything) and len(everything) == 2
    # Offline, with nothing known about nodes, it is refused all the same.
    offline = deletion_diagnostics({"web"}, set(), None, NOBODY, unknown=Severity.WARNING)
    assert [d.code for d in offline if d.is_error] == ["every-group-deleted"]


def test_d6_an_allowed_deletion_says_the_nodes_keep_their_last_release() -> None:
    [d] = deletion_diagnostics({"web"}, {"db"}, {"web": 1}, AllowDelete.of(["web"]))
    assert "1 enrolled node)" in d.message and "keep serving its last Release" in d.message


def test_allow_delete_values_are_comma_separated_and_repeatable() -> None:
    message = "Retire web\n\nKonorkestra-Allow-Delete: web, web-eu\nkonorkestra-allow-delete: db\n"
    allowed = AllowDelete.from_message(message)
    assert allowed == AllowDelete(frozenset({"web", "web-eu", "db"}))
    assert AllowDelete.from_message("Retire all\n\nKonorkestra-Allow-Delete: *\n").every
    assert AllowDelete.from_message("Konorkestra-Allow-Delete: web\n") == NOBODY  # a subject
    assert (AllowDelete.of(["a"]) | AllowDelete.of(["*"])).covers("zzz")
