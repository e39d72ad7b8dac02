package io.konorkestra.sdk;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.konorkestra.sdk.internal.Wire;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

/**
 * An in-test agent on a real Unix socket: serves get/watch/ack/report/hello from a
 * {@link State} that outlives restarts, and records every request it receives.
 */
final class FakeAgent implements AutoCloseable {
    /** Committed releases per group; shared across agent restarts. */
    static final class State {
        final Map<String, ObjectNode> releases = new ConcurrentHashMap<>();
        final List<JsonNode> received = new CopyOnWriteArrayList<>();
        volatile FakeAgent running;

        /** Commits a release {@code <group>-<seq>} with {@code {"checkout-api": {"timeoutMs": timeoutMs}}}. */
        void publish(String group, long sequence, int timeoutMs) {
            ObjectNode config = Wire.MAPPER.createObjectNode();
            config.putObject("checkout-api").put("timeoutMs", timeoutMs);
            publish(group, sequence, config);
        }

        /** Commits a release {@code <group>-<seq>} with {@code config}. */
        void publish(String group, long sequence, ObjectNode config) {
            ObjectNode release = Wire.MAPPER.createObjectNode().put("group", group)
                    .put("release", group + "-" + sequence).put("sequence", sequence)
                    .put("digest", "sha256:" + "0".repeat(63) + (sequence % 10)).put("stale", false);
            release.set("config", config);
            releases.put(group, release);
            FakeAgent agent = running;
            if (agent != null) {
                agent.notifyWatchers(group, "release");
            }
        }

        void setStale(String group, boolean stale) {
            releases.get(group).put("stale", stale);
            FakeAgent agent = running;
            if (agent != null) {
                agent.notifyWatchers(group, "status");
            }
        }

        /** Requests received with {@code op}, in arrival order. */
        List<JsonNode> requests(String op) {
            List<JsonNode> out = new ArrayList<>();
            for (JsonNode r : received) {
                if (op.equals(r.path("op").asText())) {
                    out.add(r);
                }
            }
            return out;
        }

        /** Waits until {@code count} requests match; fails the test after 5 s. */
        List<JsonNode> await(String op, int count, Predicate<JsonNode> filter) throws InterruptedException {
            long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (true) {
                List<JsonNode> matching = requests(op).stream().filter(filter).toList();
                if (matching.size() >= count || System.nanoTime() > deadline) {
                    return matching;
                }
                Thread.sleep(5);
            }
        }
    }

    /** One protocol watch; like the real agent it never sends a sequence twice. */
    private static final class Watch {
        final Conn conn;
        final long id;
        final String group;
        long sent;

        Watch(Conn conn, long id, String group, long after) {
            this.conn = conn;
            this.id = id;
            this.group = group;
            this.sent = after;
        }

        void offer(ObjectNode release, String kind) {
            long sequence = release.path("sequence").asLong();
            if (kind.equals("release")) {
                if (sequence <= sent) {
                    return;
                }
                sent = sequence;
            }
            conn.send(event(this, release, kind));
        }
    }

    private final class Conn {
        final SocketChannel channel;

        Conn(SocketChannel channel) {
            this.channel = channel;
        }

        synchronized void send(JsonNode message) {
            byte[] bytes = (message.toString() + "\n").getBytes(StandardCharsets.UTF_8);
            ByteBuffer buf = ByteBuffer.wrap(bytes);
            try {
                while (buf.hasRemaining()) {
                    channel.write(buf);
                }
            } catch (IOException e) {
                // the client went away; its reader thread will notice
            }
        }
    }

    private final State state;
    private final Path path;
    private final ServerSocketChannel server;
    private final List<Conn> conns = new CopyOnWriteArrayList<>();
    private final List<Watch> watches = new CopyOnWriteArrayList<>();

    private FakeAgent(State state, Path path) throws IOException {
        this.state = state;
        this.path = path;
        Files.deleteIfExists(path);
        this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        Thread acceptor = new Thread(this::accept, "fake-agent-accept");
        acceptor.setDaemon(true);
        acceptor.start();
        state.running = this;
    }

    static FakeAgent start(State state, Path path) throws IOException {
        return new FakeAgent(state, path);
    }

    int connections() {
        return conns.size();
    }

    private void accept() {
        while (server.isOpen()) {
            try {
                Conn conn = new Conn(server.accept());
                conns.add(conn);
                Thread reader = new Thread(() -> serve(conn), "fake-agent-conn");
                reader.setDaemon(true);
                reader.start();
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Conn conn) {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        try {
            while (conn.channel.read(buf) >= 0) {
                buf.flip();
                while (buf.hasRemaining()) {
                    byte b = buf.get();
                    if (b != '\n') {
                        line.write(b);
                        continue;
                    }
                    handle(conn, Wire.MAPPER.readTree(line.toByteArray()));
                    line.reset();
                }
                buf.clear();
            }
        } catch (IOException e) {
            // closed by either side
        } finally {
            conns.remove(conn);
            watches.removeIf(w -> w.conn == conn);
            try {
                conn.channel.close();
            } catch (IOException ignored) {
                // already closed
            }
        }
    }

    /** Answers {@code request}, then records it: a recorded watch is already registered. */
    private void handle(Conn conn, JsonNode request) {
        ObjectNode ok = Wire.MAPPER.createObjectNode().set("id", request.get("id"));
        ok.put("ok", true);
        String group = request.path("group").asText();
        switch (request.path("op").asText()) {
            case "get" -> {
                ObjectNode release = state.releases.get(group);
                conn.send(release == null ? notFound(request) : ok.setAll(release.deepCopy()));
            }
            case "watch" -> {
                Watch watch = new Watch(conn, request.path("id").asLong(), group, request.path("after").asLong(0));
                synchronized (this) {
                    conn.send(ok.put("group", group));
                    watches.add(watch);
                    ObjectNode release = state.releases.get(group);
                    if (release != null) {
                        watch.offer(release, "release");
                    }
                }
            }
            default -> conn.send(ok);
        }
        state.received.add(request);
    }

    private synchronized void notifyWatchers(String group, String kind) {
        ObjectNode release = state.releases.get(group);
        for (Watch w : watches) {
            if (w.group.equals(group)) {
                w.offer(release, kind);
            }
        }
    }

    private static ObjectNode event(Watch w, ObjectNode release, String kind) {
        ObjectNode event = Wire.MAPPER.createObjectNode().put("event", kind).put("watch", w.id);
        if (kind.equals("release")) {
            event.setAll(release.deepCopy());
        } else {
            event.put("group", w.group).put("stale", release.path("stale").asBoolean());
        }
        return event;
    }

    private static ObjectNode notFound(JsonNode request) {
        ObjectNode error = Wire.MAPPER.createObjectNode().set("id", request.get("id"));
        error.put("ok", false).putObject("error").put("code", "not_found").put("message", "no release");
        return error;
    }

    /** Stops accepting, drops every connection, removes the socket file. */
    @Override
    public void close() throws IOException {
        state.running = null;
        server.close();
        for (Conn c : conns) {
            c.channel.close();
        }
        Files.deleteIfExists(path);
    }
}
