package io.konorkestra.sdk;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.konorkestra.sdk.internal.AgentSession;
import io.konorkestra.sdk.internal.Backoff;
import io.konorkestra.sdk.internal.DiskReleases;
import io.konorkestra.sdk.internal.Locations;
import io.konorkestra.sdk.internal.Wire;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * A connection to the Konorkestra agent on this node; see the package documentation for an
 * example. Thread-safe; create one per process and {@link #close()} it on shutdown.
 *
 * <p>One background thread owns the connection: it connects (retrying with jittered
 * exponential back-off), keeps one protocol watch per group the application has used, and
 * updates an in-process snapshot per group, so {@link #getConfig} is a map lookup after the
 * first call. On reconnect each watch resumes with {@code after} = the last sequence
 * received, so no release is missed or seen twice. Listeners run on one callback thread,
 * in release order ({@link Listeners}); the snapshot rules are {@link Group}'s.
 */
public final class KonorkestraClient implements AutoCloseable {
    /** The SDK version sent in {@code hello}. */
    public static final String VERSION = "0.1.0";

    private static final System.Logger LOG = System.getLogger(KonorkestraClient.class.getName());

    private final Locations locations;
    private final String name;
    private final Duration timeout;
    private final Backoff backoff;
    private final Map<String, Group> groups = new ConcurrentHashMap<>();
    private final Listeners listeners = new Listeners(this::session);
    private final Thread supervisor;
    private final CountDownLatch firstAttempt = new CountDownLatch(1);
    private volatile AgentSession session;
    private volatile boolean closed;

    private KonorkestraClient(Builder b) {
        this.locations = Locations.resolve(b.socket, b.dataDir);
        this.name = b.name;
        this.timeout = b.requestTimeout;
        this.backoff = new Backoff(b.backoffInitial, b.backoffMax);
        this.supervisor = new Thread(this::superviseConnection, "konorkestra-agent");
        this.supervisor.setDaemon(true);
    }

    /** Connects to the agent at {@code KONORKESTRA_SOCKET} or the default path. */
    public static KonorkestraClient connect() {
        return builder().connect();
    }

    /** Connects to the agent listening on {@code socket}. */
    public static KonorkestraClient connect(Path socket) {
        return builder().socket(socket).connect();
    }

    /** Options: socket path, data directory, client name, timeouts. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The current config of {@code group}. The first call for a group asks the agent (or,
     * when it is unreachable, reads the last committed release from disk, {@code source()
     * == "disk"}) and starts watching the group; later calls return the in-process snapshot.
     *
     * @throws ConfigNotFoundException when neither the agent nor the disk has a release
     */
    public Config getConfig(String group) {
        ensureOpen();
        Group g = groups.get(group);
        Config cfg = g == null ? null : g.current();
        return cfg != null ? cfg : load(group);
    }

    /** Like {@link #onChange} for a listener that needs only the new config. */
    public Subscription watch(String group, Consumer<Config> listener) {
        return watch(group, listener, null);
    }

    /** Like {@link #onChange(String, ChangeListener, Config)} for a listener that needs only the new config. */
    public Subscription watch(String group, Consumer<Config> listener, Config since) {
        Objects.requireNonNull(listener, "listener");
        return onChange(group, (next, previous) -> listener.accept(next), since);
    }

    /**
     * Calls {@code listener(next, previous)} once with every release of {@code group} newer
     * than the client's snapshot when it registers (when the client has none yet, the first
     * release it receives counts as new), in sequence order, never concurrently, on the
     * callback thread. {@code previous} is the config this listener last applied (initially
     * the snapshot, or {@code null}). Returning acks the release {@code applied}; throwing
     * acks it {@code failed} with {@code "ExceptionClass: message"} and keeps {@code previous}
     * for the next call.
     */
    public Subscription onChange(String group, ChangeListener listener) {
        return onChange(group, listener, null);
    }

    /**
     * Like {@link #onChange(String, ChangeListener)}, counting from {@code since}, a config of
     * {@code group} the application already holds (from {@link #getConfig}), instead of the
     * snapshot at registration: a release that arrived in between is delivered first, on the
     * callback thread, with {@code previous} = {@code since}, then later ones in order. When
     * {@code since} is the current release (or {@code null}) this is the plain
     * {@code onChange}. The catch-up call joins that release's ack if it is not handed to the
     * listeners yet; otherwise the release was acked already and a throw is only logged.
     *
     * @throws IllegalArgumentException when {@code since} is a config of another group
     */
    public Subscription onChange(String group, ChangeListener listener, Config since) {
        Objects.requireNonNull(listener, "listener");
        if (since != null && !since.group().equals(group)) {
            throw new IllegalArgumentException("since is a config of group " + since.group() + ", not " + group);
        }
        ensureOpen();
        Group g = track(group);
        Subscription sub = g.add(listener, since);
        AgentSession s = session;
        if (s != null) {
            subscribe(g, s, true);
        }
        return sub;
    }

    /**
     * Sends an application health signal used by rollout guards, e.g. {@code error_rate},
     * without waiting for the answer. Returns {@code false} (the value is dropped) when the
     * agent is unreachable.
     */
    public boolean report(String group, String metric, double value) {
        ensureOpen();
        if (!Double.isFinite(value)) {
            throw new IllegalArgumentException("metric value must be finite, got " + value);
        }
        AgentSession s = session;
        if (s == null) {
            return false;
        }
        s.request(Wire.op("report").put("group", group).put("metric", metric).put("value", value))
                .whenComplete((r, error) -> {
                    if (error instanceof AgentErrorException e) {
                        LOG.log(Level.WARNING, "the agent refused report {0}: {1}", metric, e.getMessage());
                    }
                });
        return true;
    }

    /** Whether the client currently has a connection to the agent. */
    public boolean isConnected() {
        return session != null;
    }

    /** Stops the background thread and the callback thread; later calls throw {@link IllegalStateException}. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        AgentSession s = session;
        if (s != null) {
            s.close();
        }
        supervisor.interrupt();
        try {
            listeners.close(timeout);
            if (Thread.currentThread() != supervisor) {
                supervisor.join(timeout.toMillis());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // -- reading ------------------------------------------------------------------------

    /** First read of a group: ask the agent, else the disk; either way start watching it. */
    private Config load(String group) {
        Group g = track(group);
        AgentSession s = session;
        if (s != null) {
            try {
                JsonNode response = s.call(Wire.op("get").put("group", group), timeout);
                g.offer(Config.fromRelease(group, response, Config.SOURCE_AGENT));
                subscribe(g, s, false);
                return g.current();
            } catch (AgentErrorException e) {
                subscribe(g, s, false); // a first release will still arrive
                if ("not_found".equals(e.code())) {
                    throw new ConfigNotFoundException(group,
                            "the agent has no committed release of group '" + group + "' on this node");
                }
                throw e;
            } catch (AgentUnavailableException e) {
                LOG.log(Level.WARNING, "agent unreachable, reading group {0} from disk: {1}", group, e.getMessage());
            }
        }
        Optional<ObjectNode> doc = DiskReleases.read(locations.dataDir(), group);
        if (doc.isEmpty()) {
            throw new AgentUnavailableException("the agent at " + locations.socket() + " is unreachable and "
                    + DiskReleases.file(locations.dataDir(), group) + " holds no release of group '" + group + "'");
        }
        LOG.log(Level.WARNING, "serving group {0} from disk: the agent is unreachable", group);
        g.offer(Config.fromRelease(group, doc.get(), Config.SOURCE_DISK));
        AgentSession now = session; // connected meanwhile: go live
        if (now != null) {
            subscribe(g, now, true);
        }
        return g.current();
    }

    private Group track(String group) {
        Objects.requireNonNull(group, "group");
        return groups.computeIfAbsent(group, n -> new Group(n, listeners));
    }

    // -- the connection -----------------------------------------------------------------

    private void superviseConnection() {
        while (!closed) {
            AgentSession s;
            try {
                s = AgentSession.open(locations.socket());
            } catch (IOException e) {
                LOG.log(Level.DEBUG, "agent at {0} unreachable: {1}", locations.socket(), e.getMessage());
                firstAttempt.countDown();
                pause();
                continue;
            }
            session = s;
            if (closed) {
                s.close();
                break;
            }
            try {
                hello(s);
                listeners.flushAcks();
                for (Group g : groups.values()) {
                    subscribe(g, s, true);
                }
                firstAttempt.countDown();
                s.run(this::onEvent);
            } catch (IOException e) {
                LOG.log(Level.DEBUG, "agent connection failed: {0}", e.getMessage());
            } catch (RuntimeException e) { // a bug must not end the thread: start over
                LOG.log(Level.ERROR, "unexpected error on the agent connection", e);
            } finally {
                session = null;
                s.close();
            }
            if (!closed) {
                LOG.log(Level.INFO, "lost the agent at {0}; reconnecting", locations.socket());
                pause();
            }
        }
        firstAttempt.countDown();
    }

    private void hello(AgentSession s) {
        ObjectNode hello = Wire.op("hello").put("protocol", 1);
        hello.putObject("client").put("name", name).put("lang", "java").put("version", VERSION);
        s.request(hello).whenComplete((response, error) -> {
            if (response != null) {
                backoff.reset();
            } else if (error instanceof AgentErrorException e) {
                LOG.log(Level.ERROR, "the agent refused hello: {0}", e.getMessage());
            }
        });
    }

    private void pause() {
        try {
            Thread.sleep(backoff.next().toMillis());
        } catch (InterruptedException e) {
            if (!closed) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Starts the protocol watch of {@code g} on {@code s}, resuming after its snapshot. With
     * {@code refresh}, a {@code get} first updates the snapshot's stale flag and source (a
     * disk snapshot turns live; a newer release is delivered like an event).
     */
    private void subscribe(Group g, AgentSession s, boolean refresh) {
        if (!g.claim(s)) {
            return;
        }
        Config cur = g.current();
        if (refresh && cur != null) {
            s.request(Wire.op("get").put("group", g.name)).thenAccept(
                    r -> g.offer(Config.fromRelease(g.name, r, Config.SOURCE_AGENT)));  // errors: the watch still runs
        }
        s.request(Wire.op("watch").put("group", g.name).put("after", cur == null ? 0 : cur.sequence()))
                .whenComplete((r, error) -> {
                    if (error instanceof AgentErrorException e) {
                        LOG.log(Level.WARNING, "watching group {0} failed: {1}", g.name, e.getMessage());
                    }
                });
    }

    private void onEvent(JsonNode event) {
        Group g = groups.get(event.path("group").asText(""));
        if (g == null) {
            return;
        }
        switch (event.path("event").asText("")) {
            case "release" -> {
                try {
                    g.offer(Config.fromRelease(g.name, event, Config.SOURCE_AGENT));
                } catch (IllegalArgumentException e) {
                    LOG.log(Level.WARNING, "ignoring a malformed release event: {0}", e.getMessage());
                }
            }
            case "status" -> g.setStale(event.path("stale").asBoolean(false));
            default -> { } // unknown events are ignored (forward compatibility)
        }
    }

    private AgentSession session() {
        return session;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("the Konorkestra client is closed");
        }
    }

    private KonorkestraClient start() {
        supervisor.start();
        try {
            firstAttempt.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return this;
    }

    /** Options for {@link KonorkestraClient}; every one has a default. */
    public static final class Builder {
        private Path socket;
        private Path dataDir;
        private String name = defaultName();
        private Duration requestTimeout = Duration.ofSeconds(5);
        private Duration backoffInitial = Duration.ofMillis(50);
        private Duration backoffMax = Duration.ofSeconds(2);

        private Builder() {}

        /** The agent's socket; default {@code KONORKESTRA_SOCKET}, then the protocol's defaults. */
        public Builder socket(Path socket) {
            this.socket = socket;
            return this;
        }

        /** The agent's data directory for the on-disk fallback; default {@code KONORKESTRA_DATA}, ... */
        public Builder dataDir(Path dataDir) {
            this.dataDir = dataDir;
            return this;
        }

        /** The name this application reports in {@code hello}; default the main class or jar. */
        public Builder name(String name) {
            this.name = Objects.requireNonNull(name, "name");
            return this;
        }

        /** How long a request waits for the agent's answer; default 5 s. */
        public Builder requestTimeout(Duration timeout) {
            this.requestTimeout = Objects.requireNonNull(timeout, "timeout");
            return this;
        }

        /** Reconnect delays: jittered, doubling from {@code initial} up to {@code max}; default 50 ms to 2 s. */
        public Builder reconnectBackoff(Duration initial, Duration max) {
            this.backoffInitial = Objects.requireNonNull(initial, "initial");
            this.backoffMax = Objects.requireNonNull(max, "max");
            return this;
        }

        /**
         * Creates the client and tries the agent once; when it is unreachable the client
         * still starts (serving configs from disk) and keeps retrying in the background.
         */
        public KonorkestraClient connect() {
            return new KonorkestraClient(this).start();
        }

        private static String defaultName() {
            String command = System.getProperty("sun.java.command", "").trim();
            return command.isEmpty() ? "java" : command.split("\\s+", 2)[0];
        }
    }
}
