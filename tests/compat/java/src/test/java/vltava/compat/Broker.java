package vltava.compat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * The broker under test: the one named by KAFKA_BOOTSTRAP, or one Vltava
 * started per test JVM, i.e. per test class (pom.xml: reuseForks=false) ($VLTAVA_BIN, default the repository's
 * target/release/vltava) on a free loopback port with a temporary data
 * directory. Start-up waits for its "vltava listening on HOST:PORT" line
 * (stdout or stderr, at most 20 s); a JVM shutdown hook stops it with
 * SIGTERM (Process.destroy) by PID and waits at most 15 s.
 *
 * Classes use {@code @ExtendWith(Broker.LogOnFailure.class)}: a failed
 * scenario prints the tail of the broker's log.
 */
public final class Broker {
  private static final Pattern READY = Pattern.compile("vltava listening on (\\S+:\\d+)");
  private static String bootstrap;
  private static Path logPath;

  private Broker() {}

  public static synchronized String bootstrap() {
    if (bootstrap == null) {
      String external = System.getenv("KAFKA_BOOTSTRAP");
      if (external != null && !external.isEmpty()) {
        System.err.println("compat-java: broker " + external + " (KAFKA_BOOTSTRAP)");
        bootstrap = external;
      } else {
        try {
          bootstrap = startVltava();
        } catch (Exception e) {
          throw new IllegalStateException("starting vltava: " + e.getMessage(), e);
        }
      }
    }
    return bootstrap;
  }

  /** "vltava" when this JVM started the broker, "external" otherwise. */
  public static String kind() {
    bootstrap();
    return logPath == null ? "external" : "vltava";
  }

  private static String startVltava() throws Exception {
    String bin = System.getenv("VLTAVA_BIN");
    Path binPath = (bin == null || bin.isEmpty())
        ? Paths.get("..", "..", "..", "target", "release", "vltava")
        : Paths.get(bin);
    binPath = binPath.toAbsolutePath().normalize();
    if (!Files.isExecutable(binPath)) {
      throw new IllegalStateException("no broker binary at " + binPath
          + " (cargo build --release, or set VLTAVA_BIN / KAFKA_BOOTSTRAP)");
    }
    Path dir = Files.createTempDirectory("vltava-compat-java-");
    logPath = dir.resolve("stderr.log");
    ProcessBuilder pb = new ProcessBuilder(binPath.toString(), "server",
        "--listen", "127.0.0.1:0",
        "--data-dir", dir.resolve("data").toString(),
        "--admin-listen", "off",
        "--override", "group.initial.rebalance.delay.ms=0");
    pb.environment().put("NO_COLOR", "1");
    Process p = pb.start();
    PrintWriter log = new PrintWriter(Files.newBufferedWriter(logPath, StandardCharsets.UTF_8), true);
    CompletableFuture<String> ready = new CompletableFuture<>();
    pump(p.getInputStream(), log, ready);
    pump(p.getErrorStream(), log, ready);
    p.onExit().thenRun(() -> ready.completeExceptionally(
        new IllegalStateException("vltava exited before it was ready (code " + p.exitValue() + ")\n" + logTail(80))));
    String addr;
    try {
      addr = ready.get(20, TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      p.destroyForcibly();
      throw new IllegalStateException("vltava did not print its ready line within 20 s\n" + logTail(80));
    }
    System.err.println("compat-java: vltava (pid " + p.pid() + ") on " + addr);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(p, dir)));
    return addr;
  }

  private static void pump(InputStream in, PrintWriter log, CompletableFuture<String> ready) {
    Thread t = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          synchronized (log) {
            log.println(line);
          }
          Matcher m = READY.matcher(line);
          if (m.find()) ready.complete(m.group(1));
        }
      } catch (IOException ignored) {
        // the broker is gone
      }
    }, "vltava-log");
    t.setDaemon(true);
    t.start();
  }

  private static void stop(Process p, Path dir) {
    p.destroy(); // SIGTERM to the broker's PID
    try {
      if (!p.waitFor(15, TimeUnit.SECONDS)) {
        System.err.println("compat-java: vltava pid " + p.pid() + " ignored SIGTERM for 15 s; killing");
        p.destroyForcibly();
        failed = true;
      } else if (p.exitValue() != 0) {
        System.err.println("compat-java: vltava pid " + p.pid() + " exited with " + p.exitValue());
        failed = true;
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (failed) {
      System.err.println("---- vltava log (" + logPath + ") ----\n" + logTail(200) + "\n----");
    } else {
      try (Stream<Path> s = Files.walk(dir)) {
        s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
      } catch (IOException ignored) {
        // leave it in the temporary directory
      }
    }
  }

  private static volatile boolean failed;

  static String logTail(int n) {
    if (logPath == null) return "";
    try {
      List<String> lines = Files.readAllLines(logPath, StandardCharsets.UTF_8);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - n), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  /** Prints the broker's log tail after a failed scenario (Vltava only). */
  public static final class LogOnFailure implements TestWatcher {
    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
      failed = true;
      if (logPath != null) {
        System.err.println("---- vltava log after " + context.getDisplayName() + " (" + logPath + ") ----\n"
            + logTail(60) + "\n----");
      }
    }
  }
}
