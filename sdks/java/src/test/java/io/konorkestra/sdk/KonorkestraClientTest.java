package io.konorkestra.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The client against the shared fake agent ({@link TestAgent}) over a real Unix socket. */
class KonorkestraClientTest {
    @TempDir
    Path dir;

    private Path socket;
    private TestAgent agent;
    private final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        agent = TestAgent.launch(dir); // down until startAgent()
        socket = agent.socket();
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        if (agent != null) {
            agent.close(); // ends the process
        }
    }

    private KonorkestraClient client() {
        KonorkestraClient client = KonorkestraClient.builder().socket(socket).dataDir(dir)
                .name("client-test").requestTimeout(Duration.ofSeconds(2))
                .reconnectBackoff(Duration.ofMillis(10), Duration.ofMillis(50)).connect();
        toClose.add(client);
        return client;
    }

    private void startAgent() throws Exception {
        agent.start();
    }

    @Test
    void getConfigAsksOnceThenServesTheSnapshot() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();

        Config cfg = client.getConfig("checkout");
        assertEquals("checkout-3", cfg.release());
        assertEquals(3, cfg.sequence());
        assertEquals("agent", cfg.source());
        assertFalse(cfg.stale());
        assertEquals(800, cfg.get("checkout-api").path("timeoutMs").asInt());
        for (int i = 0; i < 1000; i++) {
            assertSame(cfg, client.getConfig("checkout"));
        }
        assertEquals(1, agent.requests("get").size());
        assertEquals(3, agent.await("watch", 1, r -> true).get(0).path("after").asLong());
        assertEquals("java", agent.requests("hello").get(0).path("client").path("lang").asText());
        JsonNode ack = agent.await("ack", 1, r -> true).get(0); // received and read: applied
        assertEquals("checkout-3", ack.path("release").asText());
        assertEquals("applied", ack.path("status").asText());
    }

    @Test
    void manyThreadsCanReadAGroupForTheFirstTimeAtOnce() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(32);
        try {
            List<java.util.concurrent.Callable<Long>> reads = java.util.Collections.nCopies(32,
                    () -> client.getConfig("checkout").sequence());
            for (java.util.concurrent.Future<Long> read : pool.invokeAll(reads)) {
                assertEquals(3L, read.get());
            }
        } finally {
            pool.shutdown();
        }
        assertEquals(1, agent.await("watch", 1, r -> true).size());
        // A sentinel instead of a pause: the agent handles one connection's requests in order,
        // so a second watch sent by those reads is recorded before this report.
        assertTrue(client.report("checkout", "sentinel", 1));
        agent.await("report", 1, r -> true);
        assertEquals(1, agent.requests("watch").size()); // one protocol watch per group
    }

    @Test
    void configCopiesCannotChangeTheSnapshot() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();

        ((ObjectNode) client.getConfig("checkout").get("checkout-api")).put("timeoutMs", 1);
        client.getConfig("checkout").asMap("checkout-api").put("timeoutMs", 2);
        assertEquals(800, client.getConfig("checkout").get("checkout-api").path("timeoutMs").asInt());
    }

    @Test
    void unknownGroupIsNotFound() throws Exception {
        startAgent();
        KonorkestraClient client = client();
        ConfigNotFoundException e = assertThrows(ConfigNotFoundException.class, () -> client.getConfig("inventory"));
        assertEquals("inventory", e.group());
        agent.publish("inventory", 1, 100); // the group stays watched: its first release arrives
        waitFor(() -> {
            try {
                return client.getConfig("inventory").sequence() == 1;
            } catch (ConfigNotFoundException notYet) {
                return false;
            }
        });
    }

    @Test
    void onChangeIsCalledOncePerReleaseInOrderNeverConcurrently() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        client.getConfig("checkout");
        List<String> calls = new CopyOnWriteArrayList<>();
        AtomicInteger inside = new AtomicInteger();
        AtomicInteger overlap = new AtomicInteger();
        client.onChange("checkout", (next, previous) -> {
            if (inside.incrementAndGet() > 1) {
                overlap.incrementAndGet();
            }
            Thread.sleep(20);
            calls.add(previous.sequence() + "->" + next.sequence());
            inside.decrementAndGet();
        });
        agent.await("watch", 1, r -> true);

        for (long seq = 4; seq <= 7; seq++) {
            agent.publish("checkout", seq, (int) seq * 100);
        }

        List<JsonNode> acks = agent.await("ack", 4, r -> !r.path("release").asText().equals("checkout-3"));
        assertEquals(List.of("3->4", "4->5", "5->6", "6->7"), calls);
        assertEquals(0, overlap.get());
        assertEquals(List.of("checkout-4", "checkout-5", "checkout-6", "checkout-7"),
                acks.stream().map(a -> a.path("release").asText()).toList());
        assertTrue(acks.stream().allMatch(a -> a.path("status").asText().equals("applied")));
        assertEquals(7, client.getConfig("checkout").sequence());
    }

    @Test
    void aThrowingListenerAcksFailedAndKeepsItsOldConfig() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        client.getConfig("checkout");
        BlockingQueue<String> calls = new LinkedBlockingQueue<>();
        client.onChange("checkout", (next, previous) -> {
            calls.add(previous.release() + "->" + next.release());
            if (next.get("checkout-api").path("timeoutMs").asInt() <= 0) {
                throw new IllegalArgumentException("timeoutMs must be > 0");
            }
        });
        agent.await("watch", 1, r -> true);

        agent.publish("checkout", 4, 0);
        agent.publish("checkout", 5, 900);

        assertEquals("checkout-3->checkout-4", calls.poll(5, TimeUnit.SECONDS));
        assertEquals("checkout-3->checkout-5", calls.poll(5, TimeUnit.SECONDS));
        List<JsonNode> acks = agent.await("ack", 2, r -> !r.path("release").asText().equals("checkout-3"));
        assertEquals("failed", acks.get(0).path("status").asText());
        assertEquals("IllegalArgumentException: timeoutMs must be > 0", acks.get(0).path("error").asText());
        assertEquals("applied", acks.get(1).path("status").asText());
        assertTrue(acks.get(1).path("error").isMissingNode());
        assertEquals(5, client.getConfig("checkout").sequence()); // the snapshot follows the agent
    }

    @Test
    void aSubscriptionStartsFromTheSnapshotAndTracksWhatItsListenerApplied() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        client.getConfig("checkout");
        Subscription sub = client.onChange("checkout", (next, previous) -> {
            if (next.sequence() == 5) {
                throw new IllegalStateException("no");
            }
        });
        assertEquals(3, sub.current().sequence());
        agent.await("watch", 1, r -> true);
        agent.publish("checkout", 4, 900);
        agent.publish("checkout", 5, 950);
        agent.await("ack", 2, r -> !r.path("release").asText().equals("checkout-3"));
        assertEquals(4, sub.current().sequence());
    }

    @Test
    void aWatchOfAnUnreadGroupSeesTheFirstReleaseReceived() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        BlockingQueue<Long> seen = new LinkedBlockingQueue<>();
        Subscription sub = client.watch("checkout", cfg -> seen.add(cfg.sequence()));
        assertEquals(3L, seen.poll(5, TimeUnit.SECONDS));
        agent.publish("checkout", 4, 900);
        assertEquals(4L, seen.poll(5, TimeUnit.SECONDS));
        assertEquals(2, agent.await("ack", 2, r -> true).size());

        sub.close();
        agent.publish("checkout", 5, 900);
        waitFor(() -> client.getConfig("checkout").sequence() == 5);
        assertNull(seen.poll(100, TimeUnit.MILLISECONDS));
    }

    @Test
    void aWatchBeforeTheFirstReleaseGetsIt() throws Exception {
        startAgent();
        KonorkestraClient client = client();
        BlockingQueue<String> calls = new LinkedBlockingQueue<>();
        client.onChange("checkout", (next, previous) -> calls.add(previous + "->" + next.release()));
        agent.await("watch", 1, r -> true);
        agent.publish("checkout", 1, 800);
        assertEquals("null->checkout-1", calls.poll(5, TimeUnit.SECONDS));
    }

    @Test
    void reconnectResumesAfterTheLastSequenceWithoutMissOrDuplicate() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        client.getConfig("checkout");
        List<Long> seen = new CopyOnWriteArrayList<>();
        client.onChange("checkout", (next, previous) -> seen.add(next.sequence()));
        agent.await("watch", 1, r -> true);
        agent.publish("checkout", 4, 900);
        waitFor(() -> seen.size() == 1);

        agent.stop();
        waitFor(() -> !client.isConnected());
        agent.publish("checkout", 5, 950); // committed while the client is away
        startAgent();

        List<JsonNode> watches = agent.await("watch", 2, r -> true);
        assertEquals(4, watches.get(1).path("after").asLong());
        waitFor(() -> seen.size() == 2);
        agent.publish("checkout", 6, 990);
        waitFor(() -> seen.size() == 3);
        agent.publish("checkout", 7, 999); // a sentinel: listeners run in order, a duplicate shows before it
        waitFor(() -> seen.contains(7L));
        assertEquals(List.of(4L, 5L, 6L, 7L), seen);
        assertEquals(7, client.getConfig("checkout").sequence());
    }

    @Test
    void acksMadeWhileDisconnectedAreSentAfterReconnect() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        client.getConfig("checkout");
        agent.await("ack", 1, r -> true);
        java.util.concurrent.CountDownLatch entered = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        client.onChange("checkout", (next, previous) -> {
            entered.countDown();
            release.await();
        });
        agent.await("watch", 1, r -> true);
        agent.publish("checkout", 4, 900);
        assertTrue(entered.await(5, TimeUnit.SECONDS)); // the listener holds release 4
        agent.stop();
        waitFor(() -> !client.isConnected());
        release.countDown(); // the listener finishes while the agent is down
        startAgent();
        JsonNode ack = agent.await("ack", 1, r -> r.path("release").asText().equals("checkout-4")).get(0);
        assertEquals("applied", ack.path("status").asText());
    }

    @Test
    void fallsBackToDiskAndTurnsLiveWhenTheAgentAppears() throws Exception {
        writeRelease(3, 800);
        KonorkestraClient client = client();
        assertFalse(client.isConnected());

        Config fromDisk = client.getConfig("checkout");
        assertEquals("disk", fromDisk.source());
        assertEquals("checkout-3", fromDisk.release());
        assertEquals(800, fromDisk.get("checkout-api").path("timeoutMs").asInt());
        List<String> calls = new CopyOnWriteArrayList<>();
        client.onChange("checkout", (next, previous) -> calls.add(previous.release() + "@" + previous.source()
                + "->" + next.release() + "@" + next.source()));

        agent.publish("checkout", 3, 800); // the agent serves the same release
        startAgent();
        waitFor(() -> client.getConfig("checkout").source().equals("agent"));
        assertEquals(3, client.getConfig("checkout").sequence());
        agent.publish("checkout", 4, 900);
        waitFor(() -> calls.size() == 1);
        // seq 3 was not delivered again; previous is what the listener applied, from disk
        assertEquals(List.of("checkout-3@disk->checkout-4@agent"), calls);
    }

    @Test
    void aNewerReleaseFromTheAppearingAgentReachesListeners() throws Exception {
        writeRelease(3, 800);
        KonorkestraClient client = client();
        assertEquals("disk", client.getConfig("checkout").source());
        BlockingQueue<String> calls = new LinkedBlockingQueue<>();
        client.onChange("checkout", (next, previous) ->
                calls.add(previous.release() + "@" + previous.source() + "->" + next.release() + "@" + next.source()));
        agent.publish("checkout", 4, 900);
        startAgent();
        assertEquals("checkout-3@disk->checkout-4@agent", calls.poll(5, TimeUnit.SECONDS));
        assertNull(calls.poll(100, TimeUnit.MILLISECONDS));
    }

    @Test
    void noAgentAndNoDiskIsUnavailable() {
        KonorkestraClient client = client();
        AgentUnavailableException e = assertThrows(AgentUnavailableException.class, () -> client.getConfig("checkout"));
        assertTrue(e.getMessage().contains("release.json"), e.getMessage());
        assertFalse(client.report("checkout", "error_rate", 0.1)); // dropped
    }

    @Test
    void staleStatusUpdatesTheSnapshotWithoutCallingListeners() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        client.getConfig("checkout");
        List<Config> calls = new CopyOnWriteArrayList<>();
        client.onChange("checkout", (next, previous) -> calls.add(next));
        agent.await("watch", 1, r -> true);
        agent.setStale("checkout", true);
        waitFor(() -> client.getConfig("checkout").stale());
        assertEquals("checkout-3", client.getConfig("checkout").release());
        assertTrue(calls.isEmpty());
    }

    @Test
    void reportSendsTheMetric() throws Exception {
        startAgent();
        KonorkestraClient client = client();
        assertTrue(client.report("checkout", "error_rate", 0.002));
        JsonNode report = agent.await("report", 1, r -> true).get(0);
        assertEquals("error_rate", report.path("metric").asText());
        assertEquals(0.002, report.path("value").asDouble());
        assertThrows(IllegalArgumentException.class, () -> client.report("checkout", "x", Double.NaN));
    }

    @Test
    void closeStopsThreadsAndDisconnects() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        client.getConfig("checkout");
        waitFor(() -> agent.connections() == 1);

        client.close();
        client.close(); // idempotent
        waitFor(() -> agent.connections() == 0);
        assertThrows(IllegalStateException.class, () -> client.getConfig("checkout"));
        waitFor(() -> Thread.getAllStackTraces().keySet().stream()
                .noneMatch(t -> t.getName().startsWith("konorkestra-")));
    }

    @Test
    void closeFromInsideAListenerDoesNotDeadlock() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
        client.watch("checkout", cfg -> {
            client.close();
            closed.countDown();
        });
        assertTrue(closed.await(5, TimeUnit.SECONDS));
    }

    @Test
    void sinceDeliversAReleaseThatLandedBeforeRegistrationOnce() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        Config cfg = client.getConfig("checkout");
        agent.publish("checkout", 4, 900); // delivered and acked before anyone listens
        agent.await("ack", 2, r -> true);
        List<String> calls = new CopyOnWriteArrayList<>();
        List<String> picky = new CopyOnWriteArrayList<>();
        Subscription sub = client.onChange("checkout",
                (next, previous) -> calls.add(previous.sequence() + "->" + next.sequence()), cfg);
        client.onChange("checkout", (next, previous) -> {
            picky.add(previous.sequence() + "->" + next.sequence());
            if (next.sequence() == 4) {
                throw new IllegalStateException("late failure");
            }
        }, cfg);
        agent.publish("checkout", 5, 950); // right after: must come after 4, with previous = 4
        agent.await("ack", 3, r -> true);
        assertEquals(List.of("3->4", "4->5"), calls);
        assertEquals(List.of("3->4", "3->5"), picky); // its late failure kept it at cfg
        assertEquals(5, sub.current().sequence());
        // one ack per release: the late calls for 4 add none (picky's failure is only logged)
        assertEquals(List.of("checkout-3:applied", "checkout-4:applied", "checkout-5:applied"), acks());
    }

    @Test
    void sinceJoinsTheAckOfAReleaseNotYetHandedToListeners() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        Config cfg = client.getConfig("checkout");
        java.util.concurrent.CountDownLatch entered = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
        client.onChange("checkout", (next, previous) -> {
            if (next.sequence() == 4) {
                entered.countDown();
                assertTrue(go.await(5, TimeUnit.SECONDS));
            }
        });
        agent.await("watch", 1, r -> true);
        agent.publish("checkout", 4, 900);
        assertTrue(entered.await(5, TimeUnit.SECONDS)); // the callback thread is busy with 4
        agent.publish("checkout", 5, -1);
        waitFor(() -> client.getConfig("checkout").sequence() == 5);
        List<String> picky = new CopyOnWriteArrayList<>();
        client.onChange("checkout", (next, previous) -> {
            picky.add(previous.sequence() + "->" + next.sequence());
            if (next.get("checkout-api").path("timeoutMs").asInt() < 0) {
                throw new IllegalArgumentException("bad 5");
            }
        }, cfg);
        go.countDown();
        agent.await("ack", 3, r -> true);
        agent.publish("checkout", 6, 950);
        agent.await("ack", 4, r -> true);
        assertEquals(List.of("3->5", "3->6"), picky); // 5 once, in its own delivery
        assertEquals(List.of("checkout-3:applied", "checkout-4:applied", "checkout-5:failed",
                "checkout-6:applied"), acks());
    }

    @Test
    void sinceTheCurrentReleaseWaitsForTheNextAndMustBeOfTheGroup() throws Exception {
        agent.publish("checkout", 3, 800);
        startAgent();
        KonorkestraClient client = client();
        Config cfg = client.getConfig("checkout");
        List<String> calls = new CopyOnWriteArrayList<>();
        client.watch("checkout", next -> calls.add("->" + next.sequence()), cfg);
        agent.publish("checkout", 4, 900); // the first call, if any, must be this one
        agent.await("ack", 2, r -> true);
        assertEquals(List.of("->4"), calls);
        assertThrows(IllegalArgumentException.class, () -> client.onChange("inventory", (n, p) -> { }, cfg));
    }

    private List<String> acks() {
        return agent.requests("ack").stream()
                .map(r -> r.path("release").asText() + ":" + r.path("status").asText()).toList();
    }

    private void writeRelease(long sequence, int timeoutMs) throws IOException {
        Path file = dir.resolve("current/checkout/release.json");
        Files.createDirectories(file.getParent());
        Files.writeString(file, "{\"group\": \"checkout\", \"release\": \"checkout-" + sequence + "\", \"sequence\": "
                + sequence + ", \"digest\": \"sha256:00\", \"committed_at\": \"2026-11-26T23:59:00Z\","
                + " \"config\": {\"checkout-api\": {\"timeoutMs\": " + timeoutMs + "}}}");
    }

    static void waitFor(BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("condition not met within 5 s");
            }
            Thread.sleep(5);
        }
    }
}
