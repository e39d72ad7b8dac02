package io.konorkestra.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.konorkestra.sdk.internal.LineChannel;
import io.konorkestra.sdk.internal.Wire;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Replays every vector in {@code tests/vectors} through the SDK's transport
 * ({@link LineChannel}) against the shared fake agent ({@link TestAgent}: the real agent's
 * socket server in Python), then runs the client itself against it. Skipped when the
 * interpreter is not runnable, unless {@code KONORKESTRA_REQUIRE_ALL=1}.
 */
class ConformanceTest {
    static final Path REPO = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().resolve("../..").normalize();
    static final Path VECTORS = REPO.resolve("tests/vectors");
    static final Duration DEADLINE = Duration.ofSeconds(5);

    @TempDir
    static Path dir;

    static TestAgent agent;
    static Path socket;
    static final ExecutorService reader = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "conformance-reader");
        t.setDaemon(true);
        return t;
    });

    @BeforeAll
    static void startReferenceServer() throws Exception {
        if (!Files.isDirectory(VECTORS)) {
            String why = "conformance vectors need " + VECTORS;
            if ("1".equals(System.getenv("KONORKESTRA_REQUIRE_ALL"))) {
                fail(why);
            }
            System.err.println("ConformanceTest skipped: " + why);
            Assumptions.abort("skipped: " + why);
        }
        agent = TestAgent.launch(dir);
        agent.start();
        socket = agent.socket();
    }

    @AfterAll
    static void stopReferenceServer() throws Exception {
        if (agent != null) {
            agent.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> vectors() throws IOException {
        List<Path> files;
        try (Stream<Path> listing = Files.list(VECTORS)) {
            files = listing.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
        assertFalse(files.isEmpty(), "no vectors in " + VECTORS);
        return files.stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(),
                () -> replay(Wire.MAPPER.readTree(file.toFile()))));
    }

    private static void replay(JsonNode vector) throws Exception {
        ObjectNode load = Wire.MAPPER.createObjectNode();
        load.set("load", vector);
        controlCommand(load);
        try (LineChannel conn = LineChannel.open(socket)) {
            int index = 0;
            for (JsonNode step : vector.path("steps")) {
                String where = vector.path("name").asText() + " step " + index++;
                if (step.has("send")) {
                    conn.writeLine(Wire.encode(step.get("send")));
                } else if (step.has("send_raw")) {
                    conn.writeRaw(step.get("send_raw").asText().getBytes(StandardCharsets.UTF_8));
                } else if (step.has("send_repeat")) {
                    JsonNode rep = step.get("send_repeat");
                    String text = rep.path("text").asText().repeat(rep.path("count").asInt()) + rep.path("then").asText();
                    conn.writeRaw(text.getBytes(StandardCharsets.UTF_8));
                } else if (step.has("expect")) {
                    byte[] line = readLine(conn, where);
                    assertNotNull(line, where + ": connection closed, expected " + step.get("expect"));
                    String why = VectorMatch.mismatch(step.get("expect"), Wire.parse(line), "$");
                    assertNull(why, () -> where + ": " + why + "\n  line: " + new String(line, StandardCharsets.UTF_8));
                } else if (step.has("expect_closed")) {
                    byte[] line = readLine(conn, where);
                    assertNull(line, () -> where + ": expected end of stream, got " + new String(line, StandardCharsets.UTF_8));
                } else if (step.has("publish") || step.has("set_stale")) {
                    controlCommand(step);
                } else {
                    fail(where + ": unknown step " + step);
                }
            }
        }
    }

    /**
     * The same vectors seen through the client API, as {@code tests/sdk/test_sdk_vectors.py}
     * does: each {@code get} must come out of {@code getConfig} (or throw
     * {@link ConfigNotFoundException}), each {@code publish} must reach a listener exactly once
     * and in order, each {@code set_stale} must show in {@code stale()}. Vectors about
     * malformed bytes or server options have no client equivalent.
     */
    @TestFactory
    Stream<DynamicTest> vectorsThroughTheClient() throws IOException {
        List<Path> files;
        try (Stream<Path> listing = Files.list(VECTORS)) {
            files = listing.filter(p -> p.toString().endsWith(".json")).sorted().toList();
        }
        List<JsonNode> vectors = new java.util.ArrayList<>();
        for (Path file : files) {
            vectors.add(Wire.MAPPER.readTree(file.toFile()));
        }
        return vectors.stream().filter(ConformanceTest::clientObservable).map(vector ->
                DynamicTest.dynamicTest(vector.path("name").asText(), () -> replayThroughClient(vector)));
    }

    private static boolean clientObservable(JsonNode vector) {
        if (vector.has("server")) {
            return false;
        }
        for (JsonNode step : vector.path("steps")) {
            if (step.has("publish") || step.path("send").path("op").asText().equals("get")) {
                return true;
            }
        }
        return false;
    }

    private static void replayThroughClient(JsonNode vector) throws Exception {
        ObjectNode load = Wire.MAPPER.createObjectNode();
        load.set("load", vector);
        controlCommand(load);
        java.util.Map<Object, JsonNode> expected = new java.util.HashMap<>(); // get id -> expected response
        JsonNode steps = vector.path("steps");
        try (KonorkestraClient client = KonorkestraClient.builder().socket(socket).dataDir(dir).connect()) {
            java.util.Map<String, List<Long>> seen = new java.util.concurrent.ConcurrentHashMap<>();
            java.util.Map<String, List<Long>> published = new java.util.HashMap<>();
            for (JsonNode step : steps) {
                String group = step.path("publish").path("group").asText("");
                if (!group.isEmpty() && !seen.containsKey(group)) {
                    seen.put(group, new java.util.concurrent.CopyOnWriteArrayList<>());
                    try {
                        client.getConfig(group); // listeners see releases after this one
                    } catch (ConfigNotFoundException e) {
                        // the first release is still to come
                    }
                    client.onChange(group, (next, previous) -> seen.get(next.group()).add(next.sequence()));
                }
            }
            for (int i = 0; i < steps.size(); i++) {
                JsonNode step = steps.get(i);
                String where = vector.path("name").asText() + " step " + i;
                JsonNode send = step.path("send");
                if (send.path("op").asText().equals("get") && send.path("group").isTextual()) {
                    JsonNode response = expectedResponse(steps, i, send.path("id"));
                    String group = send.path("group").asText();
                    if (response == null) {
                        continue;
                    }
                    if (!response.path("ok").asBoolean()) {
                        assertEquals("not_found", response.path("error").path("code").asText(), where);
                        org.junit.jupiter.api.Assertions.assertThrows(ConfigNotFoundException.class,
                                () -> client.getConfig(group), where);
                        continue;
                    }
                    long sequence = response.path("sequence").asLong();
                    KonorkestraClientTest.waitFor(() -> client.getConfig(group).sequence() >= sequence);
                    ObjectNode subset = response.deepCopy();
                    subset.remove("id");
                    String why = VectorMatch.mismatch(subset, observed(client.getConfig(group)), "$");
                    assertNull(why, () -> where + ": " + why);
                } else if (step.has("publish")) {
                    JsonNode body = step.get("publish");
                    String group = body.path("group").asText();
                    controlCommand(step);
                    List<Long> want = published.computeIfAbsent(group, g -> new java.util.ArrayList<>());
                    want.add(body.path("sequence").asLong());
                    KonorkestraClientTest.waitFor(() -> seen.get(group).size() >= want.size());
                    assertEquals(want, seen.get(group), where);
                    Config cfg = client.getConfig(group);
                    assertEquals(body.path("release").asText(), cfg.release(), where);
                    assertEquals(body.path("config"), observed(cfg).path("config"), where);
                } else if (step.has("set_stale")) {
                    JsonNode body = step.get("set_stale");
                    controlCommand(step);
                    KonorkestraClientTest.waitFor(() ->
                            client.getConfig(body.path("group").asText()).stale() == body.path("stale").asBoolean());
                }
            }
        }
    }

    /** The expect step answering the request with {@code id} sent at step {@code from}. */
    private static JsonNode expectedResponse(JsonNode steps, int from, JsonNode id) {
        for (int j = from + 1; j < steps.size(); j++) {
            JsonNode expect = steps.get(j).path("expect");
            if (expect.has("id") && expect.get("id").equals(id)) {
                return expect;
            }
        }
        return null;
    }

    private static ObjectNode observed(Config cfg) {
        ObjectNode out = Wire.MAPPER.createObjectNode().put("ok", true).put("group", cfg.group())
                .put("release", cfg.release()).put("sequence", cfg.sequence()).put("digest", cfg.digest())
                .put("stale", cfg.stale());
        ObjectNode config = out.putObject("config");
        for (String name : cfg.names()) {
            config.set(name, cfg.get(name));
        }
        return out;
    }

    private static byte[] readLine(LineChannel conn, String where) throws Exception {
        Future<byte[]> line = reader.submit(conn::readLine);
        try {
            return line.get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            conn.close();
            throw new AssertionError(where + ": no line within " + DEADLINE);
        }
    }

    private static void controlCommand(JsonNode command) throws Exception {
        agent.command(command);
    }

    /** The client end to end against the reference server: read, change, stale, ack, report. */
    @Test
    void clientFollowsTheReferenceServer() throws Exception {
        controlCommand(Wire.MAPPER.readTree("{\"load\": {\"groups\": {\"checkout\": {\"release\": \"checkout-3\","
                + " \"sequence\": 3, \"config\": {\"checkout-api\": {\"timeoutMs\": 800}}}}}}"));
        try (KonorkestraClient client = KonorkestraClient.builder().socket(socket).dataDir(dir).connect()) {
            Config cfg = client.getConfig("checkout");
            assertEquals("checkout-3", cfg.release());
            assertEquals("agent", cfg.source());
            assertTrue(cfg.digest().startsWith("sha256:"));
            BlockingQueue<String> calls = new LinkedBlockingQueue<>();
            client.onChange("checkout", (next, previous) -> {
                calls.add(previous.release() + "->" + next.release());
                if (next.get("checkout-api").path("timeoutMs").asInt() <= 0) {
                    throw new IllegalArgumentException("timeoutMs must be > 0");
                }
            });
            agent.await("watch", 1, r -> true); // a watch listed there is registered

            controlCommand(Wire.MAPPER.readTree("{\"publish\": {\"group\": \"checkout\", \"release\": \"checkout-4\","
                    + " \"sequence\": 4, \"config\": {\"checkout-api\": {\"timeoutMs\": 0}}}}"));
            controlCommand(Wire.MAPPER.readTree("{\"publish\": {\"group\": \"checkout\", \"release\": \"checkout-5\","
                    + " \"sequence\": 5, \"config\": {\"checkout-api\": {\"timeoutMs\": 900}}}}"));
            assertEquals("checkout-3->checkout-4", calls.poll(5, TimeUnit.SECONDS));
            assertEquals("checkout-3->checkout-5", calls.poll(5, TimeUnit.SECONDS));
            assertEquals(5, client.getConfig("checkout").sequence());

            controlCommand(Wire.MAPPER.readTree("{\"set_stale\": {\"group\": \"checkout\", \"stale\": true}}"));
            KonorkestraClientTest.waitFor(() -> client.getConfig("checkout").stale());
            assertTrue(client.report("checkout", "error_rate", 0.002));
        }
    }
}
