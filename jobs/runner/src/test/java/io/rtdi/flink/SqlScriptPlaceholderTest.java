package io.rtdi.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The runner fills {@code ${env:NAME}} placeholders from its environment, and says no clearly. */
class SqlScriptPlaceholderTest {

  private static final String SCRIPT =
      "-- a job\n"
          + "CREATE TABLE src (x INT) WITH (\n"
          + "  'connector' = 'kafka',\n"
          + "  'properties.sasl.jaas.config' = 'ScramLoginModule required username=\"u\""
          + " password=\"${env:KAFKA_AGGREGATE_PASSWORD}\";'\n"
          + ");\n"
          + "INSERT INTO snk SELECT x FROM src;\n";

  @Test
  void placeholdersAreFilledInsideTheirLiteral() throws Exception {
    SqlScript.Substituted filled =
        SqlScript.substitute(
            SqlScript.split(SCRIPT), Map.of("KAFKA_AGGREGATE_PASSWORD", "s3cr'et"));
    List<SqlScript.Statement> statements = filled.statements();
    assertEquals(2, statements.size());
    String ddl = statements.get(0).sql();
    // A quote in a value is doubled: the literal stays one literal.
    assertTrue(ddl.contains("password=\"s3cr''et\";'"), ddl);
    assertFalse(ddl.contains("${env:"), ddl);
    assertEquals(2, statements.get(0).line());
    assertEquals("INSERT INTO snk SELECT x FROM src", statements.get(1).sql());
    assertEquals(Set.of("s3cr'et"), filled.values());
  }

  @Test
  void aScriptWithoutPlaceholdersIsUnchanged() throws Exception {
    List<SqlScript.Statement> split = SqlScript.split("INSERT INTO t SELECT '$' || '{env:X}';");
    assertEquals(split, SqlScript.substitute(split, Map.of()).statements());
  }

  @Test
  void aMissingVariableNamesItsLineAndNameButNoValue() throws Exception {
    SqlScript.ParseException e =
        assertThrows(
            SqlScript.ParseException.class,
            () -> SqlScript.substitute(SqlScript.split(SCRIPT), Map.of("OTHER", "x")));
    assertTrue(e.getMessage().startsWith("line 4: ${env:KAFKA_AGGREGATE_PASSWORD} is not set"));
  }

  @Test
  void theRunnerRefusesAMissingVariableWithTheFileInOneLine(@TempDir Path dir) throws Exception {
    Path file = dir.resolve("job.sql");
    Files.writeString(file, SCRIPT);
    SqlRunner.BadInput e =
        assertThrows(SqlRunner.BadInput.class, () -> SqlRunner.load(file, Map.of()));
    assertTrue(e.getMessage().startsWith(file + ": line 4: ${env:KAFKA_AGGREGATE_PASSWORD}"));
    assertFalse(e.getMessage().contains("\n"));
  }

  @Test
  void substitutedValuesAreMaskedInMessages() {
    String message = "cannot parse 'password=\"s3cr''et\"' near s3cr'et";
    assertEquals(
        "cannot parse 'password=\"******\"' near ******",
        SqlScript.redact(message, Set.of("s3cr'et")));
  }
}
