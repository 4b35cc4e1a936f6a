package io.rtdi.flink;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.DeploymentOptions;
import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.core.fs.FileSystem;
import org.apache.flink.core.plugin.PluginUtils;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.StatementSet;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

/**
 * rtdi's Flink SQL runner: runs one SQL script as one Flink job.
 *
 * <p>Arguments: {@code --sql-file PATH} (statements separated by ';': SET, RESET, CREATE/ALTER/DROP
 * TABLE, VIEW, FUNCTION ..., and one or more INSERT INTO) and repeatable {@code --conf key=value}.
 * SET and DDL run in order; every INSERT is collected into one statement set, so the script is one
 * job with one checkpoint and one restore point, whatever the number of sinks.
 *
 * <p>In Kubernetes (application mode) the operator writes the FlinkDeployment's flinkConfiguration
 * into the Flink configuration, the runner submits the statement set and returns: the cluster owns
 * the job. Locally (no {@code execution.target}, as in the integration test) the job runs on a
 * MiniCluster in this JVM; the runner waits for it and ends the JVM with System.exit, because
 * Hadoop/S3 client threads would otherwise keep it alive for a minute.
 *
 * <p>Secrets reach the script as {@code ${env:NAME}} placeholders (rtdi keeps the script in a
 * ConfigMap and the values in Secrets the pod's env reads): the runner fills them from its
 * environment before anything runs, and masks their values in every message it prints.
 *
 * <p>Bad input (missing file, unsplittable script, no INSERT, a placeholder whose variable is not
 * set, a statement Flink refuses) is one line on stderr naming the file, the statement's line and
 * the reason; exit code 2.
 */
public final class SqlRunner {

  static final int EXIT_BAD_INPUT = 2;
  static final int EXIT_JOB_FAILED = 1;
  private static final Pattern SET =
      Pattern.compile("(?is)SET\\s+'((?:[^']|'')*)'\\s*=\\s*'((?:[^']|'')*)'");
  private static final Pattern RESET = Pattern.compile("(?is)RESET\\s+'((?:[^']|'')*)'");

  /** Input the runner refuses: the message is the whole story, printed as one line. */
  static final class BadInput extends Exception {
    BadInput(String message) {
      super(message);
    }
  }

  /** The parsed command line. */
  record Args(Path sqlFile, Map<String, String> conf) {}

  /** The values substituted for placeholders: masked in whatever the runner prints. */
  private static Set<String> secrets = Set.of();

  private SqlRunner() {}

  public static void main(String[] argv) throws Exception {
    Args args;
    List<SqlScript.Statement> statements;
    try {
      args = parseArgs(argv);
      statements = load(args.sqlFile());
    } catch (BadInput e) {
      System.err.println("rtdi-sql-runner: " + SqlScript.redact(e.getMessage(), secrets));
      System.exit(EXIT_BAD_INPUT);
      return;
    }
    Configuration conf = configuration(args.conf());
    boolean local = !conf.contains(DeploymentOptions.TARGET);
    if (!local) {
      // The cluster entrypoint owns the process: exceptions go to Flink, never System.exit.
      run(args.sqlFile(), statements, conf, false);
      return;
    }
    int code;
    try {
      code = run(args.sqlFile(), statements, conf, true);
    } catch (BadInput e) {
      System.err.println("rtdi-sql-runner: " + SqlScript.redact(e.getMessage(), secrets));
      code = EXIT_BAD_INPUT;
    } catch (Throwable t) {
      System.err.println(
          "rtdi-sql-runner: the job failed: " + SqlScript.redact(rootMessage(t), secrets));
      t.printStackTrace();
      code = EXIT_JOB_FAILED;
    }
    System.exit(code);
  }

  static Args parseArgs(String[] argv) throws BadInput {
    Path sqlFile = null;
    Map<String, String> conf = new LinkedHashMap<>();
    for (int i = 0; i < argv.length; i++) {
      String arg = argv[i];
      switch (arg) {
        case "--sql-file" -> {
          if (i + 1 >= argv.length) {
            throw new BadInput("--sql-file needs a path");
          }
          sqlFile = Path.of(argv[++i]);
        }
        case "--conf" -> {
          if (i + 1 >= argv.length) {
            throw new BadInput("--conf needs key=value");
          }
          String kv = argv[++i];
          int eq = kv.indexOf('=');
          if (eq <= 0) {
            throw new BadInput("--conf '" + kv + "' is not key=value");
          }
          conf.put(kv.substring(0, eq).strip(), kv.substring(eq + 1).strip());
        }
        default ->
            throw new BadInput(
                "unknown argument '" + arg + "': allowed are --sql-file PATH and --conf key=value");
      }
    }
    if (sqlFile == null) {
      throw new BadInput("--sql-file PATH is required (the SQL script of the job)");
    }
    return new Args(sqlFile, conf);
  }

  /** Reads and splits the script and checks its shape before Flink sees anything. */
  static List<SqlScript.Statement> load(Path file) throws BadInput {
    return load(file, System.getenv());
  }

