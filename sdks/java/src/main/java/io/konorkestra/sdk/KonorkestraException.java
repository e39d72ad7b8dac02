package io.konorkestra.sdk;

/** Base class of every exception the SDK throws on purpose. Unchecked. */
public class KonorkestraException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public KonorkestraException(String message) {
        super(message);
    }

    public KonorkestraException(String message, Throwable cause) {
        super(message, cause);
    }
}
