package io.konorkestra.examples;

import com.fasterxml.jackson.databind.JsonNode;
import io.konorkestra.sdk.Config;
import io.konorkestra.sdk.KonorkestraClient;
import io.konorkestra.sdk.internal.AgentSession;
import io.konorkestra.sdk.internal.Wire;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;

/**
 * Measures {@code get} latency through the agent's socket (p50/p99, sequential round trips)
 * and {@code getConfig} from the client's in-process snapshot (ns/op). The last output
 * line is one JSON object for bench/ to collect.
 *
 * <pre>
 * java -cp ... io.konorkestra.examples.GetLatencyBench SOCKET [GROUP] [ROUND_TRIPS]
 * </pre>
 */
public final class GetLatencyBench {
    private GetLatencyBench() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: GetLatencyBench SOCKET [GROUP] [ROUND_TRIPS]");
            System.exit(2);
        }
        Path socket = Path.of(args[0]);
        String group = args.length > 1 ? args[1] : "checkout";
        int trips = args.length > 2 ? Integer.parseInt(args[2]) : 20_000;

        long[] nanos = new long[trips];
        try (AgentSession session = AgentSession.open(socket)) {
            Thread reader = new Thread(() -> {
                try {
                    session.run(event -> { });
                } catch (Exception e) {
                    // closed at the end
                }
            }, "bench-reader");
            reader.setDaemon(true);
            reader.start();
            Duration timeout = Duration.ofSeconds(5);
            for (int i = 0; i < trips / 4 + 1; i++) { // warm-up
                session.call(Wire.op("get").put("group", group), timeout);
            }
            for (int i = 0; i < trips; i++) {
                long start = System.nanoTime();
                JsonNode response = session.call(Wire.op("get").put("group", group), timeout);
                nanos[i] = System.nanoTime() - start;
                if (response.path("sequence").asLong() < 1) {
                    throw new IllegalStateException("unexpected response " + response);
                }
            }
        }
        Arrays.sort(nanos);
        double p50 = nanos[trips / 2] / 1e3;
        double p99 = nanos[(int) Math.min(trips - 1L, Math.round(trips * 0.99))] / 1e3;

        double snapshotNs;
        try (KonorkestraClient client = KonorkestraClient.builder().socket(socket).name("bench").connect()) {
            client.getConfig(group);
            long sink = 0;
            for (int i = 0; i < 5_000_000; i++) { // warm-up
                sink += client.getConfig(group).sequence();
            }
            int ops = 50_000_000;
            long start = System.nanoTime();
            for (int i = 0; i < ops; i++) {
                sink += client.getConfig(group).sequence();
            }
            snapshotNs = (double) (System.nanoTime() - start) / ops;
            if (sink == 42) {
                System.out.println(); // keeps the loop from being optimised away
            }
            Config cfg = client.getConfig(group);
            System.out.printf(Locale.ROOT, "group %s release %s (%d ConfigSets)%n", group, cfg.release(), cfg.names().size());
        }
        System.out.printf(Locale.ROOT, "java get via socket:   n=%d p50=%.1f us p99=%.1f us%n", trips, p50, p99);
        System.out.printf(Locale.ROOT, "java get from snapshot: %.1f ns/op%n", snapshotNs);
        System.out.printf(Locale.ROOT, "{\"sdk\": \"java\", \"socket_get_p50_us\": %.1f, \"socket_get_p99_us\": %.1f,"
                + " \"snapshot_get_ns_per_op\": %.2f}%n", p50, p99, snapshotNs);
    }
}
