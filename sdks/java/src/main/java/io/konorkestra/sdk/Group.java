package io.konorkestra.sdk;

import io.konorkestra.sdk.internal.AgentSession;
import java.util.ArrayList;
import java.util.List;

/**
 * The client-side state of one group: its snapshot, its watchers, and the connection its
 * protocol watch runs on.
 *
 * <p>Rules (all under this object's lock, so releases reach the dispatcher in order):
 * <ul>
 *   <li>The snapshot's sequence never decreases; a release is installed only when its
 *       sequence is above the snapshot's. One received from the agent is then handed to
 *       the dispatcher once, with the watchers of that moment (to be acked even if there
 *       are none); one read from disk is not, as nobody can be told about it.</li>
 *   <li>The same sequence from the agent only refreshes the stale flag and source (a disk
 *       snapshot turns live); it never reaches watchers again.</li>
 *   <li>A watcher sees every release installed after it was added, and only those:
 *       nothing twice, nothing skipped. It starts from the snapshot of that moment.</li>
 *   <li>A watcher added {@code since} an older config than the snapshot starts from
 *       {@code since} and gets the snapshot first: it joins the snapshot's delivery (and
 *       its single ack) if that has not started yet, else it gets it alone, right after,
 *       without an ack (the release was acked before the watcher existed).</li>
 *   <li>Each connection carries at most one protocol watch per group.</li>
 * </ul>
 */
final class Group {
    /** Where releases from the agent go; called with the group's lock held, must not block. */
    interface Dispatcher {
        /** Runs {@code delivery}'s watchers (see {@link #start}) and acks its release. */
        void deliver(Group group, Delivery delivery);

        /** Gives {@code config} to {@code watcher} alone, after what is handed over so far; no ack. */
        void catchUp(Config config, Watcher watcher);
    }

    /** A release handed to the dispatcher; watchers may join it until it starts. */
    static final class Delivery {
        final Config config;
        private final List<Watcher> watchers;

        Delivery(Config config, List<Watcher> watchers) {
            this.config = config;
            this.watchers = watchers;
        }
    }

    final String name;
    private final Dispatcher dispatcher;
    private volatile Config current;
    private final List<Watcher> watchers = new ArrayList<>();
    private AgentSession subscribedOn;
    private Delivery pending; // the newest delivery, until the dispatcher starts it

    Group(String name, Dispatcher dispatcher) {
        this.name = name;
        this.dispatcher = dispatcher;
    }

    /** The snapshot, or {@code null} before the first release. Lock-free. */
    Config current() {
        return current;
    }

    /** Installs {@code next} if it is newer; returns whether it was. */
    synchronized boolean offer(Config next) {
        Config cur = current;
        if (cur == null || next.sequence() > cur.sequence()) {
            current = next;
            if (Config.SOURCE_AGENT.equals(next.source())) {
                pending = new Delivery(next, new ArrayList<>(watchers));
                dispatcher.deliver(this, pending);
            }
            return true;
        }
        if (next.sequence() == cur.sequence() && Config.SOURCE_AGENT.equals(next.source())) {
            current = cur.with(next.stale(), Config.SOURCE_AGENT);
        }
        return false;
    }

    /** A {@code status} event: same release, new stale flag. */
    synchronized void setStale(boolean stale) {
        Config cur = current;
        if (cur != null && cur.stale() != stale) {
            current = cur.with(stale, cur.source());
        }
    }

    /** The dispatcher takes {@code delivery}: no watcher joins it any more. Returns its watchers. */
    synchronized List<Watcher> start(Delivery delivery) {
        if (pending == delivery) {
            pending = null;
        }
        return List.copyOf(delivery.watchers);
    }

    /**
     * Adds a watcher of the releases after {@code since}, or after the current one when
     * {@code since} is {@code null} or the current release; it counts that one as applied.
     */
    synchronized Watcher add(ChangeListener listener, Config since) {
        Watcher watcher = new Watcher(this, listener);
        Config cur = current;
        if (since == null || (cur != null && cur.sequence() == since.sequence())) {
            watcher.applied = cur;
        } else {
            watcher.applied = since;
            if (cur != null && cur.sequence() > since.sequence()) {
                if (pending != null && pending.config.sequence() == cur.sequence()) {
                    pending.watchers.add(watcher); // joins its delivery and its ack
                } else {
                    dispatcher.catchUp(cur, watcher); // acked already (or from disk)
                }
            }
        }
        watchers.add(watcher);
        return watcher;
    }

    synchronized void remove(Watcher watcher) {
        watchers.remove(watcher);
    }

    /** Claims the protocol watch on {@code session}; {@code false} if it already has one there. */
    synchronized boolean claim(AgentSession session) {
        if (subscribedOn == session) {
            return false;
        }
        subscribedOn = session;
        return true;
    }

    /** One registered listener and the last config it applied. */
    static final class Watcher implements Subscription {
        private final Group group;
        final ChangeListener listener;
        volatile Config applied; // written by the callback thread only, after registration
        volatile boolean closed;

        Watcher(Group group, ChangeListener listener) {
            this.group = group;
            this.listener = listener;
        }

        @Override
        public Config current() {
            return applied;
        }

        @Override
        public void close() {
            closed = true;
            group.remove(this);
        }
    }
}
