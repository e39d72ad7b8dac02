package io.konorkestra.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.konorkestra.examples.CheckoutApp;
import io.konorkestra.sdk.internal.Wire;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README example stays what the docs show; the sample app rejects "failBadReload". */
class ExamplesTest {
    static final Path BASE = Path.of(System.getProperty("basedir", ".")).toAbsolutePath();

    @Test
    void readmeExampleIsTheCompiledSource() throws Exception {
        String doc = Files.readString(BASE.resolve("../../docs/sdk-java.md").normalize());
        int start = doc.indexOf("```java\n") + "```java\n".length();
        List<String> documented = trimmed(doc.substring(start, doc.indexOf("```", start)));
        String source = Files.readString(BASE.resolve("examples/src/main/java/io/konorkestra/examples/ReadmeExample.java"));
        String between = source.substring(source.indexOf("// readme:begin\n") + "// readme:begin\n".length(),
                source.indexOf("// readme:end"));
        assertEquals(trimmed(between), documented, "docs/sdk-java.md and ReadmeExample.java differ");
        assertTrue(documented.size() <= 12, "the example should stay about ten lines");
    }

    private static List<String> trimmed(String text) {
        return text.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
    }

    @Test
    @SuppressWarnings("try") // the agent only has to run
    void checkoutAppPrintsChangesAndRejectsFailBadReload(@TempDir Path dir) throws Exception {
        FakeAgent.State state = new FakeAgent.State();
        state.publish("checkout", 3, 800);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream print = new PrintStream(out, true, StandardCharsets.UTF_8);
        try (FakeAgent agent = FakeAgent.start(state, dir.resolve("agent.sock"));
             KonorkestraClient client = KonorkestraClient.builder().socket(dir.resolve("agent.sock"))
                     .dataDir(dir).requestTimeout(Duration.ofSeconds(2)).connect()) {
            new CheckoutApp(client, "checkout", print);
            state.await("watch", 1, r -> true);
            ObjectNode bad = (ObjectNode) Wire.MAPPER.readTree("{\"checkout-api\": {\"timeoutMs\": 1, \"failBadReload\": true}}");
            state.publish("checkout", 4, bad);
            ObjectNode good = (ObjectNode) Wire.MAPPER.readTree("{\"checkout-api\": {\"timeoutMs\": 900, \"simulatedErrorRate\": 0.3}}");
            state.publish("checkout", 5, good);

            List<JsonNode> acks = state.await("ack", 2, r -> !r.path("release").asText().equals("checkout-3"));
            assertEquals("failed", acks.get(0).path("status").asText());
            assertEquals("BadReload: failBadReload is set", acks.get(0).path("error").asText());
            assertEquals("applied", acks.get(1).path("status").asText());
            assertEquals(0.3, state.await("report", 1, r -> true).get(0).path("value").asDouble());
        }
        assertEquals(List.of(
                "start   release=checkout-3 sequence=3 source=agent config={\"checkout-api\":{\"timeoutMs\":800}}",
                "failed  release=checkout-4 error=\"BadReload: failBadReload is set\" keeping=checkout-3",
                "applied release=checkout-5 sequence=5 config={\"checkout-api\":{\"simulatedErrorRate\":0.3,\"timeoutMs\":900}}"),
                out.toString(StandardCharsets.UTF_8).lines().toList());
    }
}
