import java.util.HashMap;
import java.util.Map;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.DeploymentOptions;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.plugin.PluginUtils;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * A user's active-passive jar job as rtdi's handover contract asks it to be written
 * (README "A handover savepoint"): the operator uids of its Kafka source and its Kafka sink name
 * the region from RTDI_REGION, so that a savepoint taken in another region leaves their state
 * unclaimed: the source's offsets and the sink's pending transactions belong to the other
 * region's cluster (restored, the sink's committer fails on its producer ids there:
 * InvalidPidMappingException). The source then starts from the group offsets the drill
 * translated, and every other operator keeps its uid, and its state: here a running count of
 * payments per rider, written with every payment. Restored, the counts go on; lost, they start
 * over.
 *
 * <p>Used by tests/integration/test_flink_flip.py, compiled there against Flink's lib and the
 * runner jar (which carries the Kafka connector).
 */
public final class LedgerJob {
  private LedgerJob() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> opts = new HashMap<>();
    Configuration conf = new Configuration();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (args[i].equals("--conf")) {
        String[] kv = args[i + 1].split("=", 2);
        conf.setString(kv[0], kv[1]);
      } else {
        opts.put(args[i].substring(2), args[i + 1]);
      }
    }
    String region = System.getenv("RTDI_REGION");
    if (region == null || region.isEmpty()) {
      throw new IllegalStateException("RTDI_REGION is not set");
    }
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
    KafkaSource<String> source =
        KafkaSource.<String>builder()
            .setBootstrapServers(opts.get("bootstrap"))
            .setTopics(opts.get("source"))
            .setGroupId(opts.get("group"))
            .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
            .setValueOnlyDeserializer(new SimpleStringSchema())
            .setProperty("isolation.level", "read_committed")
            .build();
    KafkaSink<String> sink =
        KafkaSink.<String>builder()
            .setBootstrapServers(opts.get("bootstrap"))
            .setRecordSerializer(
                KafkaRecordSerializationSchema.builder()
                    .setTopic(opts.get("sink"))
                    .setValueSerializationSchema(new SimpleStringSchema())
                    .build())
            .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
            .setTransactionalIdPrefix(opts.get("prefix"))
            .setProperty("transaction.timeout.ms", "60000")
            .build();
    env.fromSource(source, WatermarkStrategy.noWatermarks(), "payment-events")
        .uid("payment-events-" + region)
        .keyBy(LedgerJob::rider)
        .process(new Count())
        .uid("count-per-rider")
        .sinkTo(sink)
        .uid("ledger-" + region);
    if (conf.contains(DeploymentOptions.TARGET)) {
      env.execute("ledger"); // application mode: the cluster entrypoint owns the process
      return;
    }
    // Locally (a MiniCluster in this JVM) nothing else loads the file system plugins (the
    // cluster entrypoint does in a pod), and the MiniCluster's threads would keep the JVM alive:
    // load them, and end the JVM with the job, as the SQL runner does.
    FileSystem.initialize(conf, PluginUtils.createPluginManagerFromRootFolder(conf));
    int code = 0;
    try {
      env.execute("ledger");
    } catch (Exception e) {
      e.printStackTrace();
      code = 1;
    }
    System.exit(code);
  }

  private static final ObjectMapper JSON = new ObjectMapper();

  static String rider(String payment) throws Exception {
    return JSON.readTree(payment).get("rider_id").asText();
  }

  /** Each payment with the rider's count so far, kept in keyed state. */
  static final class Count extends KeyedProcessFunction<String, String, String> {
    private transient ValueState<Long> seen;

    @Override
    public void open(org.apache.flink.api.common.functions.OpenContext context) {
      seen = getRuntimeContext().getState(new ValueStateDescriptor<>("seen", Long.class));
    }

    @Override
    public void processElement(String payment, Context ctx, Collector<String> out)
        throws Exception {
      long n = (seen.value() == null ? 0 : seen.value()) + 1;
      seen.update(n);
      ObjectNode row = (ObjectNode) JSON.readTree(payment);
      row.put("n", n);
      out.collect(JSON.writeValueAsString(row));
    }
  }
}
