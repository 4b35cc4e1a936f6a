package io.rtdi.flink;

import java.util.ArrayList;
import java.util.List;

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

  private SqlScript() {}

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
