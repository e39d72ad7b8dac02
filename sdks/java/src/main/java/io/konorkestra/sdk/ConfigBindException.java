package io.konorkestra.sdk;

/**
 * A ConfigSet's data does not fit the type the application binds it to: the release is wrong
 * for this application. Thrown from a listener, it acks the release {@code failed}.
 */
public class ConfigBindException extends KonorkestraException {
    private static final long serialVersionUID = 1L;

    public ConfigBindException(String message, Throwable cause) {
        super(message, cause);
    }
}
