/**
 * A tagged template over a Durable Object's SQLite:
 *
 *   sql<{ n: number }>`SELECT count(*) AS n FROM holds WHERE account_id = ${accountId}`.one()
 *
 * Every interpolated value becomes a bound parameter, never text, so a value
 * cannot change a statement. The statement text is joined once per call site
 * (a template's strings array is the same object on every call), so the hot
 * path pays no string building.
 */

/** A row as SQLite returns it. */
export type SqlRow = Record<string, SqlStorageValue>;

/** Runs one statement; values are bound as parameters. */
export type Sql = <T extends SqlRow = SqlRow>(strings: TemplateStringsArray, ...values: SqlStorageValue[]) => SqlStorageCursor<T>;

const statements = new WeakMap<TemplateStringsArray, string>();

/** The statement a template stands for, with `?` where its values go. */
export function statementOf(strings: TemplateStringsArray): string {
  let statement = statements.get(strings);
  if (statement === undefined) {
    statement = strings.join("?");
    statements.set(strings, statement);
  }
  return statement;
}

/** The `sql` tag over one object's storage. */
export function sqlOver(storage: SqlStorage): Sql {
  return <T extends SqlRow>(strings: TemplateStringsArray, ...values: SqlStorageValue[]) => storage.exec<T>(statementOf(strings), ...values);
}
