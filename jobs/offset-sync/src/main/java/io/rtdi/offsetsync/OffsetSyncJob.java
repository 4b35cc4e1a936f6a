package io.rtdi.offsetsync;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.connect.mirror.DefaultReplicationPolicy;
import org.apache.kafka.connect.mirror.OffsetSync;
import org.apache.kafka.connect.mirror.ReplicationPolicy;

/**
 * The offset sync job: for each active-passive consumer group, translates the offsets it
 * committed on the primary region's aggregate cluster into this region's aggregate, and commits
 * them here while the group is inactive here, never rewinding it.
 *
 * <p>Why two hops, and not MirrorMaker 2's checkpoints: the group consumes {@code <X>.<topic>}
 * on the primary's aggregate, which MirrorMaker 2 never mirrors (it fills every aggregate from
 * the regional clusters), so no checkpoint exists for it. Both aggregates hold copies of the same
 * regional topic, though, and each records in its offset-syncs topic
 * ({@code mm2-offset-syncs.<X>.internal}, kept on the target) which regional offset landed at
 * which of its own offsets. The job maps the primary's committed offset back to the regional
 * offset it has certainly consumed (the newest sync at or below it), then forward into this
 * aggregate as MirrorMaker 2's own checkpoints do (OffsetSyncStore: the sync's downstream
 * offset, plus one past an exact match). Both steps round towards re-reading, so nothing is
 * skipped; each re-reads at most what lies between two syncs, MirrorMaker 2's
 * {@code offset.lag.max}.
 *
 * <p>{@code --once} runs one pass and prints its JSON report (what the DR drill's "sync
 * offsets" step reads); otherwise a pass every {@code --interval-seconds}, each report one line,
 * the files read again each pass (the primary's side, {@code --primary-config}, is a Secret that
 * may appear later), {@code /healthz} on {@code --health-port} answering 200 while passes run
 * and {@code /readyz} once one translated. Bad input is one line on stderr and exit code 2; a
 * pass that fails is exit code 1 under {@code --once}.
 */
public final class OffsetSyncJob implements AutoCloseable {
  static final int BAD_INPUT = 2;
  private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{env:([A-Za-z_][A-Za-z0-9_]*)}");
  private static final Set<GroupState> INACTIVE =
      Set.of(GroupState.EMPTY, GroupState.DEAD, GroupState.UNKNOWN);
  private static final Duration TIMEOUT = Duration.ofSeconds(30);

  /** Input the job refuses: one line, exit code 2. */
  static final class BadInput extends Exception {
    BadInput(String message) {
      super(message);
    }
  }

  /** The job's settings, from its properties file and command line. */
  record Settings(
      List<String> groups,
      String primary,
      String local,
      Map<String, Object> primaryClient,
      Map<String, Object> localClient,
      boolean once,
      int intervalSeconds,
      int healthPort) {}

  /** One cluster's offset syncs per upstream (regional) partition, read incrementally. */
  static final class SyncLog implements AutoCloseable {
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final Admin admin;
    private final Map<TopicPartition, TreeMap<Long, Long>> byUpstream = new HashMap<>();
    private final Map<TopicPartition, TreeMap<Long, Long>> byDownstream = new HashMap<>();
    private final Set<String> topics = new TreeSet<>();
    // Enough history to translate any offset a group committed within the last few thousand
    // syncs; older entries are dropped as MirrorMaker 2's OffsetSyncStore drops them.
    private static final int KEEP = 4096;

    SyncLog(Map<String, Object> client, Admin admin) {
      Map<String, Object> props = new HashMap<>(client);
      props.put("key.deserializer", ByteArrayDeserializer.class.getName());
      props.put("value.deserializer", ByteArrayDeserializer.class.getName());
      props.put("enable.auto.commit", "false");
      props.put("auto.offset.reset", "earliest");
      props.remove("group.id");
      this.consumer = new KafkaConsumer<>(props);
      this.admin = admin;
    }

