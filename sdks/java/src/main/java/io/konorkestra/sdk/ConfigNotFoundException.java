package io.konorkestra.sdk;

/**
 * No configuration for the group: the agent has no committed release for it on this node
 * (or the group is outside the node's scope), or the agent is unreachable and the data
 * directory holds no release for it either.
 */
public class ConfigNotFoundException extends KonorkestraException {
    private static final long serialVersionUID = 1L;

    private final String group;

    public ConfigNotFoundException(String group, String message) {
        super(message);
        this.group = group;
    }

    /** The group that was asked for. */
    public String group() {
        return group;
    }
}
