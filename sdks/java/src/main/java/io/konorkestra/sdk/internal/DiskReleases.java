package io.konorkestra.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Reads the agent's last committed release, read-only: {@code <data>/current/<group>/release.json}.
 * A missing, unreadable or inconsistent file counts as no release (and is logged); a group
 * name that is not one path component is never looked up.
 */
public final class DiskReleases {
    private static final System.Logger LOG = System.getLogger(DiskReleases.class.getName());

    private DiskReleases() {}

    /** The file holding {@code group}'s committed release under {@code dataDir}. */
    public static Path file(Path dataDir, String group) {
        return dataDir.resolve("current").resolve(group).resolve("release.json");
    }

    /** The release document with {@code group} set and {@code stale: false}, or empty. */
    public static Optional<ObjectNode> read(Path dataDir, String group) {
        if (group.isEmpty() || group.contains("/") || group.contains("\0") || group.equals(".") || group.equals("..")) {
            return Optional.empty();
        }
        Path file = file(dataDir, group);
        try {
            JsonNode doc = Wire.parse(Files.readAllBytes(file));
            if (!doc.isObject()) {
                throw new IOException("not a JSON object");
            }
            if (doc.has("group") && !group.equals(doc.get("group").asText())) {
                throw new IOException("the file names group " + doc.get("group"));
            }
            return Optional.of(((ObjectNode) doc).put("group", group).put("stale", false));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            LOG.log(Level.WARNING, "ignoring unreadable {0}: {1}", file, e.getMessage());
            return Optional.empty();
        }
    }
}
