package io.rtdi.flink;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits a SQL script into statements on the semicolons that end them.
 *
 * <p>A semicolon inside a string literal ('a;b', with '' as an escaped quote), a quoted identifier
 * (`a;b` or "a;b"), a line comment (-- ...) or a block comment (/* ... *&#47;) does not end a
 * statement; comments are dropped from the statement text so that a statement's kind is read from
 * its first word. Each statement keeps the line it starts on, so errors can point at it.
 */
final class SqlScript {

  /** One statement of the script: its text without comments and the 1-based line it starts on. */
  record Statement(String sql, int line) {
    /** The first keyword, upper case ("INSERT", "SET", "CREATE", ...). */
    String keyword() {
      String trimmed = sql.strip();
      int end = 0;
      while (end < trimmed.length() && Character.isLetter(trimmed.charAt(end))) {
        end++;
      }
      return trimmed.substring(0, end).toUpperCase(java.util.Locale.ROOT);
    }
  }

  /** A script that cannot be split: an unterminated literal, identifier or comment. */
  static final class ParseException extends Exception {
    ParseException(String message) {
      super(message);
    }
  }

  /**
   * A {@code ${env:NAME}} placeholder: how rtdi writes a secret (a Kafka password) into a script
   * that lives in a ConfigMap, for the pod's env (from a Secret) to fill in.
   */
  static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{env:([A-Za-z_][A-Za-z0-9_]*)\\}");

  /** The statements with their placeholders filled, and the values used (to redact). */
  record Substituted(List<Statement> statements, Set<String> values) {}

  private SqlScript() {}

  /**
   * Replaces every {@code ${env:NAME}} in the statements by the variable's value in {@code env}.
   *
   * <p>rtdi writes placeholders only inside SQL string literals (a table's WITH options), so a
   * quote in a value is doubled, as the literal needs. A variable not set is refused with the
   * line it is on and its name, never a value: a secret must not reach a log.
   */
  static Substituted substitute(List<Statement> statements, Map<String, String> env)
      throws ParseException {
    List<Statement> out = new ArrayList<>();
    Set<String> values = new LinkedHashSet<>();
    for (Statement s : statements) {
      Matcher m = PLACEHOLDER.matcher(s.sql());
      StringBuilder text = new StringBuilder();
      while (m.find()) {
        String name = m.group(1);
        String value = env.get(name);
        if (value == null) {
          int line = s.line() + count(s.sql(), 0, m.start(), '\n');
          throw new ParseException(
              "line "
                  + line
                  + ": ${env:"
                  + name
                  + "} is not set: the environment variable "
                  + name
                  + " must hold it (the pod's env, from the job's Kafka Secret)");
        }
        if (!value.isEmpty()) {
          values.add(value);
        }
        m.appendReplacement(text, Matcher.quoteReplacement(value.replace("'", "''")));
      }
      m.appendTail(text);
      out.add(new Statement(text.toString(), s.line()));
    }
    return new Substituted(out, values);
  }

  /** {@code message} with every substituted value masked: Flink's errors may quote a statement. */
  static String redact(String message, Set<String> values) {
    String out = message;
    for (String v : values) {
      out = out.replace(v, "******");
      String quoted = v.replace("'", "''");
      if (!quoted.equals(v)) {
        out = out.replace(quoted, "******");
      }
    }
    return out;
  }

  static List<Statement> split(String script) throws ParseException {
    List<Statement> out = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    int line = 1;
    int startLine = -1;
    int i = 0;
    int n = script.length();
    while (i < n) {
      char c = script.charAt(i);
      char next = i + 1 < n ? script.charAt(i + 1) : '\0';
      if (c == '-' && next == '-') {
        while (i < n && script.charAt(i) != '\n') {
          i++;
        }
        continue;
      }
      if (c == '/' && next == '*') {
        int opened = line;
        int close = script.indexOf("*/", i + 2);
        if (close < 0) {
          throw new ParseException("line " + opened + ": a /* comment is never closed with */");
        }
        line += count(script, i, close, '\n');
        current.append(' ');
        i = close + 2;
        continue;
      }
      if (c == '\'' || c == '`' || c == '"') {
        int opened = line;
        int j = i + 1;
        while (true) {
          if (j >= n) {
            String what = c == '\'' ? "string literal" : "quoted identifier";
            throw new ParseException(
                "line " + opened + ": a " + what + " opened with " + c + " is never closed");
          }
          if (script.charAt(j) == c) {
            if (j + 1 < n && script.charAt(j + 1) == c) {
              j += 2; // a doubled quote stands for the quote itself
              continue;
            }
            break;
          }
          j++;
        }
        if (startLine < 0) {
          startLine = opened;
        }
        line += count(script, i, j, '\n');
        current.append(script, i, j + 1);
        i = j + 1;
        continue;
      }
      if (c == ';') {
        add(out, current, startLine);
        current.setLength(0);
        startLine = -1;
        i++;
        continue;
      }
      if (c == '\n') {
        line++;
      } else if (startLine < 0 && !Character.isWhitespace(c)) {
        startLine = line;
      }
      current.append(c);
      i++;
    }
    add(out, current, startLine);
    return out;
  }

  private static void add(List<Statement> out, StringBuilder text, int line) {
    String sql = text.toString().strip();
    if (!sql.isEmpty()) {
      out.add(new Statement(sql, line));
    }
  }

  private static int count(String s, int from, int to, char c) {
    int k = 0;
    for (int i = from; i < to; i++) {
      if (s.charAt(i) == c) {
        k++;
      }
    }
    return k;
  }
}
