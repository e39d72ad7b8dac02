"""Behaviour of the UDS server beyond the vectors: socket file, peers, back-pressure."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from konorkestra.agent.peers import parse_start_time, read_start_time
from konorkestra.agent.uds import SocketInUseError, UdsServer
from konorkestra.testing.lineclient import LineClient
from konorkestra.testing.memstate import InMemoryState, Snapshot
from konorkestra.testing.serverthread import ServerThread

CONFIG = {"checkout-api": {"timeoutMs": 800}}


def _state() -> InMemoryState:
    state = InMemoryState()
    state.put("checkout", release_id="checkout-1", sequence=1, config=CONFIG)
    return state


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(_state(), tmp_path / "agent.sock", node="node-a") as server:
        yield server


def _publish(srv: ServerThread, seq: int, config: object = CONFIG) -> None:
    srv.apply(
        {
            "publish": {
                "group": "checkout",
                "release": f"checkout-{seq}",
                "sequence": seq,
                "config": config,
            }
        }
    )


# -- the socket file -----------------------------------------------------------------


def test_socket_is_0660_and_umask_is_restored(srv: ServerThread) -> None:
    mode = os.stat(srv.server.path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660
    old = os.umask(0o022)
    os.umask(old)
    assert old != 0o177


def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: a crashed agent's leftover
    with ServerThread(_state(), path), LineClient(path) as client:
        assert client.call({"id": 1, "op": "get", "group": "checkout"})["ok"] is True
    assert not path.exists()


def test_live_socket_is_not_stolen(srv: ServerThread) -> None:
    second = ServerThread(_state(), srv.server.path)
    with pytest.raises(SocketInUseError):
        second.start()
    with LineClient(srv.server.path) as client:
        assert client.call({"id": 1, "op": "get", "group": "checkout"})["ok"] is True


def test_regular_file_at_socket_path_is_never_removed(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    path.write_text("precious")
    with pytest.raises(FileExistsError):
        ServerThread(_state(), path).start()
    assert path.read_text() == "precious"


def test_close_leaves_a_replaced_path_alone(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    server = ServerThread(_state(), path).start()
    path.unlink()
    path.write_text("someone else's")
    server.stop()
    assert path.read_text() == "someone else's"


# -- peers and visibility --------------------------------------------------------------

_CHILD = """
import sys
from konorkestra.testing.lineclient import LineClient
c = LineClient(sys.argv[1])
print(c.call({"id": 1, "op": "hello", "protocol": 1, "client": {"name": "child-app"}})["ok"])
print(c.call({"id": 2, "op": "get", "group": "checkout"})["release"])
print(c.call({"id": 3, "op": "ack", "group": "checkout", "release": "checkout-1",
              "status": "failed", "error": "ValueError: boom"})["ok"], flush=True)
sys.stdin.read()
"""


def test_peer_identity_and_visibility_of_a_separate_process(srv: ServerThread) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(srv.server.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert [child.stdout.readline().strip() for _ in range(3)] == ["True", "checkout-1", "True"]
        views = srv.call(srv.server.visibility.snapshot)
        (view,) = [v for v in views if v.peer.pid == child.pid]
        assert view.peer.uid == os.getuid() and view.peer.gid == os.getgid()
        assert view.peer.exe == os.path.realpath(sys.executable)
        assert view.peer.start_time == read_start_time(child.pid)
        assert view.client == "child-app"
        assert (view.release, view.sequence) == ("checkout-1", 1)
        assert (view.ack_status, view.ack_error) == ("failed", "ValueError: boom")
        kinds = [e.kind for e in srv.call(srv.server.visibility.drain).events]
        assert kinds == ["delivery", "ack"]
    finally:
        child.communicate("", timeout=10)


def test_start_time_parsing_survives_odd_process_names() -> None:
    fields = " ".join(str(n) for n in range(3, 53))
    assert parse_start_time(f"123 (a) (b c) {fields}".encode()) == 22
    assert parse_start_time(b"garbage") is None
    assert read_start_time(os.getpid()) is not None
    assert read_start_time(-1) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")
def test_uid_allow_list_and_socket_mode() -> None:
    # pytest's tmp_path sits under a 0700 directory: nobody could not even reach it.
    tmp_path = Path(tempfile.mkdtemp(prefix="konork-uds-", dir="/tmp"))
    os.chmod(tmp_path, 0o755)
    try:
        _check_uid_rules(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def _check_uid_rules(tmp_path: Path) -> None:

    def as_nobody(path: Path) -> str:
        """Connect as uid 65534 in a forked child; return its first line or errno name."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: no Python-level cleanup, just report and leave
            try:
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(str(path))
                out = s.makefile("rb").readline().decode() or "EOF"
            except OSError as exc:
                out = type(exc).__name__
            os.write(w, out.encode())
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
        os.waitpid(pid, 0)
        return out

    with ServerThread(_state(), tmp_path / "a.sock"):
        assert as_nobody(tmp_path / "a.sock") == "PermissionError"  # mode 0660, root-owned
    with ServerThread(_state(), tmp_path / "b.sock", mode=0o666, allow_uids={0}) as srv:
        reply = json.loads(as_nobody(tmp_path / "b.sock"))
        assert reply["id"] is None and reply["error"]["code"] == "forbidden"
        with LineClient(srv.server.path) as root_client:
            assert root_client.call({"id": 1, "op": "get", "group": "checkout"})["ok"]


