/**
 * Konorkestra's Java SDK: read and watch a group's configuration from the agent on this
 * node, over its Unix socket ({@code docs/reference/protocol.md}).
 *
 * <pre>{@code
 * try (KonorkestraClient client = KonorkestraClient.connect()) {
 *     Config cfg = client.getConfig("checkout");              // cheap after the first call
 *     System.out.println(cfg.release() + " from " + cfg.source());
 *     int timeoutMs = cfg.get("checkout-api").path("timeoutMs").asInt();
 *
 *     client.onChange("checkout", (next, previous) -> {
 *         CheckoutApi api = next.bind("checkout-api", CheckoutApi.class);
 *         if (api.timeoutMs() <= 0) {                        // throwing acks "failed"
 *             throw new IllegalArgumentException("timeoutMs must be > 0");
 *         }
 *         server.reconfigure(api);                           // returning acks "applied"
 *     }, cfg);                                               // since cfg: nothing missed
 *     client.report("checkout", "error_rate", 0.002);
 * }
 * }</pre>
 *
 * <p>Semantics:
 * <ul>
 *   <li>{@link io.konorkestra.sdk.KonorkestraClient#getConfig} returns an immutable
 *       {@link io.konorkestra.sdk.Config}; the first call for a group asks the agent and starts
 *       watching it, later calls read an in-process snapshot kept current by one background
 *       thread.</li>
 *   <li>Listeners ({@code watch}, {@code onChange}) run on one callback thread, once per new
 *       release and in sequence order, never concurrently. Returning acks the release
 *       {@code applied}; throwing acks it {@code failed} with {@code "ExceptionClass: message"}
 *       and that listener keeps its previous config.</li>
 *   <li>When the connection drops the client reconnects with jittered back-off and resumes
 *       each watch after the last sequence it received: nothing is missed or repeated.</li>
 *   <li>When the agent is unreachable at start, configs come from its data directory
 *       ({@code source() == "disk"}) until it appears; then they turn live ({@code "agent"}).</li>
 * </ul>
 *
 * <p>Errors: {@link io.konorkestra.sdk.ConfigNotFoundException} (no release anywhere),
 * {@link io.konorkestra.sdk.AgentUnavailableException} (transport),
 * {@link io.konorkestra.sdk.AgentErrorException} (the agent refused, with its error code).
 * Everything under {@code io.konorkestra.sdk.internal} may change without notice.
 */
package io.konorkestra.sdk;