  /** {@link #load(Path)} with {@code env} for the placeholders. */
  static List<SqlScript.Statement> load(Path file, Map<String, String> env) throws BadInput {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new BadInput(file + ": no such file (--sql-file)");
    } catch (IOException e) {
      throw new BadInput(file + ": cannot be read: " + e.getMessage());
    }
    List<SqlScript.Statement> statements;
    try {
      SqlScript.Substituted filled = SqlScript.substitute(SqlScript.split(text), env);
      statements = filled.statements();
      secrets = filled.values();
    } catch (SqlScript.ParseException e) {
      throw new BadInput(file + ": " + e.getMessage());
    }
    boolean insert = false;
    for (SqlScript.Statement s : statements) {
      String kw = s.keyword();
      if (kw.equals("EXECUTE") || kw.equals("BEGIN") || kw.equals("END")) {
        throw new BadInput(
            file
                + ": line "
                + s.line()
                + ": "
                + kw
                + " is not needed: write plain INSERT INTO statements, the runner submits them"
                + " all as one statement set");
      }
      if (kw.equals("SELECT") || kw.equals("WITH")) {
        throw new BadInput(
            file
                + ": line "
                + s.line()
                + ": a bare query has no sink: a job writes with INSERT INTO <table> SELECT ...");
      }
      insert |= kw.equals("INSERT");
    }
    if (!insert) {
      throw new BadInput(
          file + ": no INSERT INTO statement: a job needs at least one sink to write to");
    }
    return statements;
  }

  /** The Flink configuration (FLINK_CONF_DIR when set) with the --conf overrides on top. */
  static Configuration configuration(Map<String, String> overrides) {
    Configuration conf =
        System.getenv("FLINK_CONF_DIR") != null
            ? GlobalConfiguration.loadConfiguration()
            : new Configuration();
    overrides.forEach(conf::setString);
    return conf;
  }

  static int run(Path file, List<SqlScript.Statement> statements, Configuration conf, boolean local)
      throws BadInput, Exception {
    if (local) {
      // A cluster entrypoint loads the file system plugins (s3p://, s3a://, gs://) from
      // FLINK_PLUGINS_DIR; an in-JVM MiniCluster does not, so the runner does it.
      FileSystem.initialize(conf, PluginUtils.createPluginManagerFromRootFolder(conf));
    }
    TableEnvironment tEnv =
        TableEnvironment.create(
            EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(conf).build());
    StatementSet inserts = tEnv.createStatementSet();
    List<String> sinks = new ArrayList<>();
    for (SqlScript.Statement s : statements) {
      String kw = s.keyword();
      try {
        Matcher set = SET.matcher(s.sql());
        Matcher reset = RESET.matcher(s.sql());
        if (kw.equals("SET") && set.matches()) {
          tEnv.getConfig().getConfiguration().setString(unquote(set.group(1)), unquote(set.group(2)));
        } else if (kw.equals("SET")) {
          throw new BadInput(
              file + ": line " + s.line() + ": SET must read SET 'key' = 'value'");
        } else if (kw.equals("RESET") && reset.matches()) {
          tEnv.getConfig().getConfiguration().removeKey(unquote(reset.group(1)));
        } else if (kw.equals("INSERT")) {
          inserts.addInsertSql(s.sql());
          sinks.add("line " + s.line());
        } else {
          tEnv.executeSql(s.sql());
        }
      } catch (BadInput e) {
        throw e;
      } catch (RuntimeException e) {
        throw new BadInput(
            file + ": line " + s.line() + ": Flink refused the statement: " + rootMessage(e));
      }
    }
    TableResult result;
    try {
      // Planning the INSERTs (sink tables, connectors, types) happens here, before submission.
      result = inserts.execute();
    } catch (RuntimeException e) {
      throw new BadInput(
          file
              + ": the INSERT statements at "
              + String.join(", ", sinks)
              + " were refused: "
              + rootMessage(e));
    }
    String jobId = result.getJobClient().map(c -> c.getJobID().toString()).orElse("?");
    System.err.println(
        "rtdi-sql-runner: submitted job "
            + jobId
            + " with "
            + sinks.size()
            + " INSERT statement(s) from "
            + file);
    if (local) {
      result.await();
    }
    return 0;
  }

  private static String unquote(String s) {
    return s.replace("''", "'");
  }

  /** The innermost cause's message on one line: Flink wraps the useful part deep. */
  static String rootMessage(Throwable t) {
    Throwable root = t;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String msg = root.getMessage() == null ? "" : root.getMessage().replaceAll("\\s+", " ").strip();
    if (msg.isEmpty()) {
      return root.getClass().getName();
    }
    // A missing class says only its name: say that it is missing (a jar not in the image).
    return root instanceof LinkageError || root instanceof ClassNotFoundException
        ? root.getClass().getSimpleName() + ": " + msg
        : msg;
  }
}
