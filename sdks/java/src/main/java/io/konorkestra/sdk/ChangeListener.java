package io.konorkestra.sdk;

/**
 * Reacts to a new release of a group; see {@link KonorkestraClient#onChange}.
 *
 * <p>Returning normally acknowledges the release as {@code applied}; throwing acknowledges it
 * as {@code failed} with {@code "ExceptionClass: message"}, and the next call's
 * {@code previous} is still the last config this listener applied.
 */
@FunctionalInterface
public interface ChangeListener {
    /**
     * @param next the new release's config
     * @param previous the config this listener last applied, or {@code null} before the first
     */
    void onChange(Config next, Config previous) throws Exception;
}
