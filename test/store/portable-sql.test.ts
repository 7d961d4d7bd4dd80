// The guard of the SQL both engines run (issue 20): every statement the store classes send through the SqlDatabase
// seam must mean the same on SQLite and on PostgreSQL. This reads the SQL string literals of those files (through
// the TypeScript parser, so comments that name a forbidden construct to explain it do not count) and fails on the
// constructs that only one engine runs, or that both run differently.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Where SQL is written against the seam. Left out: the SQLite engine itself and each engine's own DDL. */
function scannedFiles(): string[] {
  const store = readdirSync(path.join(ROOT, 'src/store'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join('src/store', f))
    .filter((f) => !/^src\/store\/(sqlite-database\.ts|migrations\/|postgres\/)/.test(f.split(path.sep).join('/')));
  return [
    ...store,
    'src/maintenance/retention.ts',
    'src/admin/auth-service.ts',
    'src/export/audit-forwarder.ts',
    'src/cli/admin-command.ts',
  ].sort();
}

/** A string literal that holds SQL: a statement, or a WHERE fragment such as `s.state = ?`. */
const SQL_TEXT =
  /\b(SELECT|INSERT|REPLACE INTO|DELETE FROM|WHERE|EXISTS|ORDER BY|GROUP BY)\b|\bUPDATE \w+ SET\b|^\s*[\w."]+ (=|!=|<|<=|>|>=) \?\s*$/;

/** better-sqlite3's own API, which the PostgreSQL side does not have (`INSERT ... RETURNING id` gives the id). */
const SQLITE_API = new Set(['lastInsertRowid', 'pragma', 'Database']);

/**
 * Every string literal of a file (template parts joined with a stand-in for each `${}`), with its line; and the
 * uses of better-sqlite3's own API.
 */
function stringLiterals(file: string): { literals: Array<{ line: number; text: string }>; sqliteApi: string[] } {
  const source = ts.createSourceFile(file, readFileSync(path.join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Array<{ line: number; text: string }> = [];
  const sqliteApi: string[] = [];
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && SQLITE_API.has(node.text)) sqliteApi.push(`${file}:${lineOf(node)}: ${node.text}`);
    if (
      ts.isImportDeclaration(node) &&
      ts.isStringLiteral(node.moduleSpecifier) &&
      node.moduleSpecifier.text === 'better-sqlite3'
    )
      sqliteApi.push(`${file}:${lineOf(node)}: imports better-sqlite3`);
    let text: string | undefined;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) text = node.text;
    else if (ts.isTemplateExpression(node))
      text = node.head.text + node.templateSpans.map((s) => ` expr ${s.literal.text}`).join('');
    if (text !== undefined) {
      found.push({ line: lineOf(node), text });
      if (ts.isTemplateExpression(node)) node.templateSpans.forEach((s) => visit(s.expression));
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { literals: found, sqliteApi };
}

/** The arguments of each call of `name(...)` in `sql`, parentheses matched. */
function callArguments(sql: string, name: string): string[] {
  const args: string[] = [];
  const call = new RegExp(`\\b${name}\\s*\\(`, 'gi');
  for (let m = call.exec(sql); m !== null; m = call.exec(sql)) {
    let depth = 1;
    let i = m.index + m[0].length;
    const start = i;
    for (; i < sql.length && depth > 0; i += 1) {
      if (sql[i] === '(') depth += 1;
      else if (sql[i] === ')') depth -= 1;
    }
    args.push(sql.slice(start, i - 1));
  }
  return args;
}

/** `text` with every parenthesised part removed: what is left is the top level of an argument list. */
function topLevel(text: string): string {
  let out = '';
  let depth = 0;
  for (const c of text) {
    if (c === '(') depth += 1;
    else if (c === ')') depth -= 1;
    else if (depth === 0) out += c;
  }
  return out;
}

const ENGINE_FUNCTIONS = [
  'json_each',
  'json_tree',
  'json_extract',
  'json_object',
  'json_array',
  'json_group_array',
  'json_group_object',
  'ifnull',
  'iif',
  'strftime',
  'datetime',
  'julianday',
  'unixepoch',
  'date',
  'time',
  'group_concat',
  'string_agg',
  'instr',
  'printf',
  'format',
  'typeof',
  'last_insert_rowid',
  'changes',
  'total',
  'hex',
  'quote',
  'randomblob',
  'zeroblob',
  'greatest',
  'least',
  'now',
  'to_char',
  'jsonb_extract_path_text',
];

/** What in one SQL text only one engine runs, or both run differently; [] when it is portable. */
export function portabilityProblems(sql: string): string[] {
  // String literals ('...', '' inside) say nothing about the engine: blanked before anything is looked at.
  const code = sql.replace(/'(?:[^']|'')*'/g, "''");
  const unquoted = code.replace(/"[^"]*"/g, '""');
  const problems: string[] = [];
  const flag = (re: RegExp, why: string) => {
    if (re.test(unquoted)) problems.push(why);
  };
  flag(/\bINSERT\s+OR\s+(IGNORE|REPLACE|ABORT|FAIL|ROLLBACK)\b|\bREPLACE\s+INTO\b/i, 'INSERT OR ...: use ON CONFLICT');
  flag(/\bPRAGMA\b/i, 'PRAGMA: SQLite only (SqliteDatabase and its migration runner)');
  flag(/\b(_?rowid_?|oid|ctid)\b/i, 'rowid: no such column on PostgreSQL; order by a real column');
  for (const name of ENGINE_FUNCTIONS)
    flag(new RegExp(`\\b${name}\\s*\\(`, 'i'), `${name}(): a function of one engine only`);
  flag(/->>?/, '-> / ->>: JSON operators differ between the engines');
  flag(/::/, ':: casts: PostgreSQL only; use CAST(x AS type)');
  flag(/\b(LIKE|GLOB|REGEXP|ILIKE|MATCH)\b/i, "LIKE and friends: SQLite's ignores ASCII case, PostgreSQL's does not");
  flag(/\b(TRUE|FALSE)\b/i, 'TRUE/FALSE: flags are INTEGER 0/1 on both engines; compare with = 1 / = 0');
  flag(/==/, '==: SQLite only; use =');
  flag(/\bLIMIT\s+[^\s,]+\s*,/i, "LIMIT a, b: SQLite's form; use LIMIT ? OFFSET ?");
  flag(
    /\?\s+IS\s+(NOT\s+)?NULL\b/i,
    '? IS NULL: PostgreSQL cannot tell the type of such a parameter; build the clause',
  );
  flag(/\bAUTOINCREMENT\b|\bSERIAL\b/i, 'DDL belongs to each engine’s migrations');
  flag(/\buser\b/i, 'user: a reserved word on PostgreSQL (CURRENT_USER); write the column "user"');
  flag(/\bAS\s+[a-z_]*[A-Z]\w*/, 'a camelCase alias: PostgreSQL folds it to lower case unless it is "quoted"');
  for (const name of ['MAX', 'MIN'])
    for (const args of callArguments(unquoted, name))
      if (topLevel(args).includes(','))
        problems.push(`${name}(a, b): SQLite's scalar form; PostgreSQL has only the aggregate (use CASE)`);
  for (const name of ['SUM', 'AVG', 'COUNT'])
    for (const args of callArguments(unquoted, name))
      if (!/^\s*CASE\b/i.test(args) && /(=|<|>|\bIS\b|\bIN\b|\bNOT\b|\bAND\b|\bOR\b)/i.test(topLevel(args)))
        problems.push(`${name}(a comparison): PostgreSQL does not add booleans; use CASE WHEN ... THEN 1 ELSE 0 END`);
  // Quoted identifiers are for what needs them: the reserved "user", a camelCase alias. Anything else in double
  // quotes is most likely text, which SQLite takes and PostgreSQL reads as a column name.
  for (const quoted of code.match(/"[^"]*"/g) ?? [])
    if (!/^"(user|[a-z_]*[A-Z]\w*)"$/.test(quoted))
      problems.push(`${quoted}: text in double quotes is an identifier on PostgreSQL; quote text with '`);
  return problems;
}

test('the guard catches each construct that only one engine runs', (t) => {
  const bad = [
    'INSERT OR IGNORE INTO users (name) VALUES (?)',
    'INSERT OR REPLACE INTO users (name) VALUES (?)',
    'REPLACE INTO users (name) VALUES (?)',
    'PRAGMA user_version',
    'SELECT a FROM t ORDER BY at, rowid',
    'SELECT value FROM json_each(?)',
    "SELECT json_extract(attributes, '$.a') FROM instances",
    "SELECT attributes->>'a' FROM instances",
    'SELECT IFNULL(a, 0) FROM t',
    "SELECT strftime('%s', 'now')",
    "SELECT datetime('now')",
    'SELECT GROUP_CONCAT(a) FROM t',
    'UPDATE t SET a = MAX(a, ?)',
    "SELECT SUM(state = 'pending') AS n FROM deliveries",
    "SELECT COUNT(state = 'pending' OR x) AS n FROM deliveries",
    'SELECT a FROM t WHERE b LIKE ?',
    'SELECT a FROM t WHERE disabled = TRUE',
    'SELECT a FROM t WHERE b == ?',
    'SELECT a FROM t LIMIT 5, 10',
    'SELECT a FROM t WHERE (? IS NULL OR a = ?)',
    'SELECT a::text FROM t',
    'DELETE FROM sessions WHERE user = ?',
    'SELECT s.user FROM sessions s',
    'SELECT MIN(at) AS oldestAt FROM t',
    'SELECT a FROM t WHERE b = "text"',
    'SELECT GREATEST(a, b) FROM t',
  ];
  for (const sql of bad) t.not(portabilityProblems(sql).length, 0, sql);
});

test('the guard passes the portable forms', (t) => {
  const good = [
    'INSERT INTO users (name) VALUES (?) ON CONFLICT (name) DO NOTHING',
    'INSERT INTO jobs (a) VALUES (?) RETURNING id',
    "SELECT SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending FROM deliveries",
    'SELECT COUNT(*) AS n, MAX(at) AS at, COALESCE(MAX(id), 0) AS id FROM audit_events',
    'UPDATE t SET last_id = CASE WHEN last_id > ? THEN last_id ELSE ? END',
    'DELETE FROM sessions WHERE "user" = ?',
    'SELECT s."user", MIN(e.at) AS "oldestAt" FROM sessions s',
    "SELECT a FROM t WHERE reason = 'user LIKE rowid'",
    "SELECT a FROM t WHERE replace(attributes, ?, '') != attributes ORDER BY priority = 'urgent' DESC LIMIT ? OFFSET ?",
    'SELECT a FROM t WHERE b NOT IN (?, ?)',
  ];
  for (const sql of good) t.deepEqual(portabilityProblems(sql), [], sql);
});

test('every SQL statement of the store classes, retention, console auth, the audit forwarder and admin-command runs on both engines', (t) => {
  const files = scannedFiles();
  t.true(files.includes('src/store/pipeline-store.ts') && files.includes('src/store/console-store.ts'));
  t.false(files.includes('src/store/sqlite-database.ts'));
  const problems: string[] = [];
  let statements = 0;
  for (const file of files) {
    const { literals, sqliteApi } = stringLiterals(file);
    problems.push(...sqliteApi.map((use) => `${use}: better-sqlite3's API, not the seam's`));
    for (const { line, text } of literals) {
      if (!SQL_TEXT.test(text)) continue;
      statements += 1;
      for (const problem of portabilityProblems(text)) problems.push(`${file}:${line}: ${problem}`);
    }
  }
  t.deepEqual(problems, []);
  // A parser that found no SQL would pass the line above: the files hold well over a hundred statements.
  t.true(statements > 100, `only ${statements} SQL strings found`);
});
