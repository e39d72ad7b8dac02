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
 *   <li>Each connection carries at most one protocol watch per group.</li>
 * </ul>
 */
final class Group {
    /** Where releases from the agent go; called with the group's lock held, must not block. */
    interface Dispatcher {
        void deliver(Group group, Config config, List<Watcher> watchers);
    }

    final String name;
    private final Dispatcher dispatcher;
    private volatile Config current;
    private final List<Watcher> watchers = new ArrayList<>();
    private AgentSession subscribedOn;

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
                dispatcher.deliver(this, next, List.copyOf(watchers));
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

    /** Adds a watcher of the releases after the current one, which it counts as applied. */
    synchronized Watcher add(ChangeListener listener) {
        Watcher watcher = new Watcher(this, listener);
        watcher.applied = current;
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
