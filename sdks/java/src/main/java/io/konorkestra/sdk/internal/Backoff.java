package io.konorkestra.sdk.internal;

import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/** Exponential reconnect delays with "equal jitter": each delay is uniform in [d/2, d]. */
public final class Backoff {
    private final long initialNanos;
    private final long maxNanos;
    private long nextNanos;

    public Backoff(Duration initial, Duration max) {
        if (initial.isNegative() || initial.isZero() || max.compareTo(initial) < 0) {
            throw new IllegalArgumentException("need 0 < initial <= max, got " + initial + ", " + max);
        }
        this.initialNanos = initial.toNanos();
        this.maxNanos = max.toNanos();
        this.nextNanos = initialNanos;
    }

    /** The delay before the next attempt; doubles (up to the maximum) on every call. */
    public synchronized Duration next() {
        long d = nextNanos;
        nextNanos = Math.min(maxNanos, d * 2);
        return Duration.ofNanos(d / 2 + ThreadLocalRandom.current().nextLong(d / 2 + 1));
    }

    /** Starts over from the initial delay (after a connection succeeded). */
    public synchronized void reset() {
        nextNanos = initialNanos;
    }
}
