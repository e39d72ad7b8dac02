package io.konorkestra.sdk;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.konorkestra.sdk.internal.Wire;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Set;

/**
 * One release of a group, as the application sees it. Immutable and thread-safe: every
 * accessor returns a copy, so callers may modify what they get.
 *
 * <pre>{@code
 * Config cfg = client.getConfig("checkout");
 * int timeout = cfg.get("checkout-api").path("timeoutMs").asInt(1000);
 * CheckoutApi api = cfg.bind("checkout-api", CheckoutApi.class);
 * }</pre>
 */
public final class Config {
    /** {@link #source()} of a config received from the agent. */
    public static final String SOURCE_AGENT = "agent";
    /** {@link #source()} of a config read from the agent's data directory. */
    public static final String SOURCE_DISK = "disk";

    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() {};

    private final String group;
    private final String release;
    private final long sequence;
    private final String digest;
    private final boolean stale;
    private final String source;
    private final ObjectNode data; // never exposed: copied on the way out

    private Config(String group, String release, long sequence, String digest, boolean stale,
                   String source, ObjectNode data) {
        this.group = group;
        this.release = release;
        this.sequence = sequence;
        this.digest = digest;
        this.stale = stale;
        this.source = source;
        this.data = data;
    }

    /**
     * From a {@code get} response, a {@code release} event or a {@code release.json} file.
     * Throws {@link IllegalArgumentException} unless {@code sequence} is a positive integer,
     * {@code release} a string and {@code config} an object.
     */
    static Config fromRelease(String group, JsonNode doc, String source) {
        JsonNode sequence = doc.path("sequence");
        JsonNode config = doc.path("config");
        if (!sequence.isIntegralNumber() || !sequence.canConvertToLong() || sequence.asLong() < 1) {
            throw new IllegalArgumentException("sequence must be a positive integer, got " + sequence);
        }
        if (!doc.path("release").isTextual() || !config.isObject()) {
            throw new IllegalArgumentException("a release needs a string 'release' and an object 'config'");
        }
        return new Config(group, doc.get("release").asText(), sequence.asLong(),
                doc.path("digest").asText(""), doc.path("stale").asBoolean(false), source,
                ((ObjectNode) config).deepCopy());
    }

    /** The same release with another stale flag and source. */
    Config with(boolean newStale, String newSource) {
        return new Config(group, release, sequence, digest, newStale, newSource, data);
    }

    /** The group this release belongs to, e.g. {@code "checkout"}. */
    public String group() {
        return group;
    }

    /** The release id, e.g. {@code "checkout-3"}. */
    public String release() {
        return release;
    }

    /** The release's sequence: strictly increasing per group, a rollback gets a higher one. */
    public long sequence() {
        return sequence;
    }

    /** The release digest, {@code "sha256:<hex>"}. */
    public String digest() {
        return digest;
    }

    /**
     * Whether the agent reports the release as past its freshness deadline. A config read
     * from disk reports {@code false}: nobody can tell while the agent is down.
     */
    public boolean stale() {
        return stale;
    }

    /** {@code "agent"} when live from the agent, {@code "disk"} when read from its data directory. */
    public String source() {
        return source;
    }

    /** The names of the ConfigSets in this release, in the release's order. */
    public Set<String> names() {
        Set<String> names = new LinkedHashSet<>();
        data.fieldNames().forEachRemaining(names::add);
        return Collections.unmodifiableSet(names);
    }

    /** Whether the release contains the ConfigSet {@code name}. */
    public boolean has(String name) {
        return data.has(name);
    }

    /** A copy of ConfigSet {@code name}'s data, or {@code null} when the release has none by that name. */
    public JsonNode get(String name) {
        JsonNode node = data.get(name);
        return node == null ? null : node.deepCopy();
    }

    /** ConfigSet {@code name}'s data as a fresh mutable map. */
    public Map<String, Object> asMap(String name) {
        return Wire.MAPPER.convertValue(require(name), MAP);
    }

    /**
     * ConfigSet {@code name}'s data bound to {@code type} with Jackson (records and beans
     * work; unknown properties are ignored). Throws {@link ConfigBindException} when the
     * data does not fit the type, {@link NoSuchElementException} when there is no such ConfigSet.
     */
    public <T> T bind(String name, Class<T> type) {
        try {
            return Wire.MAPPER.treeToValue(require(name), type);
        } catch (JsonProcessingException | IllegalArgumentException e) {
            throw new ConfigBindException("ConfigSet '" + name + "' of " + release
                    + " does not bind to " + type.getSimpleName() + ": " + reason(e), e);
        }
    }

    private static String reason(Exception e) {
        return e instanceof JsonProcessingException j ? j.getOriginalMessage() : e.getMessage();
    }

    private JsonNode require(String name) {
        JsonNode node = data.get(name);
        if (node == null) {
            throw new NoSuchElementException("release " + release + " of group " + group
                    + " has no ConfigSet '" + name + "' (it has " + new ArrayList<>(names()) + ")");
        }
        return node;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Config c && sequence == c.sequence && stale == c.stale
                && group.equals(c.group) && release.equals(c.release) && digest.equals(c.digest)
                && source.equals(c.source) && data.equals(c.data);
    }

    @Override
    public int hashCode() {
        return Objects.hash(group, release, sequence, digest, stale, source);
    }

    @Override
    public String toString() {
        return "Config[group=" + group + ", release=" + release + ", sequence=" + sequence
                + ", digest=" + digest + ", stale=" + stale + ", source=" + source
                + ", configSets=" + names() + "]";
    }
}