    /** Reads ``syncTopic`` (all partitions) up to its end as of now. */
    void catchUp(String syncTopic) throws Exception {
      if (topics.add(syncTopic)) {
        TopicDescription d;
        try {
          d = admin.describeTopics(List.of(syncTopic)).allTopicNames().get().get(syncTopic);
        } catch (ExecutionException e) {
          topics.remove(syncTopic);
          if (e.getCause() instanceof UnknownTopicOrPartitionException) {
            return; // MirrorMaker 2 has not synced this source yet
          }
          throw e;
        }
        List<TopicPartition> parts = new ArrayList<>(consumer.assignment());
        d.partitions().forEach(p -> parts.add(new TopicPartition(syncTopic, p.partition())));
        consumer.assign(parts);
      }
      Map<TopicPartition, Long> end = consumer.endOffsets(consumer.assignment(), TIMEOUT);
      long deadline = System.nanoTime() + TIMEOUT.toNanos();
      while (end.entrySet().stream().anyMatch(e -> consumer.position(e.getKey()) < e.getValue())) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException("timed out reading " + topics);
        }
        for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
          OffsetSync s = OffsetSync.deserializeRecord(r);
          TopicPartition tp =
              new TopicPartition(r.topic() + "/" + s.topicPartition().topic(),
                  s.topicPartition().partition());
          TreeMap<Long, Long> up = byUpstream.computeIfAbsent(tp, k -> new TreeMap<>());
          TreeMap<Long, Long> down = byDownstream.computeIfAbsent(tp, k -> new TreeMap<>());
          // A sync whose downstream went back (the copy was truncated) replaces the history.
          if (!down.isEmpty() && s.downstreamOffset() < down.lastKey()) {
            up.clear();
            down.clear();
          }
          up.put(s.upstreamOffset(), s.downstreamOffset());
          down.put(s.downstreamOffset(), s.upstreamOffset());
          while (up.size() > KEEP) {
            down.remove(up.pollFirstEntry().getValue());
          }
        }
      }
    }

    /**
     * The regional offset a consumer at downstream ``offset`` has certainly consumed up to.
     */
    Long upstreamOf(String syncTopic, TopicPartition upstream, long offset) {
      TreeMap<Long, Long> down = byDownstream.get(key(syncTopic, upstream));
      Map.Entry<Long, Long> e = down == null ? null : down.floorEntry(offset);
      if (e == null) {
        return null;
      }
      return e.getKey() == offset ? e.getValue() : e.getValue() + 1;
    }

    /** Where a consumer resumes downstream to read every record from regional ``offset`` on. */
    Long downstreamOf(String syncTopic, TopicPartition upstream, long offset) {
      TreeMap<Long, Long> up = byUpstream.get(key(syncTopic, upstream));
      Map.Entry<Long, Long> e = up == null ? null : up.floorEntry(offset);
      if (e == null) {
        return null;
      }
      return e.getKey() == offset ? e.getValue() : e.getValue() + 1;
    }

    private static TopicPartition key(String syncTopic, TopicPartition upstream) {
      return new TopicPartition(syncTopic + "/" + upstream.topic(), upstream.partition());
    }

    @Override
    public void close() {
      consumer.close();
    }
  }

  private final Settings settings;
  private final ReplicationPolicy policy = new DefaultReplicationPolicy();
  private final Admin primaryAdmin;
  private final Admin localAdmin;
  private final SyncLog primarySyncs;
  private final SyncLog localSyncs;

  OffsetSyncJob(Settings settings) {
    this.settings = settings;
    this.primaryAdmin = Admin.create(settings.primaryClient());
    this.localAdmin = Admin.create(settings.localClient());
    this.primarySyncs = new SyncLog(settings.primaryClient(), primaryAdmin);
    this.localSyncs = new SyncLog(settings.localClient(), localAdmin);
  }

  /** One pass over every group: the report, as JSON. */
  String pass() throws Exception {
    StringBuilder out = new StringBuilder();
    out.append("{\"primary\":").append(json(settings.primary()));
    out.append(",\"region\":").append(json(settings.local()));
    out.append(",\"groups\":[");
    boolean firstGroup = true;
    for (String group : settings.groups()) {
      out.append(firstGroup ? "" : ",").append(syncGroup(group));
      firstGroup = false;
    }
    return out.append("]}").toString();
  }

  private String syncGroup(String group) throws Exception {
    Map<TopicPartition, OffsetAndMetadata> source = offsets(primaryAdmin, group);
    GroupState state = state(localAdmin, group);
    boolean inactive = INACTIVE.contains(state);
    Map<TopicPartition, OffsetAndMetadata> here = offsets(localAdmin, group);
    Map<TopicPartition, OffsetAndMetadata> commit = new LinkedHashMap<>();
    List<TopicPartition> sorted = new ArrayList<>(source.keySet());
    sorted.sort((a, b) -> a.topic().equals(b.topic())
        ? Integer.compare(a.partition(), b.partition()) : a.topic().compareTo(b.topic()));
    Map<TopicPartition, String[]> pending = new LinkedHashMap<>();
    for (TopicPartition tp : sorted) {
      OffsetAndMetadata om = source.get(tp);
      if (om == null) {
        continue;
      }
      long offset = om.offset();
      String origin = policy.topicSource(tp.topic());
      Long upstream = null;
      Long translated = null;
      String reason = null;
      if (origin == null) {
        reason = "not a MirrorMaker 2 copy (<source-region>.<topic>)";
      } else {
        String syncTopic = policy.offsetSyncsTopic(origin);
        primarySyncs.catchUp(syncTopic);
        localSyncs.catchUp(syncTopic);
        TopicPartition up = new TopicPartition(policy.upstreamTopic(tp.topic()), tp.partition());
        upstream = primarySyncs.upstreamOf(syncTopic, up, offset);
        if (upstream == null) {
          reason = "no offset sync at or below it on the primary's aggregate";
        } else {
          translated = localSyncs.downstreamOf(syncTopic, up, upstream);
          if (translated == null) {
            reason = "no offset sync at or below the regional offset on this aggregate";
          }
        }
      }
      OffsetAndMetadata previous = here.get(tp);
      if (reason == null && !inactive) {
        reason = "group is " + state + " here";
      }
      if (reason == null && previous != null && previous.offset() >= translated) {
        reason = "already at or past it here";
      }
      if (reason == null) {
        commit.put(tp, new OffsetAndMetadata(translated, "rtdi-offset-sync " + settings.primary()));
      }
      pending.put(tp, new String[] {
          Long.toString(offset),
          upstream == null ? "null" : upstream.toString(),
          translated == null ? "null" : translated.toString(),
          previous == null ? "null" : Long.toString(previous.offset()),
          reason});
    }
    String failure = null;
    if (!commit.isEmpty()) {
      try {
        localAdmin.alterConsumerGroupOffsets(group, commit).all().get();
      } catch (ExecutionException e) {
        // The group came alive between the check and the commit: the broker refuses, rightly.
        failure = "commit refused: " + e.getCause().getMessage();
      }
    }
    StringBuilder out = new StringBuilder();
    out.append("{\"group\":").append(json(group));
    out.append(",\"state\":").append(json(state.toString()));
    out.append(",\"partitions\":[");
    boolean first = true;
    for (Map.Entry<TopicPartition, String[]> e : pending.entrySet()) {
      String[] v = e.getValue();
      boolean done = commit.containsKey(e.getKey()) && failure == null;
      String reason = v[4] != null ? v[4] : failure;
      out.append(first ? "" : ",");
      first = false;
      out.append("{\"topic\":").append(json(e.getKey().topic()));
      out.append(",\"partition\":").append(e.getKey().partition());
      out.append(",\"sourceOffset\":").append(v[0]);
      out.append(",\"upstreamOffset\":").append(v[1]);
      out.append(",\"translatedOffset\":").append(v[2]);
      out.append(",\"previousOffset\":").append(v[3]);
      out.append(",\"committed\":").append(done);
      if (reason != null) {
        out.append(",\"reason\":").append(json(reason));
      }
      out.append('}');
    }
    return out.append("]}").toString();
  }

  private static Map<TopicPartition, OffsetAndMetadata> offsets(Admin admin, String group)
      throws Exception {
    try {
      Map<TopicPartition, OffsetAndMetadata> m = admin
          .listConsumerGroupOffsets(Map.of(group, new ListConsumerGroupOffsetsSpec()))
          .partitionsToOffsetAndMetadata(group)
          .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      Map<TopicPartition, OffsetAndMetadata> out = new HashMap<>();
      m.forEach((k, v) -> {
        if (v != null) {
          out.put(k, v);
        }
      });
      return out;
    } catch (ExecutionException e) {
      if (e.getCause() instanceof GroupIdNotFoundException) {
        return Map.of();
      }
      throw e;
    }
  }

  private static GroupState state(Admin admin, String group) throws Exception {
    try {
      ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group))
          .describedGroups().get(group).get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
      return d.groupState();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof GroupIdNotFoundException) {
        return GroupState.DEAD;
      }
      throw e;
    }
  }

  static String json(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }

  // ------------------------------------------------------------------ input

  static Settings parse(String[] args, Map<String, String> env) throws BadInput {
    List<String> configs = new ArrayList<>();
    String primaryFlag = null;
    String primaryFile = null;
    boolean once = false;
    int interval = 30;
    int health = 8080;
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      switch (a) {
        case "--once" -> once = true;
        case "--config" -> configs.add(value(args, ++i, a));
        case "--primary-region" -> primaryFlag = value(args, ++i, a);
        case "--primary-config" -> primaryFile = value(args, ++i, a);
        case "--interval-seconds" -> interval = whole(value(args, ++i, a), a, 1, 86_400,
            "seconds between passes, at most a day");
        case "--health-port" -> health = whole(value(args, ++i, a), a, 1, 65_535, "a TCP port");
        default -> throw new BadInput("unknown argument " + a + "; allowed: --config FILE, "
            + "--primary-config FILE, --primary-region REGION, --once, --interval-seconds N, "
            + "--health-port N");
      }
    }
    // The primary's side, from a file that may not exist yet (a Secret the operator creates):
    // without it a loop waits, and --once refuses.
    boolean waiting = false;
    if (primaryFile != null) {
      if (Files.isRegularFile(Path.of(primaryFile))) {
        configs.add(primaryFile);
      } else if (once) {
        throw new BadInput("--primary-config " + primaryFile + " does not exist; allowed: a "
            + "properties file of primary.cluster.<client property> lines");
      } else {
        waiting = true;
      }
    }
    if (configs.isEmpty()) {
      throw new BadInput("--config is missing; allowed: --config FILE (more than once: their "
          + "keys together), properties files");
    }
    // Several files: the Deployment's ConfigMap and the Secret with the primary's side.
    Properties p = new Properties();
    for (String file : configs) {
      Properties one = new Properties();
      try (InputStream in = Files.newInputStream(Path.of(file))) {
        one.load(in);
      } catch (IOException | IllegalArgumentException e) {
        throw new BadInput("--config " + file + ": not a readable properties file ("
            + e.getMessage() + ")");
      }
      for (String k : one.stringPropertyNames()) {
        if (p.containsKey(k)) {
          throw new BadInput("--config " + file + ": key " + k + " is set by an earlier --config "
              + "too; allowed: each key in one file");
        }
        p.setProperty(k, one.getProperty(k));
      }
    }
    String config = String.join(" + ", configs);
    if (primaryFlag != null) {
      // The Deployment names the primary in its args, so that a flip rolls the pod.
      if (p.containsKey("primary.region")) {
        throw new BadInput("--primary-region " + primaryFlag + ": " + config + " sets "
            + "primary.region too; allowed: one of them");
      }
      p.setProperty("primary.region", primaryFlag);
    }
    Map<String, Object> primary = new HashMap<>();
    Map<String, Object> local = new HashMap<>();
    for (String k : new TreeSet<>(p.stringPropertyNames())) {
      String v = substitute(config, k, p.getProperty(k), env);
      if (k.startsWith("primary.cluster.")) {
        primary.put(k.substring("primary.cluster.".length()), v);
      } else if (k.startsWith("local.cluster.")) {
        local.put(k.substring("local.cluster.".length()), v);
      } else if (!Set.of("groups", "primary.region", "local.region").contains(k)) {
        throw new BadInput(config + ": key " + k + " is unknown; allowed: groups, primary.region, "
            + "local.region, primary.cluster.<client property>, local.cluster.<client property>");
      }
    }
    String groupList = required(p, config, "groups", "a comma-separated list of consumer groups");
    List<String> groups = new ArrayList<>();
    for (String g : groupList.split(",")) {
      String t = g.trim();
      if (t.isEmpty() || groups.contains(t)) {
        throw new BadInput(config + ": groups = " + groupList + ": an empty or repeated group; "
            + "allowed: distinct consumer group names, comma-separated");
      }
      groups.add(t);
    }
    String primaryRegion = required(p, config, "primary.region", "the primary region's id");
    String localRegion = required(p, config, "local.region", "this region's id");
    if (primaryRegion.equals(localRegion)) {
      throw new BadInput(config + ": local.region = " + localRegion + " is the primary; allowed: "
          + "a region other than primary.region (the primary's offsets are its own)");
    }
    for (Map<String, Object> c : List.of(primary, local)) {
      if (waiting && c == primary && c.isEmpty()) {
        return new Settings(groups, primaryRegion, localRegion, null, local, once, interval,
            health);
      }
      if (!c.containsKey("bootstrap.servers")) {
        String which = c == primary ? "primary" : "local";
        throw new BadInput(config + ": " + which + ".cluster.bootstrap.servers is missing; "
            + "allowed: host:port[,host:port...] of the " + which + " aggregate cluster");
      }
    }
    return new Settings(groups, primaryRegion, localRegion, primary, local, once, interval, health);
  }

  private static String value(String[] args, int i, String flag) throws BadInput {
    if (i >= args.length) {
      throw new BadInput(flag + " needs a value");
    }
    return args[i];
  }

  private static int whole(String v, String flag, int lo, int hi, String what) throws BadInput {
    try {
      int n = Integer.parseInt(v);
      if (n >= lo && n <= hi) {
        return n;
      }
    } catch (NumberFormatException e) {
      // refused below
    }
    throw new BadInput(flag + " " + v + ": allowed: a whole number from " + lo + " to " + hi
        + " (" + what + ")");
  }

  private static String required(Properties p, String file, String key, String what)
      throws BadInput {
    String v = p.getProperty(key);
    if (v == null || v.isBlank()) {
      throw new BadInput(file + ": " + key + " is missing; allowed: " + what);
    }
    return v.trim();
  }

  /** ``${env:NAME}`` from the environment: passwords come from Secrets, never the file. */
  private static String substitute(String file, String key, String v, Map<String, String> env)
      throws BadInput {
    Matcher m = PLACEHOLDER.matcher(v);
    StringBuilder out = new StringBuilder();
    while (m.find()) {
      String found = env.get(m.group(1));
      if (found == null) {
        throw new BadInput(file + ": " + key + " needs environment variable " + m.group(1)
            + ", which is not set; allowed: set it (from its Secret)");
      }
      m.appendReplacement(out, Matcher.quoteReplacement(found));
    }
    m.appendTail(out);
    return out.toString();
  }

  // ------------------------------------------------------------------ running

  public static void main(String[] args) {
    Settings settings;
    try {
      settings = parse(args, System.getenv());
    } catch (BadInput e) {
      System.err.println("offset-sync: " + e.getMessage());
      System.exit(BAD_INPUT);
      return;
    }
    if (settings.once()) {
      try (OffsetSyncJob job = new OffsetSyncJob(settings)) {
        System.out.println(job.pass());
      } catch (Exception e) {
        System.err.println("offset-sync: pass failed: " + e);
        System.exit(1);
      }
      System.exit(0);
    }
    // Live while passes run (waiting for the primary's config included); ready once a pass
    // translated, so a pod without its primary shows as not ready rather than restarting.
    AtomicLong lastPass = new AtomicLong(System.nanoTime());
    AtomicLong lastSync = new AtomicLong(0);
    long stale = TimeUnit.SECONDS.toNanos(3L * settings.intervalSeconds() + 60);
    try {
      HttpServer http = HttpServer.create(new InetSocketAddress(settings.healthPort()), 0);
      http.createContext("/healthz", ex -> answer(ex, System.nanoTime() - lastPass.get() < stale));
      http.createContext("/readyz", ex -> answer(ex,
          lastSync.get() != 0 && System.nanoTime() - lastSync.get() < stale));
      http.start();
    } catch (IOException e) {
      System.err.println("offset-sync: cannot serve /healthz on port " + settings.healthPort()
          + ": " + e.getMessage());
      System.exit(1);
    }
    OffsetSyncJob job = null;
    while (true) {
      try {
        // Read again every pass: the primary's Secret may appear or change under the mount.
        Settings now = parse(args, System.getenv());
        if (job == null || !now.equals(job.settings)) {
          if (job != null) {
            job.close();
            job = null;
          }
          if (now.primaryClient() != null) {
            job = new OffsetSyncJob(now);
          }
        }
        if (job == null) {
          System.out.println("{\"primary\":" + json(now.primary()) + ",\"region\":"
              + json(now.local()) + ",\"waiting\":\"no primary.cluster.* settings yet\"}");
        } else {
          System.out.println(job.pass());
          lastSync.set(System.nanoTime());
        }
        System.out.flush();
        lastPass.set(System.nanoTime());
      } catch (BadInput e) {
        System.err.println("offset-sync: " + e.getMessage());
      } catch (Exception e) {
        System.err.println("offset-sync: pass failed: " + e);
      }
      try {
        Thread.sleep(TimeUnit.SECONDS.toMillis(settings.intervalSeconds()));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private static void answer(com.sun.net.httpserver.HttpExchange ex, boolean ok)
      throws IOException {
    byte[] body = (ok ? "ok\n" : "not yet\n").getBytes(StandardCharsets.UTF_8);
    ex.sendResponseHeaders(ok ? 200 : 503, body.length);
    try (OutputStream os = ex.getResponseBody()) {
      os.write(body);
    }
  }

  @Override
  public void close() {
    primarySyncs.close();
    localSyncs.close();
    primaryAdmin.close();
    localAdmin.close();
  }
}
