package io.konorkestra.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.konorkestra.sdk.AgentErrorException;
import io.konorkestra.sdk.AgentUnavailableException;
import io.konorkestra.sdk.KonorkestraException;
import java.io.Closeable;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * One connection to the agent: numbers requests, matches responses to them by {@code id},
 * and hands events to a consumer.
 *
 * <p>Rules: a request's future completes exactly once, with the response, an
 * {@link AgentErrorException} ({@code ok: false}) or an {@link AgentUnavailableException}
 * (write failed, or the connection ended before the answer). Futures complete and events
 * are delivered on the thread running {@link #run}, so their continuations must not block.
 */
public final class AgentSession implements Closeable {
    private static final System.Logger LOG = System.getLogger(AgentSession.class.getName());

    private final LineChannel channel;
    private final Path path;
    private final AtomicLong ids = new AtomicLong();
    private final Map<Long, CompletableFuture<JsonNode>> pending = new ConcurrentHashMap<>();
    private volatile boolean ended;

    private AgentSession(LineChannel channel, Path path) {
        this.channel = channel;
        this.path = path;
    }

    /** Connects to the agent's socket; throws {@link IOException} when nobody listens. */
    public static AgentSession open(Path path) throws IOException {
        return new AgentSession(LineChannel.open(path), path);
    }

    /** Sends {@code request} with a fresh {@code id}; the future completes with the response. */
    public CompletableFuture<JsonNode> request(ObjectNode request) {
        long id = ids.incrementAndGet();
        request.put("id", id);
        CompletableFuture<JsonNode> answer = new CompletableFuture<>();
        pending.put(id, answer);
        if (ended) {
            failPending();
            return answer;
        }
        try {
            channel.writeLine(Wire.encode(request));
        } catch (IOException e) {
            pending.remove(id);
            answer.completeExceptionally(unavailable("writing to", e));
        }
        return answer;
    }

    /** {@link #request} and wait up to {@code timeout}; agent errors are rethrown as they are. */
    public JsonNode call(ObjectNode request, Duration timeout) {
        CompletableFuture<JsonNode> answer = request(request);
        try {
            return answer.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof KonorkestraException k) {
                throw k;
            }
            throw new KonorkestraException("request failed: " + e.getCause(), e.getCause());
        } catch (TimeoutException e) {
            answer.cancel(false);
            throw new AgentUnavailableException("no answer from the agent at " + path + " within " + timeout);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AgentUnavailableException("interrupted waiting for the agent", e);
        }
    }

    /**
     * Reads until the connection ends (returns normally) or fails (throws); then every
     * unanswered request fails with {@link AgentUnavailableException}.
     */
    public void run(Consumer<JsonNode> events) throws IOException {
        try {
            byte[] line;
            while ((line = channel.readLine()) != null) {
                dispatch(line, events);
            }
        } finally {
            ended = true;
            failPending();
        }
    }

    private void dispatch(byte[] line, Consumer<JsonNode> events) {
        JsonNode message;
        try {
            message = Wire.parse(line);
        } catch (IOException e) {
            LOG.log(Level.WARNING, "ignoring a line from the agent that is not JSON: {0}", e.getMessage());
            return;
        }
        if (!message.isObject()) {
            return;
        }
        if (message.has("event")) {
            events.accept(message);
            return;
        }
        JsonNode id = message.path("id");
        CompletableFuture<JsonNode> answer = id.canConvertToLong() ? pending.remove(id.asLong()) : null;
        if (answer == null) {
            JsonNode error = message.path("error");
            LOG.log(Level.WARNING, "unsolicited message from the agent: {0} {1}",
                    error.path("code").asText(""), error.path("message").asText(""));
        } else if (message.path("ok").asBoolean(false)) {
            answer.complete(message);
        } else {
            JsonNode error = message.path("error");
            answer.completeExceptionally(new AgentErrorException(
                    error.path("code").asText("internal"), error.path("message").asText("")));
        }
    }

    private void failPending() {
        for (Long id : pending.keySet()) {
            CompletableFuture<JsonNode> answer = pending.remove(id);
            if (answer != null) {
                answer.completeExceptionally(new AgentUnavailableException("connection to the agent at " + path + " ended"));
            }
        }
    }

    private AgentUnavailableException unavailable(String what, IOException e) {
        return new AgentUnavailableException(what + " the agent at " + path + " failed: " + e.getMessage(), e);
    }

    /** Closes the connection; {@link #run} then returns or throws promptly. */
    @Override
    public void close() {
        ended = true;
        try {
            channel.close();
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "closing the agent connection", e);
        }
        failPending();
    }
}
