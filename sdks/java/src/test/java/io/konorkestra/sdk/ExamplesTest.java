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
        String doc = Files.readString(BASE.resolve("../../docs/guide/sdk-java.md").normalize());
        List<String> documented = javaBlock(doc, "docs/guide/sdk-java.md");
        assertEquals(compiledExample(), documented, "docs/guide/sdk-java.md and ReadmeExample.java differ");
        assertTrue(documented.size() <= 12, "the example should stay about ten lines");
    }

    /** The ```java block of README.md's "### Java" (under "## SDKs") is the compiled example too. */
    @Test
    void rootReadmeExampleIsTheCompiledSource() throws Exception {
        String readme = Files.readString(BASE.resolve("../../README.md").normalize());
        int sdks = readme.indexOf("\n## SDKs\n");
        assertTrue(sdks >= 0, "README.md has no \"## SDKs\" section");
        int java = readme.indexOf("\n### Java\n", sdks);
        assertTrue(java >= 0, "README.md has no \"### Java\" under \"## SDKs\"");
        assertEquals(compiledExample(), javaBlock(readme.substring(java), "README.md (SDKs, Java)"),
                "README.md (SDKs, Java) and ReadmeExample.java differ");
    }

    /** The lines of the first ```java block of {@code text}, stripped, blank lines dropped. */
    private static List<String> javaBlock(String text, String where) {
        int open = text.indexOf("```java\n");
        assertTrue(open >= 0, where + " has no ```java block");
        int start = open + "```java\n".length();
        return trimmed(text.substring(start, text.indexOf("```", start)));
    }

    /** The lines of ReadmeExample.java between its readme:begin and readme:end markers. */
    private static List<String> compiledExample() throws Exception {
        String source = Files.readString(BASE.resolve("examples/src/main/java/io/konorkestra/examples/ReadmeExample.java"));
        return trimmed(source.substring(source.indexOf("// readme:begin\n") + "// readme:begin\n".length(),
                source.indexOf("// readme:end")));
    }

    private static List<String> trimmed(String text) {
        return text.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
    }

    @Test
    void checkoutAppPrintsChangesAndRejectsFailBadReload(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream print = new PrintStream(out, true, StandardCharsets.UTF_8);
        try (TestAgent agent = TestAgent.launch(dir)) {
            agent.publish("checkout", 3, 800);
            agent.start();
            try (KonorkestraClient client = KonorkestraClient.builder().socket(agent.socket())
                    .dataDir(dir).requestTimeout(Duration.ofSeconds(2)).connect()) {
                new CheckoutApp(client, "checkout", print);
                agent.await("watch", 1, r -> true);
                ObjectNode bad = (ObjectNode) Wire.MAPPER.readTree("{\"checkout-api\": {\"timeoutMs\": 1, \"failBadReload\": true}}");
                agent.publish("checkout", 4, bad);
                ObjectNode good = (ObjectNode) Wire.MAPPER.readTree("{\"checkout-api\": {\"timeoutMs\": 900, \"simulatedErrorRate\": 0.3}}");
                agent.publish("checkout", 5, good);

                List<JsonNode> acks = agent.await("ack", 2, r -> !r.path("release").asText().equals("checkout-3"));
                assertEquals("failed", acks.get(0).path("status").asText());
                assertEquals("BadReload: failBadReload is set", acks.get(0).path("error").asText());
                assertEquals("applied", acks.get(1).path("status").asText());
                assertEquals(0.3, agent.await("report", 1, r -> true).get(0).path("value").asDouble());
            }
        }
        assertEquals(List.of(
                "start   release=checkout-3 sequence=3 source=agent config={\"checkout-api\":{\"timeoutMs\":800}}",
                "failed  release=checkout-4 error=\"BadReload: failBadReload is set\" keeping=checkout-3",
                "applied release=checkout-5 sequence=5 config={\"checkout-api\":{\"simulatedErrorRate\":0.3,\"timeoutMs\":900}}"),
                out.toString(StandardCharsets.UTF_8).lines().toList());
    }
}
