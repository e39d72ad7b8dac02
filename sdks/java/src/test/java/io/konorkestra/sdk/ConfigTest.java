package io.konorkestra.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.konorkestra.sdk.internal.Wire;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import org.junit.jupiter.api.Test;

class ConfigTest {
    record CheckoutApi(int timeoutMs, int retries) {}

    private static Config config(String json) throws Exception {
        return Config.fromRelease("checkout", Wire.MAPPER.readTree(json), Config.SOURCE_AGENT);
    }

    private static final String RELEASE = "{\"release\": \"checkout-3\", \"sequence\": 3, \"digest\": \"sha256:ab\","
            + " \"stale\": true, \"config\": {\"checkout-api\": {\"timeoutMs\": 800, \"retries\": 2, \"extra\": [1]},"
            + " \"payments-common\": {\"currency\": \"EUR\"}}}";

    @Test
    void exposesTheReleaseFields() throws Exception {
        Config cfg = config(RELEASE);
        assertEquals("checkout", cfg.group());
        assertEquals("checkout-3", cfg.release());
        assertEquals(3, cfg.sequence());
        assertEquals("sha256:ab", cfg.digest());
        assertTrue(cfg.stale());
        assertEquals("agent", cfg.source());
        assertEquals(List.of("checkout-api", "payments-common"), List.copyOf(cfg.names()));
        assertTrue(cfg.has("payments-common"));
        assertNull(cfg.get("missing"));
    }

    @Test
    void bindsRecordsIgnoringUnknownProperties() throws Exception {
        assertEquals(new CheckoutApi(800, 2), config(RELEASE).bind("checkout-api", CheckoutApi.class));
    }

    @Test
    void bindFailuresNameTheConfigSetAndType() throws Exception {
        Config cfg = config("{\"release\": \"checkout-4\", \"sequence\": 4, \"config\": {\"checkout-api\": {\"timeoutMs\": \"soon\"}}}");
        ConfigBindException e = assertThrows(ConfigBindException.class, () -> cfg.bind("checkout-api", CheckoutApi.class));
        assertTrue(e.getMessage().startsWith("ConfigSet 'checkout-api' of checkout-4 does not bind to CheckoutApi"), e.getMessage());
        NoSuchElementException missing = assertThrows(NoSuchElementException.class, () -> cfg.asMap("nope"));
        assertTrue(missing.getMessage().contains("[checkout-api]"), missing.getMessage());
    }

    @Test
    void accessorsReturnCopies() throws Exception {
        Config cfg = config(RELEASE);
        Map<String, Object> map = cfg.asMap("checkout-api");
        map.put("timeoutMs", 1);
        JsonNode node = cfg.get("checkout-api");
        ((com.fasterxml.jackson.databind.node.ObjectNode) node).put("timeoutMs", 2);
        assertEquals(800, cfg.get("checkout-api").path("timeoutMs").asInt());
        assertEquals(800, cfg.asMap("checkout-api").get("timeoutMs"));
    }

    @Test
    void rejectsMalformedReleases() {
        assertThrows(IllegalArgumentException.class, () -> config("{\"release\": \"x\", \"sequence\": 0, \"config\": {}}"));
        assertThrows(IllegalArgumentException.class, () -> config("{\"release\": \"x\", \"sequence\": 1.5, \"config\": {}}"));
        assertThrows(IllegalArgumentException.class, () -> config("{\"release\": \"x\", \"sequence\": 1, \"config\": []}"));
        assertThrows(IllegalArgumentException.class, () -> config("{\"sequence\": 1, \"config\": {}}"));
    }

    @Test
    void failedAckTextIsTypeAndMessage() {
        assertEquals("IllegalArgumentException: timeoutMs must be > 0",
                Listeners.describe(new IllegalArgumentException("timeoutMs must be > 0")));
        assertEquals("IllegalStateException", Listeners.describe(new IllegalStateException()));
        assertEquals(1000, Listeners.describe(new RuntimeException("x".repeat(5000))).length());
    }

    @Test
    void equalityCoversTheData() throws Exception {
        assertEquals(config(RELEASE), config(RELEASE));
        assertFalse(config(RELEASE).equals(config(RELEASE.replace("800", "801"))));
    }
}
