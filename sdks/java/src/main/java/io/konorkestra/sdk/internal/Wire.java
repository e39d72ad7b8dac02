package io.konorkestra.sdk.internal;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;

/** JSON encoding shared by the SDK: one compact UTF-8 object per protocol line. */
public final class Wire {
    /** The SDK's mapper; unknown properties are ignored when binding configs. */
    public static final ObjectMapper MAPPER =
            new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    private Wire() {}

    /** A fresh request object {@code {"op": op}}. */
    public static ObjectNode op(String op) {
        return MAPPER.createObjectNode().put("op", op);
    }

    /** Compact UTF-8 JSON of {@code node}, without the newline. */
    public static byte[] encode(JsonNode node) {
        try {
            return MAPPER.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Parses one line; throws {@link IOException} when it is not JSON. */
    public static JsonNode parse(byte[] line) throws IOException {
        return MAPPER.readTree(line);
    }
}
