package io.konorkestra.sdk;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Map;

/** The vectors' matching rule (tests/vectors/README.md), ported from {@code replay.py}. */
final class VectorMatch {
    private VectorMatch() {}

    /** Why {@code actual} does not match {@code expected}, or {@code null} when it does. */
    static String mismatch(JsonNode expected, JsonNode actual, String path) {
        if (expected.isTextual()) {
            switch (expected.asText()) {
                case "$any":
                    return null;
                case "$string":
                    return actual.isTextual() ? null : path + ": expected a string, got " + actual;
                case "$number":
                    return actual.isNumber() ? null : path + ": expected a number, got " + actual;
                default:
                    break;
            }
        }
        if (expected.isObject()) {
            if (!actual.isObject()) {
                return path + ": expected an object, got " + actual;
            }
            for (Map.Entry<String, JsonNode> e : expected.properties()) {
                String key = e.getKey();
                JsonNode want = e.getValue();
                if (want.isTextual() && want.asText().equals("$absent")) {
                    if (actual.has(key)) {
                        return path + "." + key + ": expected absent, got " + actual.get(key);
                    }
                } else if (!actual.has(key)) {
                    return path + "." + key + ": missing";
                } else {
                    String why = mismatch(want, actual.get(key), path + "." + key);
                    if (why != null) {
                        return why;
                    }
                }
            }
            return null;
        }
        if (expected.isArray()) {
            if (!actual.isArray() || actual.size() != expected.size()) {
                return path + ": expected " + expected.size() + " elements, got " + actual;
            }
            for (int i = 0; i < expected.size(); i++) {
                String why = mismatch(expected.get(i), actual.get(i), path + "[" + i + "]");
                if (why != null) {
                    return why;
                }
            }
            return null;
        }
        boolean same;
        if (expected.isNumber()) {
            same = actual.isNumber() && expected.decimalValue().compareTo(actual.decimalValue()) == 0;
        } else {
            same = expected.getNodeType() == actual.getNodeType() && expected.equals(actual);
        }
        return same ? null : path + ": expected " + expected + ", got " + actual;
    }
}
