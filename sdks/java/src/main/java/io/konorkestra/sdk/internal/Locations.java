package io.konorkestra.sdk.internal;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Where the agent's socket and data directory are (protocol.md, "Socket" and "On-disk
 * fallback"): an explicit value, then {@code KONORKESTRA_SOCKET} / {@code KONORKESTRA_DATA},
 * then the defaults. The data directory defaults to the socket's directory when it contains
 * {@code current/}, else {@code /var/lib/konorkestra}; the socket defaults to
 * {@code /run/konorkestra/agent.sock} when it exists (a root agent), else {@code <data>/agent.sock}.
 */
public record Locations(Path socket, Path dataDir) {
    static final Path ROOT_SOCKET = Path.of("/run/konorkestra/agent.sock");
    static final Path DEFAULT_DATA = Path.of("/var/lib/konorkestra");

    /** Resolves with this process's environment. */
    public static Locations resolve(Path socket, Path dataDir) {
        return resolve(socket, dataDir, System.getenv(), ROOT_SOCKET);
    }

    /** Resolves from explicit values (may be {@code null}), an environment and the root agent's socket. */
    public static Locations resolve(Path socket, Path dataDir, Map<String, String> env, Path rootSocket) {
        Path sock = socket != null ? socket : fromEnv(env, "KONORKESTRA_SOCKET");
        Path data = dataDir != null ? dataDir : fromEnv(env, "KONORKESTRA_DATA");
        if (data == null && sock != null) {
            Path parent = sock.toAbsolutePath().getParent();
            if (parent != null && Files.isDirectory(parent.resolve("current"))) {
                data = parent;
            }
        }
        if (data == null) {
            data = DEFAULT_DATA;
        }
        if (sock == null) {
            sock = Files.exists(rootSocket) ? rootSocket : data.resolve("agent.sock");
        }
        return new Locations(sock, data);
    }

    private static Path fromEnv(Map<String, String> env, String name) {
        String value = env.get(name);
        return value == null || value.isEmpty() ? null : Path.of(value);
    }
}
