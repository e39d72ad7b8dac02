package io.konorkestra.examples;

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.konorkestra.sdk.Config;
import io.konorkestra.sdk.KonorkestraClient;
import io.konorkestra.sdk.KonorkestraException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

/**
 * The Java twin of {@code examples/apps/checkout_app.py}: prints its config at start and on
 * every release, one line per event, in the same format:
 *
 * <pre>
 * start   release=checkout-3 sequence=3 source=agent config={...}
 * applied release=checkout-4 sequence=4 config={...}
 * failed  release=checkout-5 error="BadReload: failBadReload is set" keeping=checkout-4
 * </pre>
 *
 * <p>Demo triggers, in any ConfigSet's top-level data: {@code "failBadReload": true} makes the
 * reload throw {@link BadReload} (the SDK acks the release {@code failed}, the app keeps its
 * config); {@code "simulatedErrorRate": 0.3} is reported as {@code error_rate} after a
 * release is applied (default 0.0), and {@code "simulatedLatencyP99Ms"} as
 * {@code latency_p99_ms} (default 120), for rollout guards.
 *
 * <pre>
 * java -cp ... io.konorkestra.examples.CheckoutApp [--socket PATH] [--group checkout] [--name checkout-app]
 * </pre>
 */
public final class CheckoutApp {
    /** Thrown when a release asks this app to fail its reload (the demo trigger). */
    public static final class BadReload extends Exception {
        private static final long serialVersionUID = 1L;

        public BadReload(String message) {
            super(message);
        }
    }

    private static final ObjectMapper COMPACT = JsonMapper.builder()
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
            .enable(JsonWriteFeature.ESCAPE_NON_ASCII).build();

    private final KonorkestraClient client;
    private final String group;
    private final PrintStream out;
    private volatile Config config; // only releases this app accepted

    /** Prints the current config of {@code group} and starts following its releases. */
    public CheckoutApp(KonorkestraClient client, String group, PrintStream out) {
        this.client = client;
        this.group = group;
        this.out = out;
        this.config = client.getConfig(group);
        out.println("start   release=" + config.release() + " sequence=" + config.sequence()
                + " source=" + config.source() + " config=" + compact(config));
        // since = config: a release landing between getConfig and this registration is
        // delivered (previous = config), not missed.
        client.onChange(group, (next, previous) -> reload(next), config);
    }

    private void reload(Config next) throws BadReload {
        JsonNode fail = setting(next, "failBadReload");
        if (fail != null && fail.isBoolean() && fail.booleanValue()) {
            out.println("failed  release=" + next.release() + " error=\"BadReload: failBadReload is set\" keeping="
                    + config.release());
            throw new BadReload("failBadReload is set");
        }
        config = next;
        out.println("applied release=" + next.release() + " sequence=" + next.sequence() + " config=" + compact(next));
        JsonNode rate = setting(next, "simulatedErrorRate");
        client.report(group, "error_rate", rate != null && rate.isNumber() ? rate.doubleValue() : 0.0);
        JsonNode latency = setting(next, "simulatedLatencyP99Ms");
        client.report(group, "latency_p99_ms", latency != null && latency.isNumber() ? latency.doubleValue() : 120.0);
    }

    /** The value of {@code key} in the first ConfigSet that has it at its top level, or {@code null}. */
    private static JsonNode setting(Config cfg, String key) {
        for (String name : cfg.names()) {
            JsonNode data = cfg.get(name);
            if (data.has(key)) {
                return data.get(key);
            }
        }
        return null;
    }

    private static String compact(Config cfg) {
        Map<String, Object> all = new LinkedHashMap<>();
        for (String name : cfg.names()) {
            all.put(name, cfg.asMap(name));
        }
        try {
            return COMPACT.writeValueAsString(all);
        } catch (Exception e) {
            return String.valueOf(all);
        }
    }

    public static void main(String[] args) throws InterruptedException {
        KonorkestraClient.Builder builder = KonorkestraClient.builder().name("checkout-app");
        String group = "checkout";
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--socket" -> builder.socket(Path.of(args[i + 1]));
                case "--group" -> group = args[i + 1];
                case "--name" -> builder.name(args[i + 1]);
                default -> {
                    System.err.println("usage: CheckoutApp [--socket PATH] [--group NAME] [--name NAME]");
                    System.exit(2);
                }
            }
        }
        CountDownLatch stop = new CountDownLatch(1);
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> { // SIGINT / SIGTERM: close cleanly
            stop.countDown();
            try {
                done.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }));
        try (KonorkestraClient client = builder.connect()) {
            new CheckoutApp(client, group, System.out);
            stop.await();
        } catch (KonorkestraException e) {
            System.err.println("error   " + e.getClass().getSimpleName() + ": " + e.getMessage());
            done.countDown();
            System.exit(1);
        } finally {
            done.countDown();
        }
    }
}
