package io.konorkestra.sdk;

/**
 * A registered listener.
 *
 * <p>To start from a consistent point, pass the config read with {@code getConfig} as
 * {@code since} ({@link KonorkestraClient#onChange(String, ChangeListener, Config)}): a
 * release committed between that read and the registration then reaches the listener, which
 * it would not otherwise.
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
