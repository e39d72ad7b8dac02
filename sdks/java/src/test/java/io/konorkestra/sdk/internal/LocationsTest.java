package io.konorkestra.sdk.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocationsTest {
    @TempDir
    Path dir;

    @Test
    void explicitValuesWin() {
        Map<String, String> env = Map.of("KONORKESTRA_SOCKET", "/env.sock", "KONORKESTRA_DATA", "/env-data");
        Locations l = Locations.resolve(dir.resolve("a.sock"), dir.resolve("data"), env, dir.resolve("root.sock"));
        assertEquals(new Locations(dir.resolve("a.sock"), dir.resolve("data")), l);
    }

    @Test
    void environmentComesNext() {
        Map<String, String> env = Map.of("KONORKESTRA_SOCKET", "/env.sock", "KONORKESTRA_DATA", "/env-data");
        assertEquals(new Locations(Path.of("/env.sock"), Path.of("/env-data")),
                Locations.resolve(null, null, env, dir.resolve("root.sock")));
    }

    @Test
    void dataDefaultsToTheSocketDirectoryWhenItHasCurrent() throws Exception {
        Path sock = dir.resolve("agent.sock");
        assertEquals(Locations.DEFAULT_DATA, Locations.resolve(sock, null, Map.of(), dir.resolve("root.sock")).dataDir());
        Files.createDirectory(dir.resolve("current"));
        assertEquals(dir, Locations.resolve(sock, null, Map.of(), dir.resolve("root.sock")).dataDir());
    }

    @Test
    void socketDefaultsToTheRootAgentsWhenItExistsElseUnderData() throws Exception {
        Path root = dir.resolve("root.sock");
        Map<String, String> env = Map.of("KONORKESTRA_DATA", dir.toString());
        assertEquals(dir.resolve("agent.sock"), Locations.resolve(null, null, env, root).socket());
        Files.createFile(root);
        assertEquals(root, Locations.resolve(null, null, env, root).socket());
        assertEquals(Locations.DEFAULT_DATA.resolve("agent.sock"),
                Locations.resolve(null, null, Map.of(), dir.resolve("none")).socket());
    }

    @Test
    void diskReadsOnlySafeNamesAndMatchingGroups() throws Exception {
        Path file = DiskReleases.file(dir, "checkout");
        Files.createDirectories(file.getParent());
        Files.writeString(file, "{\"group\": \"checkout\", \"release\": \"checkout-3\", \"sequence\": 3, \"config\": {}}");
        assertEquals(3, DiskReleases.read(dir, "checkout").orElseThrow().path("sequence").asInt());
        assertTrue(DiskReleases.read(dir, "..").isEmpty());
        assertTrue(DiskReleases.read(dir, "a/b").isEmpty());
        assertTrue(DiskReleases.read(dir, "missing").isEmpty());
        Files.writeString(file, "{\"group\": \"other\", \"release\": \"other-3\", \"sequence\": 3, \"config\": {}}");
        assertTrue(DiskReleases.read(dir, "checkout").isEmpty());
        Files.writeString(file, "{not json");
        assertTrue(DiskReleases.read(dir, "checkout").isEmpty());
    }

    @Test
    void backoffDoublesWithJitterUpToTheMaximum() {
        Backoff backoff = new Backoff(Duration.ofMillis(100), Duration.ofMillis(400));
        long[] bounds = {100, 200, 400, 400};
        for (long bound : bounds) {
            long ms = backoff.next().toMillis();
            assertTrue(ms >= bound / 2 && ms <= bound, ms + " not in [" + bound / 2 + ", " + bound + "]");
        }
        backoff.reset();
        assertTrue(backoff.next().toMillis() <= 100);
    }
}
