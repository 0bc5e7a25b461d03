// Runs one SQL query in an in-memory DuckDB and prints the result as JSON:
// {"names": [...], "types": [...], "rows": [[...], ...]}, each value as
// DuckDB's JSON form (strings for BIGINT, TIMESTAMP, ...). The tests read
// the exporter's files back through it (read_parquet, read_json, read_csv).
import { DuckDBInstance } from '@duckdb/node-api';

const sql = process.argv[2];
if (!sql) {
  console.error('usage: node query.mjs <sql>');
  process.exit(2);
}
const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
const reader = await conn.runAndReadAll(sql);
process.stdout.write(JSON.stringify({
  names: reader.columnNames(),
  types: reader.columnTypes().map((t) => t.toString()),
  rows: reader.getRowsJson(),
}));
