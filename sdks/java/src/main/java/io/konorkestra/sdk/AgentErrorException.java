package io.konorkestra.sdk;

/**
 * The agent answered a request with an error ({@code ok: false}); {@link #code()} is the
 * protocol's error code ({@code bad_request}, {@code not_found}, {@code forbidden}, ...).
 */
public class AgentErrorException extends KonorkestraException {
    private static final long serialVersionUID = 1L;

    private final String code;

    public AgentErrorException(String code, String message) {
        super(code + ": " + message);
        this.code = code;
    }

    /** The protocol error code, e.g. {@code "not_found"}. */
    public String code() {
        return code;
    }
}
