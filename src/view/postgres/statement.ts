/**
 * A small lexer over a query's SQL text, enough to look at its words without being fooled by what
 * is not code: string literals ('…', E'…', $tag$…$tag$), quoted names ("…") and comments (-- …,
 * nested /* … *\/). Used to refuse writes before a statement is sent (./readers.ts) and to turn
 * SQLite-style `?` parameters into PostgreSQL's `$1, $2, …`.
 *
 * It is not a parser: a word counts wherever it stands. So a column named like a writing command
 * (`update`) must be quoted in a query ("update"), which PostgreSQL's own grammar asks for most of
 * them anyway.
 */

/**
 * Words of commands that write or change the session, refused wherever they stand (`SELECT … INTO`
 * and `FOR UPDATE` too). Statements that can only come first (SET, BEGIN, DO, …) are refused by
 * the first-word check instead, so a column may be called `start` or `comment`.
 */
const WRITING = new Set(
  'insert update delete merge truncate create drop alter grant revoke copy call lock vacuum reindex refresh listen notify discard into'.split(
    ' ',
  ),
);

interface Token {
  kind: 'word' | 'param' | 'other';
  text: string;
  start: number;
  end: number;
}

/** The words, `?` marks and other characters of `sql` outside literals, quoted names and comments. */
function* tokens(sql: string): Generator<Token> {
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
    } else if (ch === '/' && next === '*') i = skipBlockComment(sql, i);
    else if (ch === "'") i = skipQuoted(sql, i, "'", /[eE]$/.test(sql.slice(0, i)));
    else if (ch === '"') i = skipQuoted(sql, i, '"', false);
    else if (ch === '$' && /[A-Za-z_$]/.test(next ?? '') && /^\$[A-Za-z_]*\$/.test(sql.slice(i))) {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i))![0];
      const end = sql.indexOf(tag, i + tag.length);
      i = end === -1 ? sql.length : end + tag.length;
    } else if (/[A-Za-z_]/.test(ch)) {
      const start = i;
      while (i < sql.length && /[A-Za-z0-9_$]/.test(sql[i])) i++;
      yield { kind: 'word', text: sql.slice(start, i).toLowerCase(), start, end: i };
    } else {
      yield { kind: ch === '?' ? 'param' : 'other', text: ch, start: i, end: i + 1 };
      i++;
    }
  }
}

function skipBlockComment(sql: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return i;
}

/** Past a quoted literal or name; a doubled quote is part of it, and in E'…' a backslash escapes. */
function skipQuoted(sql: string, from: number, quote: string, backslashes: boolean): number {
  let i = from + 1;
  while (i < sql.length) {
    if (backslashes && sql[i] === '\\') i += 2;
    else if (sql[i] === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return i;
}

/** The first word of the statement, lower-cased, past whitespace, comments and opening parentheses; null if none. */
export function firstKeyword(sql: string): string | null {
  for (const t of tokens(sql)) {
    if (t.kind === 'word') return t.text;
    if (t.text !== '(' && !/\s/.test(t.text)) return null;
  }
  return null;
}

/** The first writing command named anywhere in the statement (see WRITING), or null. */
export function writingKeyword(sql: string): string | null {
  for (const t of tokens(sql)) if (t.kind === 'word' && WRITING.has(t.text)) return t.text;
  // FOR UPDATE / FOR SHARE lock rows, which a read-only transaction refuses anyway.
  return null;
}

/** `?` parameters numbered as PostgreSQL's `$1, $2, …` (text with `$n` already, or no `?`, is left as it is). */
export function numberPlaceholders(sql: string): string {
  if (!sql.includes('?') || /\$[0-9]/.test(sql)) return sql;
  let out = '';
  let last = 0;
  let n = 0;
  for (const t of tokens(sql)) {
    if (t.kind !== 'param') continue;
    // `?|` and `?&` are jsonb operators, and a `?` right after an operator character is one too.
    if (sql[t.end] === '|' || sql[t.end] === '&') continue;
    out += `${sql.slice(last, t.start)}$${++n}`;
    last = t.end;
  }
  return out + sql.slice(last);
}
