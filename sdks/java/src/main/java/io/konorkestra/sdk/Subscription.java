package io.konorkestra.sdk;

/**
 * A registered listener.
 *
 * <p>To start from a consistent point, register first and start from {@link #current()}:
 * every release after it reaches the listener, whereas a release committed between a
 * {@code getConfig} and the registration would not.
 */
public interface Subscription extends AutoCloseable {
    /**
     * The config the listener last applied: at registration the client's snapshot of the
     * group ({@code null} if it had none), later the last release it returned normally for.
     */
    Config current();

    /** Stops further calls. Idempotent. */
    @Override
    void close();
}
