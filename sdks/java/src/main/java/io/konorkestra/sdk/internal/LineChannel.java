package io.konorkestra.sdk.internal;

import java.io.Closeable;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Newline framing over a blocking Unix-socket {@link SocketChannel}.
 *
 * <p>One thread reads with {@link #readLine()} while any number of threads write whole lines
 * with {@link #writeLine(byte[])}; reads and writes never block each other (the channel's
 * own read and write locks are independent, unlike {@code Channels.newInputStream}).
 */
public final class LineChannel implements Closeable {
    /** Longest line accepted from the agent; a release's config is well below this. */
    static final int MAX_LINE = 64 * 1024 * 1024;

    private final SocketChannel channel;
    private final Object writeLock = new Object();
    private final ByteBuffer in = ByteBuffer.allocate(64 * 1024).flip();
    private byte[] line = new byte[8 * 1024];
    private int lineLength;

    private LineChannel(SocketChannel channel) {
        this.channel = channel;
    }

    /** Connects to the Unix socket at {@code path}. */
    public static LineChannel open(Path path) throws IOException {
        SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            channel.connect(UnixDomainSocketAddress.of(path));
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        return new LineChannel(channel);
    }

    /** Writes {@code bytes} followed by {@code \n}, atomically with respect to other writers. */
    public void writeLine(byte[] bytes) throws IOException {
        write(ByteBuffer.allocate(bytes.length + 1).put(bytes).put((byte) '\n').flip());
    }

    /** Writes {@code bytes} exactly as given (conformance tests send malformed lines). */
    public void writeRaw(byte[] bytes) throws IOException {
        write(ByteBuffer.wrap(bytes));
    }

    private void write(ByteBuffer out) throws IOException {
        synchronized (writeLock) {
            while (out.hasRemaining()) {
                channel.write(out);
            }
        }
    }

    /** The next line without its {@code \n}, or {@code null} at end of stream. One reader only. */
    public byte[] readLine() throws IOException {
        while (true) {
            byte[] buf = in.array();
            int start = in.position();
            int end = in.limit();
            for (int i = start; i < end; i++) {
                if (buf[i] == '\n') {
                    append(buf, start, i - start);
                    in.position(i + 1);
                    byte[] result = Arrays.copyOf(line, lineLength);
                    lineLength = 0;
                    return result;
                }
            }
            append(buf, start, end - start);
            in.clear();
            int n = channel.read(in);
            in.flip();
            if (n < 0) {
                return null;
            }
        }
    }

    private void append(byte[] src, int offset, int length) throws IOException {
        if (lineLength + length > MAX_LINE) {
            throw new IOException("agent sent a line longer than " + MAX_LINE + " bytes");
        }
        if (lineLength + length > line.length) {
            line = Arrays.copyOf(line, Math.max(line.length * 2, lineLength + length));
        }
        System.arraycopy(src, offset, line, lineLength, length);
        lineLength += length;
    }

    /** Closes the socket; a blocked {@link #readLine()} fails promptly. */
    @Override
    public void close() throws IOException {
        channel.close();
    }
}
