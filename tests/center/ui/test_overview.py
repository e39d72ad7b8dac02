"""The overview page: each Group's Releases and the progress of its rollout, live."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from konorkestra.center.rollouts.control import FleetCache
from konorkestra.center.ui.overview_data import Progress, width
from konorkestra.model.release import Release
from konorkestra.rollout import Fleet
from tests.center.rollouts.rig import Rig, canary
from tests.center.ui.conftest import Ui


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def tags(html: str, tag: str, **want: str) -> list[dict[str, str]]:
    """The attributes of every ``tag`` element whose attributes include ``want``
    (``class_`` for ``class``; a class matches one of the element's classes)."""
    parser = _Tags()
    parser.feed(html)
    out = []
    for name, attrs in parser.found:
        ok = name == tag
        for key, value in want.items():
            key = key.rstrip("_").replace("_", "-")
            have = attrs.get(key)
            ok = (
                ok
                and have is not None
                and (value in have.split() if key == "class" else have == value)
            )
        if ok:
            out.append(attrs)
    return out


def canary_in_flight(ui: Ui) -> tuple[Rig, Release, Release, list[str]]:
    """checkout: Release 1 completed on 10 nodes, Release 2 waving on 3 of them;
    of those one acked, one failed, one has not committed. ``(rig, r1, r2, targeted)``."""
    rig = Rig.create(ui.opened, nodes=10, policy=canary(steps=((30, 60), (100, 0))))
    first, second = rig.second_rollout()
    targeted = [str(n) for n in rig.row().state.targeted]
    assert len(targeted) == 3
    rig.commit(targeted[0], second, ["applied", "applied"], at=3)
    rig.commit(targeted[1], second, ["applied", "failed"], at=3)
    return rig, first, second, targeted


def test_a_group_card_shows_releases_progress_in_nodes_guards_and_a_link(ui: Ui) -> None:
    _, first, second, _ = canary_in_flight(ui)
    ui.login("viewer")
    page = ui.client.get("/ui/")
    assert page.status_code == 200
    [card] = tags(page.text, "article", class_="group", id="group-checkout")
    assert card["data-phase"] == "waving"
    [bar] = tags(page.text, "div", class_="progress", role="progressbar")
    keys = ("enrolled", "targeted", "committed", "acked", "failed")
    counts = {k: bar[f"data-{k}"] for k in keys}
    assert counts == {"enrolled": "10", "targeted": "3", "committed": "2", "acked": "1",
                      "failed": "1"}  # fmt: skip
    # The whole bar is the Group: the first wave's 3 of 10 nodes fill at most 30 % of it.
    assert (bar["aria-valuemin"], bar["aria-valuemax"], bar["aria-valuenow"]) == ("0", "10", "1")
    widths = [int(c.split("w-")[1]) for c in re.findall(r'class="\w+ (w-\d+)"', page.text)]
    assert widths and sum(widths) <= 30, widths
    assert "3 of 10 nodes targeted" in page.text
    assert tags(page.text, "a", href="/ui/rollouts/checkout")
    assert tags(page.text, "a", href=f"/ui/releases/{first.id}")  # stable
    assert tags(page.text, "a", href=f"/ui/releases/{second.id}")  # in flight
    assert "step 1 of 2" in page.text
    guards = {g["data-signal"] for g in tags(page.text, "tr") if "data-signal" in g}
    assert guards == {"failed_acks", "ack_success_rate"}
    assert tags(page.text, "div", id="overview-live", hx_trigger="sse:changed", hx_get="/ui/")


def test_the_live_region_alone_answers_an_htmx_request_with_what_changed(ui: Ui) -> None:
    rig, _, second, targeted = canary_in_flight(ui)
    ui.login("viewer")
    live = ui.client.get("/ui/", headers={"HX-Request": "true"})
    assert live.status_code == 200
    assert live.text.lstrip().startswith('<div id="overview-live"'), live.text[:200]
    assert "<html" not in live.text and 'id="group-checkout"' in live.text
    assert tags(live.text, "div", class_="progress")[0]["data-committed"] == "2"
    rig.commit(targeted[2], second, ["applied"], at=4)  # a report: the next request shows it
    again = ui.client.get("/ui/", headers={"HX-Request": "true"})
    [bar] = tags(again.text, "div", class_="progress")
    assert (bar["data-committed"], bar["data-acked"]) == ("3", "2")


def test_without_groups_the_page_says_so(ui: Ui) -> None:
    ui.login("viewer")
    page = ui.client.get("/ui/")
    assert page.status_code == 200 and "No Groups yet" in page.text
    assert not tags(page.text, "article", class_="group")


def test_segments_are_multiples_of_five_and_never_over_the_whole() -> None:
    assert (width(1, 3), width(0, 0), width(3, 3)) == (35, 0, 100)
    thirds = Progress(targeted=3, committed=3, acked=1, failed=1)
    assert thirds.segments() == (("acked", 1, "w-35"), ("committed", 1, "w-30"),
                                 ("failed", 1, "w-35"))  # fmt: skip
    for acked, failed, committed, targeted in ((1, 1, 2, 7), (2, 2, 6, 6), (0, 0, 0, 9)):
        widths = [int(c.removeprefix("w-")) for *_, c in
                  Progress(targeted, committed, acked, failed).segments()]  # fmt: skip
        assert sum(widths) <= 100 and all(w % 5 == 0 and w > 0 for w in widths)


def test_the_fleet_cache_forgets_everything_when_the_store_moves() -> None:
    cache, fleet = FleetCache(size=2), Fleet((), {})
    cache.put((5, 7), ("checkout", "r2"), fleet)
    assert cache.get((5, 7), ("checkout", "r2")) is fleet
    assert cache.get((5, 7), ("checkout", "r3")) is None  # another Release
    assert cache.get((5, 8), ("checkout", "r2")) is None  # a new report
    cache.put((6, 8), ("payments", "p1"), fleet)
    assert cache.get((6, 8), ("checkout", "r2")) is None  # dropped with the old marks
    cache.put((6, 8), ("a", "1"), fleet)
    cache.put((6, 8), ("b", "1"), fleet)  # full: starts over
    assert cache.get((6, 8), ("payments", "p1")) is None and cache.get((6, 8), ("b", "1"))
