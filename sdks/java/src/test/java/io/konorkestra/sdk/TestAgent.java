package io.konorkestra.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.konorkestra.sdk.internal.LineChannel;
import io.konorkestra.sdk.internal.Wire;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Predicate;
import org.junit.jupiter.api.Assumptions;

/**
 * The agent the tests talk to: the fake agent all three SDK suites share ({@code python -m
 * konorkestra.testing.fakeagent}, the real agent's socket server over in-memory state), one
 * process per instance, driven through its control socket as {@code tests/vectors/README.md}
 * describes. This class is only a thin client of that control protocol.
 *
 * <p>Without a runnable interpreter ({@code KONORKESTRA_PYTHON}, default {@code .venv/bin/python})
 * the calling test is skipped, or fails under {@code KONORKESTRA_REQUIRE_ALL=1}.
 */
final class TestAgent implements AutoCloseable {
    static final Path REPO = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().resolve("../..").normalize();
    static final Duration DEADLINE = Duration.ofSeconds(10);

    private static final ExecutorService READERS = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "test-agent-reader");
        t.setDaemon(true);
        return t;
    });
    private static Boolean runnable;

    private final Process process;
    private final Path socket;
    private final Path log;
    private final LineChannel control;

    private TestAgent(Process process, Path socket, Path log, LineChannel control) {
        this.process = process;
        this.socket = socket;
        this.log = log;
        this.control = control;
    }

    /** Starts the fake agent with its sockets in {@code dir}; the agent is down until {@link #start()}. */
    static TestAgent launch(Path dir) throws Exception {
        Path python = python();
        if (!runnable(python)) {
            String why = "the fake agent needs a Python that imports konorkestra.testing.fakeagent ("
                    + python + "; set KONORKESTRA_PYTHON or run `make venv`)";
            if ("1".equals(System.getenv("KONORKESTRA_REQUIRE_ALL"))) {
                fail(why);
            }
            System.err.println("skipped: " + why);
            Assumptions.abort("skipped: " + why);
        }
        Path socket = dir.resolve("agent.sock");
        Path controlSocket = dir.resolve("control.sock");
        Path log = Files.createTempFile(dir, "fakeagent", ".log"); // its stderr: refusals are expected
        Process process = new ProcessBuilder(python.toString(), "-m", "konorkestra.testing.fakeagent",
                "--socket", socket.toString(), "--control", controlSocket.toString(), "--stopped", "--exit-with-stdin")
                .directory(REPO.toFile()).redirectError(log.toFile()).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            String ready = READERS.submit(out::readLine).get(30, TimeUnit.SECONDS);
            assertEquals("ready " + socket, ready, () -> "fake agent did not start:\n" + read(log));
            return new TestAgent(process, socket, log, LineChannel.open(controlSocket));
        } catch (Exception | AssertionError e) {
            process.destroyForcibly();
            throw e;
        }
    }

    Path socket() {
        return socket;
    }

    /** Sends one control command and returns its answer; fails the test unless it is ok. */
    JsonNode command(JsonNode command) {
        byte[] reply;
        synchronized (control) {
            try {
                control.writeLine(Wire.encode(command));
                reply = READERS.submit(control::readLine).get(DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                throw new AssertionError("no answer to control " + command + " within " + DEADLINE);
            } catch (IOException | ExecutionException e) {
                throw new AssertionError("control " + command + " failed:\n" + read(log), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted", e);
            }
        }
        assertTrue(reply != null, () -> "fake agent gone:\n" + read(log));
        JsonNode answer;
        try {
            answer = Wire.parse(reply);
        } catch (IOException e) {
            throw new AssertionError("control " + command + " answered " + new String(reply, StandardCharsets.UTF_8), e);
        }
        assertTrue(answer.path("ok").asBoolean(), () -> "control " + command + ": " + answer);
        return answer;
    }

    private JsonNode command(String name, JsonNode argument) {
        ObjectNode cmd = Wire.MAPPER.createObjectNode();
        cmd.set(name, argument);
        return command(cmd);
    }

    /** Serves (again) on {@link #socket()}; the state outlives {@link #stop()}. */
    void start() {
        command("start", Wire.MAPPER.createObjectNode());
    }

    /** The agent dies: stops accepting, drops every connection, removes the socket file. */
    void stop() {
        command("stop", Wire.MAPPER.createObjectNode());
    }

    /** Commits a release {@code <group>-<seq>} with {@code {"checkout-api": {"timeoutMs": timeoutMs}}}. */
    void publish(String group, long sequence, int timeoutMs) {
        ObjectNode config = Wire.MAPPER.createObjectNode();
        config.putObject("checkout-api").put("timeoutMs", timeoutMs);
        publish(group, sequence, config);
    }

    /** Commits a release {@code <group>-<seq>} with {@code config} and notifies watchers. */
    void publish(String group, long sequence, ObjectNode config) {
        ObjectNode release = Wire.MAPPER.createObjectNode().put("group", group)
                .put("release", group + "-" + sequence).put("sequence", sequence)
                .put("digest", "sha256:" + "0".repeat(63) + (sequence % 10)).put("stale", false);
        release.set("config", config);
        command("publish", release);
    }

    void setStale(String group, boolean stale) {
        command("set_stale", Wire.MAPPER.createObjectNode().put("group", group).put("stale", stale));
    }

    /** Requests handled with {@code op}, in arrival order; a watch listed here is registered. */
    List<JsonNode> requests(String op) {
        List<JsonNode> out = new ArrayList<>();
        command("requests", Wire.MAPPER.createObjectNode().put("op", op)).path("requests").forEach(out::add);
        return out;
    }

    /** Waits until {@code count} requests match; returns what matched after 5 s otherwise. */
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

    /** Protocol connections the agent holds open. */
    int connections() {
        return command("status", Wire.MAPPER.createObjectNode()).path("connections").asInt();
    }

    /** Ends the process (closing its stdin is enough; a kill after 10 s). */
    @Override
    public void close() throws Exception {
        control.close();
        process.getOutputStream().close();
        if (!process.waitFor(DEADLINE.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly().waitFor();
        }
    }

    private static Path python() {
        String configured = System.getenv("KONORKESTRA_PYTHON");
        return configured != null && !configured.isEmpty() ? Path.of(configured) : REPO.resolve(".venv/bin/python");
    }

    private static synchronized boolean runnable(Path python) {
        if (runnable == null) {
            runnable = runs(python, "-c", "import konorkestra.testing.fakeagent");
        }
        return runnable;
    }

    private static boolean runs(Path python, String... args) {
        if (!Files.isExecutable(python)) {
            return false;
        }
        try {
            List<String> command = new ArrayList<>(List.of(python.toString()));
            command.addAll(List.of(args));
            Process p = new ProcessBuilder(command).directory(REPO.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }
}
