package io.konorkestra.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;

/**
 * Against a real agent, enabled by {@code KONORKESTRA_E2E_SOCKET=<agent socket>}.
 *
 * <ul>
 *   <li>{@code KONORKESTRA_E2E_GROUP} (default {@code checkout}): a group with a committed release.</li>
 *   <li>{@code KONORKESTRA_E2E_NEXT_SEQUENCE} (optional): the harness commits (git push) a release
 *       with at least this sequence while the test waits, up to {@code KONORKESTRA_E2E_TIMEOUT_S}
 *       seconds (default 60); the test checks it arrives through {@code onChange}, once.</li>
 *   <li>{@code KONORKESTRA_E2E_READY_FILE} (optional): created once the listener is registered,
 *       so a harness knows when to push (a release committed earlier would not reach it).</li>
 * </ul>
 */
@EnabledIfEnvironmentVariable(named = "KONORKESTRA_E2E_SOCKET", matches = ".+")
class E2eAgentTest {
    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    @Test
    void readsWatchesAndReportsAgainstARealAgent() throws Exception {
        String group = env("KONORKESTRA_E2E_GROUP", "checkout");
        try (KonorkestraClient client = KonorkestraClient.builder()
                .socket(Path.of(System.getenv("KONORKESTRA_E2E_SOCKET"))).name("java-sdk-e2e").connect()) {
            assertTrue(client.isConnected(), "no agent on KONORKESTRA_E2E_SOCKET");
            Config cfg = client.getConfig(group);
            assertEquals("agent", cfg.source());
            assertTrue(cfg.digest().matches("sha256:[0-9a-f]{64}"), cfg.digest());
            assertTrue(cfg.sequence() >= 1);
            assertTrue(client.report(group, "e2e_probe", 1.0));

            String next = System.getenv("KONORKESTRA_E2E_NEXT_SEQUENCE");
            if (next == null || next.isEmpty()) {
                return;
            }
            BlockingQueue<Config> changes = new LinkedBlockingQueue<>();
            client.onChange(group, (n, previous) -> changes.add(n));
            String ready = System.getenv("KONORKESTRA_E2E_READY_FILE");
            if (ready != null && !ready.isEmpty()) {
                Files.writeString(Path.of(ready), cfg.release() + "\n");
            }
            long timeout = Long.parseLong(env("KONORKESTRA_E2E_TIMEOUT_S", "60"));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeout);
            long last = cfg.sequence();
            while (last < Long.parseLong(next)) {
                Config change = changes.poll(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                assertTrue(change != null, "no release with sequence >= " + next + " within " + timeout + " s");
                assertTrue(change.sequence() > last, "release " + change.release() + " delivered out of order or twice");
                last = change.sequence();
            }
            assertEquals(last, client.getConfig(group).sequence());
        }
    }
}
