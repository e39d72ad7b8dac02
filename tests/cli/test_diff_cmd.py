"""``konorctl diff`` on a real Git repository made with the ``git`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from konorkestra.cli.konorctl import cli
from konorkestra.model.definitions import FileEntry
from tests.helpers.git import git, make_bare

LONG = "m" * 300

POLICIES = """\
apiVersion: konorkestra.io/v1
kind: Policy
metadata: {name: fast}
spec: {strategy: all-at-once, onFailure: pause}
---
apiVersion: konorkestra.io/v1
kind: Policy
metadata: {name: canary}
spec:
  strategy: canary
  steps: [{percent: 10, bake: 1m}, {percent: 100}]
  guards: [{signal: failed_acks, threshold: 0}]
  approval: APPROVAL
"""


def web(version: int, port: int, motd: str, upstreams: str) -> str:
    return f"""\
---
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata: {{name: web, version: {version}}}
spec:
  data: {{port: {port}, motd: "{motd}", upstreams: [{upstreams}]}}
"""


def db(version: int, pool: int) -> str:
    return f"""\
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata: {{name: db, version: {version}}}
spec:
  data: {{pool: {pool}}}
  files: [files/db.conf]
"""


GROUPS = """\
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: web}
spec: {configSets: [web], policy: canary}
---
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: db}
spec: {configSets: [DB], policy: fast}
---
apiVersion: konorkestra.io/v1
kind: Group
metadata: {name: static}
spec: {configSets: [static@1], policy: fast}
---
apiVersion: konorkestra.io/v1
kind: ConfigSet
metadata: {name: static, version: 1}
spec: {data: {root: /srv}}
"""

WEB1 = web(1, 8080, "short", "{name: a, url: 'http://a'}")
WEB2 = web(2, 8081, LONG, "{name: a, url: 'http://a'}, {name: b, url: 'http://b'}")


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        git(path, "init", "--quiet", "--initial-branch=main")

    def write(self, rel: str, text: str | bytes) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text if isinstance(text, bytes) else text.encode())

    def commit(self, message: str) -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "--quiet", "-m", message)
        return git(self.path, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """Commit ``one``, then ``two``: web@2 and db@2 in two Groups and the canary Policy changed."""
    r = Repo(tmp_path / "config")
    r.write("policies.yaml", POLICIES.replace("APPROVAL", "auto"))
    r.write("configsets/web.yaml", WEB1)
    r.write("configsets/db.yaml", db(1, 5))
    r.write("files/db.conf", b"max_connections = 100\n")
    r.write("groups.yaml", GROUPS.replace("DB", "db@1"))
    r.commit("one")
    git(r.path, "tag", "one")
    r.write("policies.yaml", POLICIES.replace("APPROVAL", "manual"))
    r.write("configsets/web.yaml", WEB1 + WEB2)
    r.write("configsets/db.yaml", db(1, 5) + "---\n" + db(2, 10))
    r.write("files/db.conf", b"max_connections = 250\n")
    r.write("groups.yaml", GROUPS.replace("DB", "db@2"))
    r.commit("two")
    return r


def run(repo: Repo | Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    path = repo.path if isinstance(repo, Repo) else repo
    result = CliRunner(env=env).invoke(cli, ["diff", "--repo", str(path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def digest(content: bytes) -> str:
    entry = FileEntry.of(content)
    return f"{entry.digest[:19]} ({entry.size} bytes)"


def test_two_commits_show_each_changed_group_its_configsets_and_policy(repo: Repo) -> None:
    code, out, err = run(repo, "one", "main")
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0].startswith("diff one (") and " → main (" in lines[0]
    old_conf, new_conf = digest(b"max_connections = 100\n"), digest(b"max_connections = 250\n")
    assert lines[2:] == [
        "~ Group db",
        "  ~ ConfigSet db 1 → 2",
        "      ~ /pool: 5 → 10",
        f"      ~ file files/db.conf: {old_conf} → {new_conf}",
        "  = Policy fast (unchanged)",
        "",
        "~ Group web",
        "  ~ ConfigSet web 1 → 2",
        f'      ~ /motd: "short" → "{"m" * 119}… (302 chars)',
        "      ~ /port: 8080 → 8081",
        '      + /upstreams/[name=b]: {"name": "b", "url": "http://b"}',
        "  ~ Policy canary",
        "      ~ approval: auto → manual",
        "",
        "2 Groups changed, 0 added, 0 removed, 1 unchanged",
    ]
    assert "\x1b[" not in out  # not a terminal: no colour


def test_json_output_is_one_document_with_the_same_content(repo: Repo) -> None:
    code, out, _ = run(repo, "main~1", "main", "-o", "json")
    assert code == 1
    doc = json.loads(out)
    one, head = (git(repo.path, "rev-parse", rev).strip() for rev in ("one", "HEAD"))
    assert doc["format"] == 1 and doc["differs"] is True
    assert doc["a"] == {"ref": "main~1", "commit": one}
    assert doc["b"] == {"ref": "main", "commit": head}
    assert doc["summary"] == {"added": 0, "removed": 0, "changed": 2, "unchanged": 1}
    assert doc["unchanged"] == ["static"]
    db_group, web_group = doc["groups"]
    assert db_group["group"] == "db" and db_group["policy"]["changes"] == []
    (db_cs,) = db_group["configsets"]
    assert (db_cs["before"]["version"], db_cs["after"]["version"]) == (1, 2)
    assert db_cs["files"][0]["new"] == {
        "digest": FileEntry.of(b"max_connections = 250\n").digest,
        "size": 22,
    }
    motd = web_group["configsets"][0]["data"][0]
    assert motd["path"] == "/motd" and motd["old"] == '"short"' and motd["new_chars"] == 302
    assert web_group["policy"]["changes"] == [{"field": "approval", "old": "auto", "new": "manual"}]
    assert web_group["policy"]["after"]["steps"][0] == {"percent": 10, "bake": "60s"}


def test_no_difference_exits_zero(repo: Repo) -> None:
    code, out, _ = run(repo, "main", "HEAD")
    assert code == 0
    assert out.splitlines()[-1] == "no difference: 3 Groups unchanged"
    code, out, _ = run(repo, "HEAD", "-o", "json")  # B defaults to the (clean) work tree
    assert code == 0 and json.loads(out)["b"] == {"ref": "WORKTREE", "commit": None}


def test_b_defaults_to_the_work_tree_with_uncommitted_changes(repo: Repo) -> None:
    repo.write("groups/new.yaml", GROUPS.split("---\n")[2].replace("static", "extra", 1))
    code, out, _ = run(repo, "HEAD")
    assert code == 1
    assert "→ WORKTREE (work tree)" in out.splitlines()[0]
    added = out.split("\n\n")[1].splitlines()
    assert added == [
        "+ Group extra",
        "  + ConfigSet static 1",
        '      + /root: "/srv"',
        "  + Policy fast",
        "      + name: fast",
        "      + strategy: all-at-once",
        "      + steps: 100%",
        "      + guards: none",
        "      + onFailure: pause",
        "      + approval: auto",
    ]
    assert out.splitlines()[-1] == "0 Groups changed, 1 added, 0 removed, 3 unchanged"


def test_colour_on_a_terminal(repo: Repo) -> None:
    code, out, _ = run(repo, "one", "main", env={"FORCE_COLOR": "1", "TERM": "xterm"})
    assert code == 1
    assert "\x1b[" in out and "~ /port: 8080 → 8081" in out


def test_configset_versions_within_the_history(repo: Repo) -> None:
    code, out, _ = run(repo, "web@1", "web@v2")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("diff web@1 (") and "→ web@v2 (" in lines[0]
    assert lines[2:] == [
        "~ ConfigSet web 1 → 2",
        f'    ~ /motd: "short" → "{"m" * 119}… (302 chars)',
        "    ~ /port: 8080 → 8081",
        '    + /upstreams/[name=b]: {"name": "b", "url": "http://b"}',
    ]
    code, out, _ = run(repo, "db@1", "db@2", "-o", "json")
    doc = json.loads(out)
    assert code == 1 and doc["differs"] is True
    first = git(repo.path, "rev-parse", "one").strip()
    assert doc["a"] == {"ref": "db@1", "commit": first}
    assert [c["path"] for c in doc["configset"]["data"]] == ["/pool"]
    assert doc["configset"]["files"][0]["op"] == "change"
    code, out, _ = run(repo, "web@2", "web@2")
    assert code == 0 and "= ConfigSet web 2" in out


def test_an_unpublished_version_is_found_in_the_work_tree(repo: Repo) -> None:
    repo.write("configsets/web.yaml", WEB1 + WEB2 + web(3, 8081, LONG, "{name: b, url: 'x'}"))
    code, out, _ = run(repo, "web@2", "web@3", "-o", "json")
    doc = json.loads(out)
    assert code == 1 and doc["b"] == {"ref": "web@3", "commit": None}
    assert [(c["op"], c["path"]) for c in doc["configset"]["data"]] == [
        ("remove", "/upstreams/[name=a]"),
        ("change", "/upstreams/[name=b]/url"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "main"), "konorctl diff: error: 'nope': unknown revision"),
        (("main", "no-such-branch"), "konorctl diff: error: 'no-such-branch': unknown revision"),
        (
            ("web@1", "web@7"),
            "konorctl diff: error: web@7: unknown ConfigSet version "
            "(versions in HEAD's history or the work tree: 1, 2)",
        ),
        (
            ("web@1", "cache@1"),
            "konorctl diff: error: cache@1: no ConfigSet named 'cache' in HEAD's history "
            "or the work tree",
        ),
        (
            ("web@1", "main"),
            "konorctl diff: error: compare two revisions or two ConfigSet versions "
            "(name@version), not 'web@1' with 'main'",
        ),
    ],
)
def test_trouble_exits_two_with_one_line(repo: Repo, args: tuple[str, ...], message: str) -> None:
    code, out, err = run(repo, *args)
    assert (code, out, err.strip()) == (2, "", message)


def test_a_side_that_does_not_validate_is_trouble(repo: Repo) -> None:
    repo.write("groups.yaml", GROUPS.replace("DB", "db@9"))
    code, _, err = run(repo, "HEAD")
    assert code == 2
    assert err.startswith("konorctl diff: error: WORKTREE: the config repo has 1 error(s)")
    assert f"konorctl validate {repo.path}`" in err


def test_a_bare_repository_has_revisions_but_no_work_tree(repo: Repo, tmp_path: Path) -> None:
    bare = make_bare(tmp_path / "config.git")
    git(repo.path, "push", "--quiet", str(bare), "main", "one")
    code, out, _ = run(bare, "one", "main")
    assert code == 1 and "~ Group web" in out
    code, _, err = run(bare, "main")
    assert code == 2 and "is a bare repository: it has no WORKTREE" in err
    code, _, err = run(tmp_path / "missing", "main")
    assert code == 2 and "no such directory" in err


def test_help_explains_the_arguments_and_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["diff", "--help"])
    assert result.exit_code == 0
    assert "WORKTREE" in result.output and "name@version" in result.output
    assert "konorctl diff checkout-api@1 checkout-api@2" in result.output
    assert "0 no difference, 1 differences, 2 trouble" in result.output