# -- watches, publish, back-pressure -----------------------------------------------------


def test_publish_from_another_thread_and_no_duplicate_events(srv: ServerThread) -> None:
    with LineClient(srv.server.path) as client:
        assert client.call({"id": "w", "op": "watch", "group": "checkout", "after": 1})["ok"]
        srv.state.put("checkout", release_id="checkout-2", sequence=2, config=CONFIG)
        worker = threading.Thread(target=srv.server.publish_threadsafe, args=("checkout",))
        worker.start()
        worker.join()
        srv.call(lambda: srv.server.publish("checkout"))  # same release again: no event
        srv.state.set_stale("checkout", True)
        srv.server.set_stale_threadsafe("checkout", True)
        event = client.recv()
        assert (event["event"], event["sequence"], event["stale"]) == ("release", 2, False)
        assert client.recv() == {
            "event": "status",
            "watch": "w",
            "group": "checkout",
            "stale": True,
        }
        assert client.call({"id": 9, "op": "get", "group": "checkout"})["stale"] is True


def test_slow_reader_is_dropped_and_others_keep_up(tmp_path: Path) -> None:
    path = tmp_path / "agent.sock"
    with ServerThread(_state(), path, max_pending_bytes=256 * 1024) as srv:
        slow, fast = LineClient(path), LineClient(path)
        for c in (slow, fast):
            assert c.call({"id": 1, "op": "watch", "group": "checkout", "after": 1})["ok"]
        big = {"blob": {"data": "x" * 64 * 1024}}
        for seq in range(2, 80):
            _publish(srv, seq, big)
            assert fast.recv()["sequence"] == seq  # the fast reader sees every release
        assert srv.call(lambda: len(srv.server.connections)) == 1
        received = b""  # the drop cuts the stream, possibly mid-line
        try:
            while chunk := slow.sock.recv(1 << 20):
                received += chunk
        except ConnectionResetError:
            pass
        assert received.count(b"\n") < 78  # it did not get everything: it was dropped
        slow.close()
        assert fast.call({"id": 2, "op": "get", "group": "checkout"})["sequence"] == 79
        fast.close()


def test_half_closed_client_still_gets_its_answers(srv: ServerThread) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(srv.server.path))
    sock.sendall(b'{"id":1,"op":"get","group":"checkout"}\n{"id":2,"op":"get"')
    sock.shutdown(socket.SHUT_WR)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    lines = data.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["id"] == 1


class _Broken:
    def current(self, group: str) -> Snapshot | None:
        if group == "boom":
            raise RuntimeError("store unreadable")
        return None

    def stale(self, group: str) -> bool:
        return False


def test_failing_state_source_gives_internal_error_and_server_survives(tmp_path: Path) -> None:
    import asyncio

    async def run() -> list[dict[str, object]]:
        server = UdsServer(_Broken(), tmp_path / "agent.sock")
        await server.start()
        try:
            reader, writer = await asyncio.open_unix_connection(str(server.path))
            writer.write(b'{"id":1,"op":"get","group":"boom"}\n{"id":2,"op":"get","group":"x"}\n')
            server.publish("boom")  # no watchers: nothing to do, must not raise
            out = [json.loads(await asyncio.wait_for(reader.readline(), 5)) for _ in range(2)]
            writer.close()
            return out
        finally:
            await server.close()

    first, second = asyncio.run(run())
    assert first["error"] == {"code": "internal", "message": "RuntimeError: store unreadable"}
    assert second["error"]["code"] == "not_found"  # type: ignore[index]


def test_read_only_configs_from_a_store_are_served(tmp_path: Path) -> None:
    from types import MappingProxyType

    state = InMemoryState()
    frozen = MappingProxyType({"api": MappingProxyType({"limits": (1, 2)})})
    state.put("checkout", release_id="checkout-1", sequence=1, config=frozen, digest="sha256:x")
    with ServerThread(state, tmp_path / "a.sock") as srv, LineClient(srv.server.path) as c:
        reply = c.call({"id": 1, "op": "get", "group": "checkout"})
    assert reply["config"] == {"api": {"limits": [1, 2]}}
