package io.konorkestra.sdk;

/**
 * Transport error: the agent's socket could not be reached, the connection dropped,
 * or no answer came in time. Retrying later may succeed.
 */
public class AgentUnavailableException extends KonorkestraException {
    private static final long serialVersionUID = 1L;

    public AgentUnavailableException(String message) {
        super(message);
    }

    public AgentUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
