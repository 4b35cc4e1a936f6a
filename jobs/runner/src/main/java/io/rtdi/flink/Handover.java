package io.rtdi.flink;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.source.split.KafkaPartitionSplit;
import org.apache.flink.connector.kafka.source.split.KafkaPartitionSplitSerializer;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.io.SimpleVersionedSerialization;
import org.apache.flink.core.memory.DataInputViewStreamWrapper;
import org.apache.flink.core.plugin.PluginUtils;
import org.apache.flink.runtime.checkpoint.Checkpoints;
import org.apache.flink.runtime.checkpoint.OperatorState;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.checkpoint.metadata.CheckpointMetadata;
import org.apache.flink.runtime.state.CompletedCheckpointStorageLocation;
import org.apache.flink.runtime.state.OperatorStateHandle;
import org.apache.flink.runtime.state.filesystem.AbstractFsCheckpointStorageAccess;

/**
 * Where a stopped job's Kafka sources stood: the offsets in a savepoint's Kafka source state, for
 * a primary flip (README, "A primary flip").
 *
 * <p>Why it exists: after a stop-with-savepoint, the {@code flink-<job>} group offsets in Kafka
 * are not where the job stopped. The Kafka source commits offsets when a checkpoint completes,
 * asynchronously, and the task finishes right after the savepoint completes, before that last
 * commit lands: the group keeps the previous checkpoint's offsets, and a job started from them in
 * another region would re-read (and duplicate) what the old primary wrote since. The savepoint
 * holds the exact positions, consistent with the sink's committed transactions. This tool reads
 * them from the savepoint's metadata with Flink's own classes, and prints them, one JSON object,
 * for the DR drill to translate into the new primary's aggregate cluster and commit there.
 *
 * <p>Usage: {@code Handover --savepoint URI [--conf key=value ...]}; the file systems load from
 * FLINK_PLUGINS_DIR as in the runner. Output: {"savepoint": URI, "offsets": {topic: {partition:
 * next offset to read}}}. A split the job never read keeps a negative marker (the source's
 * starting mode), printed as is. Bad input: one line on stderr, exit code 2.
 */
public final class Handover {
  static final int EXIT_BAD_INPUT = 2;
  /** The name of a source operator's split state (Flink's SourceOperator). */
  static final String SPLITS_STATE = "SourceReaderState";

  private Handover() {}

  public static void main(String[] argv) {
    int code;
    try {
      Map<String, String> conf = new LinkedHashMap<>();
      String savepoint = parseArgs(argv, conf);
      Configuration config = SqlRunner.configuration(conf);
      FileSystem.initialize(config, PluginUtils.createPluginManagerFromRootFolder(config));
      System.out.println(json(savepoint, offsets(savepoint)));
      code = 0;
    } catch (SqlRunner.BadInput e) {
      System.err.println("rtdi-handover: " + e.getMessage());
      code = EXIT_BAD_INPUT;
    } catch (Throwable t) {
      System.err.println("rtdi-handover: " + SqlRunner.rootMessage(t));
      code = 1;
    }
    System.exit(code);
  }

  static String parseArgs(String[] argv, Map<String, String> conf) throws SqlRunner.BadInput {
    String savepoint = null;
    for (int i = 0; i < argv.length; i++) {
      String arg = argv[i];
      if (i + 1 >= argv.length && (arg.equals("--savepoint") || arg.equals("--conf"))) {
        throw new SqlRunner.BadInput(arg + " needs a value");
      }
      switch (arg) {
        case "--savepoint" -> savepoint = argv[++i];
        case "--conf" -> {
          String kv = argv[++i];
          int eq = kv.indexOf('=');
          if (eq <= 0) {
            throw new SqlRunner.BadInput("--conf '" + kv + "' is not key=value");
          }
          conf.put(kv.substring(0, eq).strip(), kv.substring(eq + 1).strip());
        }
        default ->
            throw new SqlRunner.BadInput(
                "unknown argument '" + arg + "': allowed are --savepoint URI and --conf key=value");
      }
    }
    if (savepoint == null || savepoint.isBlank()) {
      throw new SqlRunner.BadInput("--savepoint URI is required (the savepoint's directory)");
    }
    return savepoint;
  }

  /** Topic -> partition -> next offset, from every Kafka source's split state in the savepoint. */
  static Map<String, Map<Integer, Long>> offsets(String savepoint) throws Exception {
    CompletedCheckpointStorageLocation location;
    try {
      location = AbstractFsCheckpointStorageAccess.resolveCheckpointPointer(savepoint);
    } catch (IOException e) {
      throw new SqlRunner.BadInput(
          "--savepoint " + savepoint + ": not a savepoint: " + SqlRunner.rootMessage(e));
    }
    CheckpointMetadata metadata;
    try (InputStream in = location.getMetadataHandle().openInputStream()) {
      metadata =
          Checkpoints.loadCheckpointMetadata(
              new DataInputStream(in),
              Handover.class.getClassLoader(),
              location.getExternalPointer());
    }
    KafkaPartitionSplitSerializer splits = new KafkaPartitionSplitSerializer();
    Map<String, Map<Integer, Long>> out = new TreeMap<>();
    for (OperatorState operator : metadata.getOperatorStates()) {
      for (OperatorSubtaskState subtask : operator.getStates()) {
        for (OperatorStateHandle handle : subtask.getManagedOperatorState()) {
          for (byte[] element : elements(handle)) {
            KafkaPartitionSplit split;
            try {
              split = SimpleVersionedSerialization.readVersionAndDeSerialize(splits, element);
            } catch (IOException | RuntimeException e) {
              continue; // another connector's source: not a Kafka split
            }
            out.computeIfAbsent(split.getTopic(), t -> new TreeMap<>())
                .put(split.getPartition(), split.getStartingOffset());
          }
        }
      }
    }
    if (out.isEmpty()) {
      throw new SqlRunner.BadInput(
          "--savepoint " + savepoint + ": holds no Kafka source state (no " + SPLITS_STATE + ")");
    }
    return out;
  }

  /** The elements of a handle's source split state, each as the source serialized it. */
  static List<byte[]> elements(OperatorStateHandle handle) throws IOException {
    List<byte[]> out = new ArrayList<>();
    OperatorStateHandle.StateMetaInfo info =
        handle.getStateNameToPartitionOffsets().get(SPLITS_STATE);
    if (info == null) {
      return out;
    }
    try (FSDataInputStream in = handle.openInputStream()) {
      DataInputViewStreamWrapper view = new DataInputViewStreamWrapper(in);
      for (long offset : info.getOffsets()) {
        in.seek(offset);
        out.add(BytePrimitiveArraySerializer.INSTANCE.deserialize(view));
      }
    }
    return out;
  }

  static String json(String savepoint, Map<String, Map<Integer, Long>> offsets) {
    StringBuilder b = new StringBuilder("{\"savepoint\": \"").append(escape(savepoint));
    b.append("\", \"offsets\": {");
    String sep = "";
    for (var topic : offsets.entrySet()) {
      b.append(sep).append('"').append(escape(topic.getKey())).append("\": {");
      String inner = "";
      for (var p : topic.getValue().entrySet()) {
        b.append(inner).append('"').append(p.getKey()).append("\": ").append(p.getValue());
        inner = ", ";
      }
      b.append('}');
      sep = ", ";
    }
    return b.append("}}").toString();
  }

  private static String escape(String s) {
    return s.replace("\\", "\\\\").replace("\"", "\\\"");
  }
}
