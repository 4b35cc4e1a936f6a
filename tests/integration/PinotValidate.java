// Apache Pinot's own table and schema validator, for tests/integration/test_pinot_validator.py.
//
//   java -cp '.cache/pinot/<version>/jars/*' tests/integration/PinotValidate.java PAIRS.jsonl
//
// PAIRS.jsonl holds one JSON object per line: {"table": <TableConfig JSON>, "schema": <Schema
// JSON>}. For each line this prints one line: "ok", or "refused: " and Pinot's reasons (the
// exception and its causes, joined by " <- "). It runs exactly what the controller runs before
// accepting a schema and a table: SchemaUtils.validate(schema), then
// TableConfigUtils.validateTableName and TableConfigUtils.validate(tableConfig, schema), after
// the same JSON deserialization. One JVM
// checks every pair (a start takes about 2 s), so the test runs it once per session.

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.pinot.segment.local.utils.SchemaUtils;
import org.apache.pinot.segment.local.utils.TableConfigUtils;
import org.apache.pinot.spi.config.table.TableConfig;
import org.apache.pinot.spi.data.Schema;
import org.apache.pinot.spi.utils.JsonUtils;

public class PinotValidate {
  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: PinotValidate PAIRS.jsonl");
      System.exit(2);
    }
    StringBuilder out = new StringBuilder();
    for (String line : Files.readAllLines(Path.of(args[0]), StandardCharsets.UTF_8)) {
      if (line.isBlank()) {
        continue;
      }
      out.append(check(line)).append('\n');
    }
    System.out.print(out);
    System.out.flush();
  }

  static String check(String line) {
    try {
      JsonNode pair = JsonUtils.stringToJsonNode(line);
      Schema schema = Schema.fromString(pair.get("schema").toString());
      SchemaUtils.validate(schema);
      TableConfig table = JsonUtils.stringToObject(pair.get("table").toString(), TableConfig.class);
      TableConfigUtils.validateTableName(table);
      TableConfigUtils.validate(table, schema);
      return "ok";
    } catch (Throwable e) {
      StringBuilder reason = new StringBuilder("refused: ");
      for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
        if (t != e) {
          reason.append(" <- ");
        }
        String message = t.getMessage();
        reason.append(message == null ? t.getClass().getName() : message);
      }
      return reason.toString().replaceAll("\\s+", " ");
    }
  }
}
