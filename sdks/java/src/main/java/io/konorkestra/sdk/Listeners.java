package io.konorkestra.sdk;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.konorkestra.sdk.internal.AgentSession;
import io.konorkestra.sdk.internal.Wire;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The callback thread: runs the listeners of each release and acks the release.
 *
 * <p>Rules: releases are handled one at a time in the order {@link Group} hands them over,
 * so listeners are never called concurrently. Each release is acked once per process:
 * {@code failed} with {@code "ExceptionClass: message"} of the first listener that threw,
 * else {@code applied} (also when nobody listens: the application read it). A listener
 * that throws keeps its previous config. Acks wait in a bounded queue (oldest dropped
 * beyond {@value #MAX_UNSENT_ACKS}) while the agent is unreachable and are sent in order.
 */
final class Listeners implements Group.Dispatcher {
    private static final System.Logger LOG = System.getLogger(Listeners.class.getName());
    static final int MAX_UNSENT_ACKS = 256;

    private final Supplier<AgentSession> session;
    private final Deque<ObjectNode> unsentAcks = new ArrayDeque<>();
    private final ExecutorService thread;
    private volatile Thread callbackThread;
    private volatile boolean closed;

    Listeners(Supplier<AgentSession> session) {
        this.session = session;
        this.thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "konorkestra-callbacks");
            t.setDaemon(true);
            callbackThread = t;
            return t;
        });
    }

    @Override
    public void deliver(Group group, Group.Delivery delivery) {
        submit(delivery.config, () -> {
            String error = null;
            for (Group.Watcher w : group.start(delivery)) {
                String failure = call(w, delivery.config);
                error = error == null ? failure : error;
            }
            ack(group.name, delivery.config.release(), error);
        });
    }

    @Override
    public void catchUp(Config config, Group.Watcher watcher) {
        submit(config, () -> {
            if (call(watcher, config) != null) {
                LOG.log(Level.WARNING, "{0} was acked before that listener registered: not acked again",
                        config.release());
            }
        });
    }

    private void submit(Config config, Runnable job) {
        if (closed) {
            return;
        }
        try {
            thread.execute(() -> {
                if (!closed) {
                    job.run();
                }
            });
        } catch (RejectedExecutionException e) {
            LOG.log(Level.DEBUG, "closed: release {0} not delivered", config.release());
        }
    }

    /** Calls {@code w} with {@code config}; returns the failure as sent in acks, or {@code null}. */
    private static String call(Group.Watcher w, Config config) {
        if (w.closed) {
            return null;
        }
        try {
            w.listener.onChange(config, w.applied);
            w.applied = config;
            return null;
        } catch (VirtualMachineError e) {
            throw e;
        } catch (Throwable t) {
            LOG.log(Level.WARNING, "listener rejected " + config.release() + "; keeping "
                    + (w.applied == null ? "nothing" : w.applied.release()), t);
            return describe(t);
        }
    }

    /** {@code "ExceptionClass: message"} as sent in {@code failed} acks, at most 1000 characters. */
    static String describe(Throwable t) {
        String type = t.getClass().getSimpleName().isEmpty() ? t.getClass().getName() : t.getClass().getSimpleName();
        String text = t.getMessage() == null || t.getMessage().isEmpty() ? type : type + ": " + t.getMessage();
        return text.length() <= 1000 ? text : text.substring(0, 1000);
    }

    private void ack(String group, String release, String error) {
        ObjectNode ack = Wire.op("ack").put("group", group).put("release", release)
                .put("status", error == null ? "applied" : "failed");
        if (error != null) {
            ack.put("error", error);
        }
        synchronized (unsentAcks) {
            if (unsentAcks.size() == MAX_UNSENT_ACKS) {
                unsentAcks.removeFirst();
            }
            unsentAcks.addLast(ack);
        }
        flushAcks();
    }

    /** Sends the queued acks in order, if connected; the connection calls this when it opens. */
    void flushAcks() {
        AgentSession s = session.get();
        if (s == null) {
            return;
        }
        synchronized (unsentAcks) {
            while (!unsentAcks.isEmpty()) {
                if (s.request(unsentAcks.peekFirst().deepCopy()).isCompletedExceptionally()) {
                    return; // the write failed: keep it for the next connection
                }
                unsentAcks.removeFirst();
            }
        }
    }

    /** Stops after the running listener; waits up to {@code timeout} unless called from a listener. */
    void close(Duration timeout) throws InterruptedException {
        closed = true;
        thread.shutdown();
        if (Thread.currentThread() != callbackThread) {
            thread.awaitTermination(timeout.toMillis(), TimeUnit.MILLISECONDS);
        }
    }
}
