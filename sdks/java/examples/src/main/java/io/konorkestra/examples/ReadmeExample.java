package io.konorkestra.examples;

import io.konorkestra.sdk.Config;
import io.konorkestra.sdk.KonorkestraClient;

/**
 * The ten-line example of {@code docs/guide/sdk-java.md}, compiled by the build;
 * {@code ReadmeExampleTest} fails when the two drift apart.
 */
public final class ReadmeExample {
    private ReadmeExample() {}

    public static void main(String[] args) throws InterruptedException {
        // readme:begin
        try (KonorkestraClient client = KonorkestraClient.connect()) {
            Config cfg = client.getConfig("checkout");          // then served from memory
            System.out.println(cfg.release() + " from " + cfg.source());
            client.onChange("checkout", (next, previous) -> {   // once per release after cfg, in order
                if (next.get("checkout-api").path("timeout_ms").asInt() <= 0) {
                    throw new IllegalArgumentException("timeout_ms must be > 0"); // acked "failed"
                }
                System.out.println(previous.release() + " -> " + next.release()); // "applied"
            }, cfg);                                             // since cfg: nothing missed in between
            Thread.sleep(Long.MAX_VALUE);
        }
        // readme:end
    }
}
