/*
 * The hand-written SQL migrations must produce exactly the database that
 * prisma/schema.prisma describes, because the Prisma client is generated
 * from that file and trusts it blindly.
 *
 * The expected side is derived from schema.prisma itself: the file is parsed
 * by Prisma's own schema parser (get_dmmf from @prisma/prisma-schema-wasm,
 * the same Wasm module `prisma generate` uses), and the resulting DMMF is
 * turned into tables, columns, indexes and foreign keys using Prisma's
 * PostgreSQL type mapping and default naming conventions. The actual side is
 * read from pg_catalog. Nothing about Keel's models is hard-coded here.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { DMMF } from '@prisma/client/runtime/client';
import { get_dmmf } from '@prisma/prisma-schema-wasm';
import { Client } from 'pg';
import {
  DEFAULT_MIGRATIONS_DIR,
  MIGRATIONS_TABLE,
  ensureDatabase,
  migrate,
  rollback,
  status,
} from '../../db/migrations';
import { createTestDatabase, databaseUrlFor, TEST_DATABASE, TEST_SERVER_URL, type TestDatabase } from '../helpers/db';

jest.setTimeout(60_000);

const SCHEMA_PATH = path.resolve(__dirname, '..', '..', 'prisma', 'schema.prisma');

// PostgreSQL truncates identifiers to 63 bytes; Prisma's default constraint
// names are cut to fit before the suffix is appended.
const MAX_IDENTIFIER_LENGTH = 63;

// ---------------------------------------------------------------------------
// Expected schema, from schema.prisma
// ---------------------------------------------------------------------------

type ExpectedDefault =
  | { kind: 'now' }
  | { kind: 'autoincrement' }
  | { kind: 'dbgenerated'; expression: string }
  | { kind: 'value'; value: unknown };

interface ColumnShape {
  /** As pg's format_type() spells it, e.g. `timestamp(3) with time zone`, `text[]`. */
  type: string;
  notNull: boolean;
}

interface ExpectedColumn extends ColumnShape {
  /** Prisma scalar type, needed to compare literal defaults (Json, BigInt...). */
  prismaType: string;
  default: ExpectedDefault | null;
}

interface ActualColumn extends ColumnShape {
  /** pg_get_expr() of the column default, or null. */
  defaultExpression: string | null;
  /** The default evaluated by PostgreSQL (absent for nextval, which has side effects, or if evaluation failed). */
  defaultValue?: unknown;
  /** For nextval defaults: the sequence is owned by this column (what SERIAL/BIGSERIAL create). */
  ownsSequence: boolean;
}

interface IndexShape {
  table: string;
  columns: string[];
  /** Per column: true if DESC. */
  descending: boolean[];
  unique: boolean;
  primary: boolean;
  method: string;
}

interface ActualIndex extends IndexShape {
  partial: boolean;
  hasExpressions: boolean;
}

interface ForeignKeyShape {
  table: string;
  columns: string[];
  referencedTable: string;
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
}

interface ExpectedSchema {
  tables: Map<string, Map<string, ExpectedColumn>>;
  indexes: Map<string, IndexShape>;
  foreignKeys: Map<string, ForeignKeyShape>;
}

interface ActualSchema {
  tables: Map<string, Map<string, ActualColumn>>;
  indexes: Map<string, ActualIndex>;
  foreignKeys: Map<string, ForeignKeyShape>;
  /** Constraints other than PK / FK / unique-backed-by-an-expected-index, e.g. CHECK. */
  otherConstraints: Map<string, { table: string; type: string; definition: string }>;
  /** Unique constraints by name (Prisma itself uses unique indexes; either is accepted). */
  uniqueConstraints: Set<string>;
  sequences: Set<string>;
  views: Set<string>;
}

/** Parses a Prisma schema with Prisma's own parser. */
function loadDmmf(schemaText: string): DMMF.Document {
  // This get_dmmf takes a list of [file name, content] pairs (multi-file schemas).
  return JSON.parse(get_dmmf(JSON.stringify({ prismaSchema: [['schema.prisma', schemaText]] }))) as DMMF.Document;
}

// Prisma's PostgreSQL type for each scalar when no @db.* attribute is given.
const SCALAR_TYPES: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  BigInt: 'bigint',
  Float: 'double precision',
  Decimal: 'numeric(65,30)',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
};

// @db.* native types, spelled the way format_type() prints them.
const withArgs = (base: string, args: readonly string[], suffix = ''): string =>
  `${base}${args.length > 0 ? `(${args.join(',')})` : ''}${suffix}`;
const NATIVE_TYPES: Record<string, (args: readonly string[]) => string> = {
  Text: () => 'text',
  VarChar: (a) => withArgs('character varying', a),
  Char: (a) => withArgs('character', a.length > 0 ? a : ['1']),
  Uuid: () => 'uuid',
  Xml: () => 'xml',
  Inet: () => 'inet',
  Citext: () => 'citext',
  Bit: (a) => withArgs('bit', a.length > 0 ? a : ['1']),
  VarBit: (a) => withArgs('bit varying', a),
  SmallInt: () => 'smallint',
  Integer: () => 'integer',
  BigInt: () => 'bigint',
  Oid: () => 'oid',
  Real: () => 'real',
  DoublePrecision: () => 'double precision',
  Decimal: (a) => withArgs('numeric', a),
  Money: () => 'money',
  Boolean: () => 'boolean',
  Timestamp: (a) => withArgs('timestamp', a, ' without time zone'),
  Timestamptz: (a) => withArgs('timestamp', a, ' with time zone'),
  Date: () => 'date',
  Time: (a) => withArgs('time', a, ' without time zone'),
  Timetz: (a) => withArgs('time', a, ' with time zone'),
  Json: () => 'json',
  JsonB: () => 'jsonb',
  ByteA: () => 'bytea',
};

// Prisma's referential actions as pg_constraint.confdeltype/confupdtype codes.
const REFERENTIAL_ACTIONS: Record<string, string> = {
  NoAction: 'a',
  Restrict: 'r',
  Cascade: 'c',
  SetNull: 'n',
  SetDefault: 'd',
};

/** Prisma's default name for an index/constraint: `<table>_<columns>_<suffix>`, cut to fit 63 bytes. */
function prismaConstraintName(
  table: string,
  columns: readonly string[],
  suffix: '_pkey' | '_key' | '_idx' | '_fkey',
): string {
  const base = suffix === '_pkey' ? table : `${table}_${columns.join('_')}`;
  return base.slice(0, MAX_IDENTIFIER_LENGTH - suffix.length) + suffix;
}

function expectedColumnType(model: DMMF.Model, field: DMMF.Field): string {
  let base: string | undefined;
  if (field.kind !== 'scalar') {
    // Enums would also need the CREATE TYPE and its values compared; add
    // that here when the first enum appears rather than silently passing.
    throw new Error(
      `schema test: ${model.name}.${field.name} is a ${field.kind} field; the comparator does not support it yet`,
    );
  }
  if (field.nativeType) {
    const [name, args] = field.nativeType;
    const spell = NATIVE_TYPES[name];
    if (!spell)
      throw new Error(
        `schema test: unknown native type @db.${name} on ${model.name}.${field.name}; extend NATIVE_TYPES`,
      );
    base = spell(args);
  } else {
    base = SCALAR_TYPES[field.type];
    if (!base) throw new Error(`schema test: unknown scalar type ${field.type} on ${model.name}.${field.name}`);
  }
  return field.isList ? `${base}[]` : base;
}

function expectedDefault(model: DMMF.Model, field: DMMF.Field): ExpectedDefault | null {
  if (!field.hasDefaultValue || field.default === undefined) return null;
  const d = field.default;
  // Function defaults are { name, args }; literals are scalars or (for lists) arrays.
  if (typeof d === 'object' && 'name' in d) {
    switch (d.name) {
      case 'now':
        return { kind: 'now' };
      case 'autoincrement':
        return { kind: 'autoincrement' };
      case 'dbgenerated':
        return { kind: 'dbgenerated', expression: String(d.args[0] ?? '') };
      case 'uuid':
      case 'cuid':
      case 'nanoid':
      case 'ulid':
        // Generated by the Prisma client, never by the database.
        return null;
      default:
        throw new Error(`schema test: unsupported default ${d.name}() on ${model.name}.${field.name}`);
    }
  }
  return { kind: 'value', value: d };
}

/** Turns schema.prisma text into the tables, columns, indexes and foreign keys Prisma would create. */
function expectedSchemaFrom(schemaText: string): ExpectedSchema {
  const { datamodel } = loadDmmf(schemaText);
  const models = new Map(datamodel.models.map((m) => [m.name, m]));
  const tableOf = (m: DMMF.Model): string => m.dbName ?? m.name;
  const columnOf = (m: DMMF.Model, fieldName: string): string => {
    const field = m.fields.find((f) => f.name === fieldName);
    if (!field) throw new Error(`schema test: ${m.name} has no field ${fieldName}`);
    return field.dbName ?? field.name;
  };

  const expected: ExpectedSchema = { tables: new Map(), indexes: new Map(), foreignKeys: new Map() };
  for (const model of datamodel.models) {
    const columns = new Map<string, ExpectedColumn>();
    for (const field of model.fields) {
      if (field.kind === 'object') continue; // relation fields have no column
      columns.set(field.dbName ?? field.name, {
        type: expectedColumnType(model, field),
        // Lists are required in Prisma (String[] is never null in the client)
        // and Keel makes that NOT NULL in the database too.
        notNull: field.isRequired,
        prismaType: field.type,
        default: expectedDefault(model, field),
      });
    }
    expected.tables.set(tableOf(model), columns);

    for (const field of model.fields) {
      if (field.kind !== 'object' || !field.relationFromFields || field.relationFromFields.length === 0) continue;
      const target = models.get(field.type);
      if (!target)
        throw new Error(`schema test: relation ${model.name}.${field.name} points at unknown model ${field.type}`);
      const fkColumns = field.relationFromFields.map((f) => columnOf(model, f));
      // Prisma's defaults: optional relations SetNull, required ones
      // Restrict on delete; Cascade on update.
      const onDelete = field.relationOnDelete ?? (field.isRequired ? 'Restrict' : 'SetNull');
      const onUpdate = field.relationOnUpdate ?? 'Cascade';
      expected.foreignKeys.set(prismaConstraintName(tableOf(model), fkColumns, '_fkey'), {
        table: tableOf(model),
        columns: fkColumns,
        referencedTable: tableOf(target),
        referencedColumns: (field.relationToFields ?? []).map((f) => columnOf(target, f)),
        onDelete: REFERENTIAL_ACTIONS[onDelete] ?? `unknown action ${onDelete}`,
        onUpdate: REFERENTIAL_ACTIONS[onUpdate] ?? `unknown action ${onUpdate}`,
      });
    }
  }

  for (const index of datamodel.indexes) {
    const model = models.get(index.model);
    if (!model) throw new Error(`schema test: index on unknown model ${index.model}`);
    if (index.type === 'fulltext') throw new Error('schema test: fulltext indexes do not exist on PostgreSQL');
    const table = tableOf(model);
    const columns = index.fields.map((f) => columnOf(model, f.name));
    const suffix = index.type === 'id' ? '_pkey' : index.type === 'unique' ? '_key' : '_idx';
    expected.indexes.set(index.dbName ?? prismaConstraintName(table, columns, suffix), {
      table,
      columns,
      descending: index.fields.map((f) => f.sortOrder === 'desc'),
      unique: index.type !== 'normal',
      primary: index.type === 'id',
      method: (index.algorithm ?? 'BTree').toLowerCase(),
    });
  }
  return expected;
}

// ---------------------------------------------------------------------------
// Actual schema, from pg_catalog
// ---------------------------------------------------------------------------

async function withPg<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** True for constant default expressions (literals, casts, ARRAY[...]); false for anything calling a function. */
function isLiteralExpression(expression: string): boolean {
  // Blank out string literals and casts first: neither '...(...)' inside a
  // string nor a type modifier like ::timestamp(3) is a function call.
  const bare = expression.replace(/'(?:[^']|'')*'/g, "''").replace(/::[a-z_ ]+(\(\d+(,\d+)?\))?(\[\])*/gi, '');
  return !/[A-Za-z_]\w*\s*\(/.test(bare) && !/\b(CURRENT_\w+|LOCALTIME\w*|SESSION_USER|USER)\b/i.test(bare);
}

/** Reads tables, columns, indexes and constraints of the public schema (minus the runner's bookkeeping table). */
async function readActualSchema(url: string): Promise<ActualSchema> {
  return withPg(url, async (pg) => {
    const actual: ActualSchema = {
      tables: new Map(),
      indexes: new Map(),
      foreignKeys: new Map(),
      otherConstraints: new Map(),
      uniqueConstraints: new Set(),
      sequences: new Set(),
      views: new Set(),
    };

    const columns = await pg.query<{
      table_name: string;
      column_name: string;
      type: string;
      not_null: boolean;
      default_expression: string | null;
      serial_sequence: string | null;
    }>(
      `SELECT c.relname AS table_name, a.attname AS column_name,
              format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
              pg_get_expr(d.adbin, d.adrelid) AS default_expression,
              pg_get_serial_sequence(quote_ident(c.relname), a.attname) AS serial_sequence
         FROM pg_class c
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> $1
        ORDER BY c.relname, a.attnum`,
      [MIGRATIONS_TABLE],
    );
    for (const row of columns.rows) {
      let table = actual.tables.get(row.table_name);
      if (!table) actual.tables.set(row.table_name, (table = new Map()));
      const column: ActualColumn = {
        type: row.type,
        notNull: row.not_null,
        defaultExpression: row.default_expression,
        ownsSequence: row.serial_sequence !== null,
      };
      // Evaluate literal defaults so '{}'::jsonb, ARRAY[]::text[] and 0 can
      // be compared as values. Only literals: nextval() would consume a
      // sequence value, and now()-like defaults differ on every read.
      if (row.default_expression !== null && isLiteralExpression(row.default_expression)) {
        try {
          const evaluated = await pg.query<{ v: unknown }>(`SELECT (${row.default_expression}) AS v`);
          column.defaultValue = evaluated.rows[0]?.v;
        } catch {
          // Left undefined; the comparison reports the expression.
        }
      }
      table.set(row.column_name, column);
    }

    const indexes = await pg.query<{
      name: string;
      table_name: string;
      columns: string[];
      options: number[];
      unique: boolean;
      primary: boolean;
      method: string;
      partial: boolean;
      has_expressions: boolean;
    }>(
      `SELECT i.relname AS name, t.relname AS table_name,
              ARRAY(SELECT coalesce(a.attname, '(expression)')
                      FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                      LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                     ORDER BY k.ord)::text[] AS columns,
              ix.indoption::int2[]::int4[] AS options,
              ix.indisunique AS unique, ix.indisprimary AS primary, am.amname AS method,
              ix.indpred IS NOT NULL AS partial, ix.indexprs IS NOT NULL AS has_expressions
         FROM pg_index ix
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_am am ON am.oid = i.relam
        WHERE t.relnamespace = 'public'::regnamespace AND t.relname <> $1`,
      [MIGRATIONS_TABLE],
    );
    for (const row of indexes.rows) {
      actual.indexes.set(row.name, {
        table: row.table_name,
        columns: row.columns,
        // indoption bit 0 is DESC.
        descending: row.options.map((o) => (o & 1) === 1),
        unique: row.unique,
        primary: row.primary,
        method: row.method,
        partial: row.partial,
        hasExpressions: row.has_expressions,
      });
    }

    const constraints = await pg.query<{
      name: string;
      type: string;
      table_name: string;
      columns: string[];
      referenced_table: string | null;
      referenced_columns: string[];
      on_delete: string;
      on_update: string;
      definition: string;
    }>(
      `SELECT con.conname AS name, con.contype::text AS type, t.relname AS table_name,
              ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                     ORDER BY k.ord)::text[] AS columns,
              rt.relname AS referenced_table,
              ARRAY(SELECT a.attname FROM unnest(coalesce(con.confkey, '{}')) WITH ORDINALITY AS k(attnum, ord)
                      JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                     ORDER BY k.ord)::text[] AS referenced_columns,
              con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update,
              pg_get_constraintdef(con.oid) AS definition
         FROM pg_constraint con
         JOIN pg_class t ON t.oid = con.conrelid
         LEFT JOIN pg_class rt ON rt.oid = con.confrelid
        WHERE t.relnamespace = 'public'::regnamespace AND t.relname <> $1
          -- PostgreSQL 18 (and PGlite, which is 18) also lists NOT NULL as constraints of type n;
          -- nullability is compared with the columns.
          AND con.contype <> 'n'`,
      [MIGRATIONS_TABLE],
    );
    for (const row of constraints.rows) {
      if (row.type === 'f') {
        actual.foreignKeys.set(row.name, {
          table: row.table_name,
          columns: row.columns,
          referencedTable: row.referenced_table ?? '?',
          referencedColumns: row.referenced_columns,
          onDelete: row.on_delete,
          onUpdate: row.on_update,
        });
      } else if (row.type === 'u') {
        actual.uniqueConstraints.add(row.name);
      } else if (row.type !== 'p') {
        // Primary keys are checked through their index; anything else
        // (CHECK, EXCLUDE...) is not something schema.prisma can express.
        actual.otherConstraints.set(row.name, { table: row.table_name, type: row.type, definition: row.definition });
      }
    }

    const relations = await pg.query<{ name: string; kind: string }>(
      `SELECT relname AS name, relkind::text AS kind FROM pg_class
        WHERE relnamespace = 'public'::regnamespace AND relkind IN ('S', 'v', 'm')`,
    );
    for (const row of relations.rows) (row.kind === 'S' ? actual.sequences : actual.views).add(row.name);
    return actual;
  });
}

// ---------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------

function normaliseDefaultValue(prismaType: string, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => normaliseDefaultValue(prismaType, v));
  switch (prismaType) {
    case 'Json':
      // DMMF carries the JSON text; pg hands back the parsed value.
      return typeof value === 'string' ? JSON.parse(value) : value;
    case 'Float':
    case 'Int':
      // pg may hand a float8 default back as text; compare numbers as numbers.
      return value === null || value === undefined ? value : Number(value);
    case 'BigInt':
    case 'Decimal':
      return value === null || value === undefined ? value : String(value);
    case 'DateTime':
      return value === null || value === undefined ? value : new Date(value as string).getTime();
    case 'Bytes':
      return Buffer.isBuffer(value) ? value.toString('base64') : value;
    default:
      return value;
  }
}

function describeDefault(d: ExpectedDefault): string {
  switch (d.kind) {
    case 'now':
      return 'now()';
    case 'autoincrement':
      return 'autoincrement()';
    case 'dbgenerated':
      return `dbgenerated(${d.expression})`;
    case 'value':
      return JSON.stringify(d.value);
  }
}

function compareDefault(where: string, expected: ExpectedColumn, actual: ActualColumn): string[] {
  const want = expected.default;
  const found = actual.defaultExpression;
  if (want === null) return found === null ? [] : [`${where}: expected no default, found DEFAULT ${found}`];
  if (found === null) return [`${where}: expected DEFAULT ${describeDefault(want)}, found no default`];
  switch (want.kind) {
    case 'now':
      return /^(CURRENT_TIMESTAMP|now\(\))$/i.test(found)
        ? []
        : [`${where}: expected DEFAULT CURRENT_TIMESTAMP, found ${found}`];
    case 'autoincrement':
      return /^nextval\(/i.test(found) && actual.ownsSequence
        ? []
        : [`${where}: expected an autoincrement (owned sequence) default, found ${found}`];
    case 'dbgenerated': {
      const squash = (s: string): string => s.replace(/\s+/g, '').toLowerCase();
      return squash(found) === squash(want.expression)
        ? []
        : [`${where}: expected DEFAULT ${want.expression}, found ${found}`];
    }
    case 'value': {
      const wantValue = normaliseDefaultValue(expected.prismaType, want.value);
      const foundValue = normaliseDefaultValue(expected.prismaType, actual.defaultValue);
      return isDeepStrictEqual(wantValue, foundValue)
        ? []
        : [`${where}: expected default ${JSON.stringify(wantValue)}, found ${found} (= ${JSON.stringify(foundValue)})`];
    }
  }
}

function describeIndex(i: IndexShape): string {
  const kind = i.primary ? 'PRIMARY KEY' : i.unique ? 'UNIQUE' : 'INDEX';
  const cols = i.columns.map((c, n) => (i.descending[n] ? `${c} DESC` : c)).join(', ');
  return `${kind} ${i.method} on ${i.table}(${cols})`;
}

function describeForeignKey(fk: ForeignKeyShape): string {
  return `${fk.table}(${fk.columns.join(', ')}) -> ${fk.referencedTable}(${fk.referencedColumns.join(', ')}) on delete ${fk.onDelete} on update ${fk.onUpdate}`;
}

/** Every difference between what schema.prisma describes and what the database has, as readable lines; empty means identical. */
function compareSchemas(expected: ExpectedSchema, actual: ActualSchema): string[] {
  const diffs: string[] = [];

  for (const [tableName, expectedColumns] of expected.tables) {
    const actualColumns = actual.tables.get(tableName);
    if (!actualColumns) {
      diffs.push(`missing table ${tableName}`);
      continue;
    }
    for (const [columnName, want] of expectedColumns) {
      const where = `${tableName}.${columnName}`;
      const found = actualColumns.get(columnName);
      if (!found) {
        diffs.push(`missing column ${where}`);
        continue;
      }
      if (found.type !== want.type) diffs.push(`${where}: expected type ${want.type}, found ${found.type}`);
      if (found.notNull !== want.notNull) {
        diffs.push(
          `${where}: expected ${want.notNull ? 'NOT NULL' : 'nullable'}, found ${found.notNull ? 'NOT NULL' : 'nullable'}`,
        );
      }
      diffs.push(...compareDefault(where, want, found));
    }
    for (const columnName of actualColumns.keys()) {
      if (!expectedColumns.has(columnName)) diffs.push(`unexpected column ${tableName}.${columnName}`);
    }
  }
  for (const tableName of actual.tables.keys()) {
    if (!expected.tables.has(tableName)) diffs.push(`unexpected table ${tableName}`);
  }

  for (const [name, want] of expected.indexes) {
    const found = actual.indexes.get(name);
    if (!found) {
      diffs.push(`missing index ${name}: ${describeIndex(want)}`);
      continue;
    }
    const foundShape: IndexShape = {
      table: found.table,
      columns: found.columns,
      descending: found.descending,
      unique: found.unique,
      primary: found.primary,
      method: found.method,
    };
    if (!isDeepStrictEqual(foundShape, want) || found.partial || found.hasExpressions) {
      const extra = `${found.partial ? ' (partial)' : ''}${found.hasExpressions ? ' (with expressions)' : ''}`;
      diffs.push(`index ${name}: expected ${describeIndex(want)}, found ${describeIndex(foundShape)}${extra}`);
    }
  }
  for (const name of actual.indexes.keys()) {
    if (!expected.indexes.has(name))
      diffs.push(`unexpected index ${name}: ${describeIndex(actual.indexes.get(name) as IndexShape)}`);
  }
  for (const name of actual.uniqueConstraints) {
    // A UNIQUE constraint is backed by an index of the same name, already
    // compared above; only one without an expected unique index is a drift.
    if (!expected.indexes.get(name)?.unique) diffs.push(`unexpected unique constraint ${name}`);
  }

  for (const [name, want] of expected.foreignKeys) {
    const found = actual.foreignKeys.get(name);
    if (!found) diffs.push(`missing foreign key ${name}: ${describeForeignKey(want)}`);
    else if (!isDeepStrictEqual(found, want)) {
      diffs.push(`foreign key ${name}: expected ${describeForeignKey(want)}, found ${describeForeignKey(found)}`);
    }
  }
  for (const [name, fk] of actual.foreignKeys) {
    if (!expected.foreignKeys.has(name)) diffs.push(`unexpected foreign key ${name}: ${describeForeignKey(fk)}`);
  }
  for (const [name, c] of actual.otherConstraints) {
    diffs.push(`unexpected constraint ${name} on ${c.table}: ${c.definition}`);
  }

  // Sequences are only expected behind autoincrement columns.
  const ownedSequences = new Set<string>();
  for (const [tableName, columns] of actual.tables) {
    for (const [columnName, column] of columns) {
      const match = column.ownsSequence
        ? /^nextval\('(?:public\.)?"?([^'"]+)"?'::regclass\)$/.exec(column.defaultExpression ?? '')
        : null;
      if (match?.[1]) ownedSequences.add(match[1]);
      else if (column.ownsSequence)
        diffs.push(`${tableName}.${columnName}: owns a sequence but its default does not use it`);
    }
  }
  for (const name of actual.sequences) if (!ownedSequences.has(name)) diffs.push(`unexpected sequence ${name}`);
  for (const name of actual.views) diffs.push(`unexpected view ${name}`);

  return diffs;
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

const schemaText = readFileSync(SCHEMA_PATH, 'utf8');

/** A scratch copy of prisma/migrations that a test may edit. */
function copyMigrations(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keel-migrations-'));
  cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

describe('schema.prisma vs the migrated database', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  test('a fresh database migrated to head matches schema.prisma exactly', async () => {
    const expected = expectedSchemaFrom(schemaText);
    // Guard against a vacuous pass (e.g. an empty DMMF): every model counts.
    expect(expected.tables.size).toBe(loadDmmf(schemaText).datamodel.models.length);
    expect(expected.tables.size).toBeGreaterThan(0);
    expect(compareSchemas(expected, await readActualSchema(db.url))).toEqual([]);
  });

  test('the comparator reports drift in the database', async () => {
    const scratch = await createTestDatabase();
    try {
      await withPg(scratch.url, async (pg) => {
        await pg.query(`
          ALTER TABLE steps DROP COLUMN model;
          ALTER TABLE goals ALTER COLUMN title DROP NOT NULL;
          ALTER TABLE goals ALTER COLUMN cost_usd TYPE real;
          ALTER TABLE artifacts ALTER COLUMN status DROP DEFAULT;
          ALTER TABLE artifacts ALTER COLUMN content_type SET DEFAULT 'text/html';
          ALTER TABLE inbound_events ADD COLUMN extra text;
          DROP INDEX goals_status_created_at_idx;
          CREATE INDEX events_type_idx2 ON events (type);
          ALTER TABLE approvals DROP CONSTRAINT approvals_goal_id_fkey;
          ALTER TABLE steps DROP CONSTRAINT steps_goal_id_fkey;
          ALTER TABLE steps ADD CONSTRAINT steps_goal_id_fkey FOREIGN KEY (goal_id) REFERENCES goals(id) ON DELETE RESTRICT ON UPDATE CASCADE;
          DROP INDEX side_effects_idempotency_key_key;
          CREATE INDEX side_effects_idempotency_key_key ON side_effects (idempotency_key);
          ALTER TABLE events ADD CONSTRAINT events_type_check CHECK (type <> '');
          CREATE TABLE stray (id int);
        `);
      });
      const diffs = compareSchemas(expectedSchemaFrom(schemaText), await readActualSchema(scratch.url));
      const expectations: RegExp[] = [
        /^missing column steps\.model$/,
        /^goals\.title: expected NOT NULL, found nullable$/,
        /^goals\.cost_usd: expected type double precision, found real$/,
        /^artifacts\.status: expected DEFAULT "active", found no default$/,
        /^artifacts\.content_type: expected default "text\/plain", found /,
        /^unexpected column inbound_events\.extra$/,
        /^missing index goals_status_created_at_idx: INDEX btree on goals\(status, created_at\)$/,
        /^unexpected index events_type_idx2: /,
        /^missing foreign key approvals_goal_id_fkey: /,
        /^foreign key steps_goal_id_fkey: expected .* on delete c .*, found .* on delete r /,
        /^index side_effects_idempotency_key_key: expected UNIQUE .*, found INDEX /,
        /^unexpected constraint events_type_check on events: /,
        /^unexpected table stray$/,
      ];
      for (const pattern of expectations) expect(diffs).toContainEqual(expect.stringMatching(pattern));
      // Nothing else: each mutation is reported once, and untouched objects stay clean.
      expect(diffs).toHaveLength(expectations.length);
    } finally {
      await scratch.drop();
    }
  });

  test('the expected side follows schema.prisma (a field added to the schema is reported missing)', async () => {
    const edited = schemaText.replace(
      /model InboundEvent \{/,
      'model InboundEvent {\n  checkedAt DateTime? @map("checked_at")',
    );
    expect(edited).not.toBe(schemaText);
    const diffs = compareSchemas(expectedSchemaFrom(edited), await readActualSchema(db.url));
    expect(diffs).toEqual(['missing column inbound_events.checked_at']);
  });
});

describe('rollback', () => {
  test('rolling back every migration leaves the public schema empty, and migrating again restores it', async () => {
    const db = await createTestDatabase();
    try {
      const rolledBack: string[] = [];
      for (;;) {
        const { rolledBack: name } = await rollback(db.url);
        if (name === null) break;
        rolledBack.push(name);
      }
      const onDisk = (await status(db.url)).pending;
      expect(rolledBack).toEqual([...onDisk].reverse());

      await withPg(db.url, async (pg) => {
        // The runner keeps its (now empty) bookkeeping table; nothing else may remain.
        const relations = await pg.query<{ relname: string; relkind: string }>(
          `SELECT relname, relkind::text AS relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY relname`,
        );
        expect(relations.rows).toEqual([
          { relname: MIGRATIONS_TABLE, relkind: 'r' },
          { relname: `${MIGRATIONS_TABLE}_pkey`, relkind: 'i' },
        ]);
        const functions = await pg.query(`SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace`);
        expect(functions.rows).toEqual([]);
        // Row types of tables (and their array types) come and go with the
        // tables checked above; any other type (enum, domain...) is a leftover.
        const types = await pg.query(
          `SELECT t.typname FROM pg_type t
            WHERE t.typnamespace = 'public'::regnamespace
              AND t.typrelid = 0
              AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.oid = t.typelem AND e.typrelid <> 0)`,
        );
        expect(types.rows).toEqual([]);
        const triggers = await pg.query(`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal`);
        expect(triggers.rows).toEqual([]);
        const extensions = await pg.query(
          `SELECT extname FROM pg_extension WHERE extnamespace = 'public'::regnamespace`,
        );
        expect(extensions.rows).toEqual([]);
        const records = await pg.query(`SELECT name FROM ${MIGRATIONS_TABLE}`);
        expect(records.rows).toEqual([]);
      });

      expect((await migrate(db.url)).applied).toEqual(onDisk);
      expect(compareSchemas(expectedSchemaFrom(schemaText), await readActualSchema(db.url))).toEqual([]);
    } finally {
      await db.drop();
    }
  });
});

describe('events is append-only', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  test('INSERT works; UPDATE, DELETE and TRUNCATE are refused with a message naming the rule', async () => {
    const event = await db.prisma.event.create({ data: { type: 'goal.created', actor: 'test', data: { a: 1 } } });
    expect(event.seq).toBeGreaterThan(0n);

    // Through Prisma, the way application code would try it.
    await expect(
      db.prisma.event.update({ where: { seq: event.seq }, data: { actor: 'someone else' } }),
    ).rejects.toThrow(/append-only/);
    await expect(db.prisma.event.deleteMany({})).rejects.toThrow(/append-only/);

    // And in plain SQL, including TRUNCATE, which row triggers would not catch.
    await withPg(db.url, async (pg) => {
      for (const sql of ['UPDATE events SET actor = $$x$$', 'DELETE FROM events', 'TRUNCATE events']) {
        const op = sql.split(' ')[0];
        await expect(pg.query(sql)).rejects.toMatchObject({
          message: `events is append-only: ${op} is not allowed on table events`,
          code: 'P0001',
        });
      }
      const rows = await pg.query<{ actor: string }>('SELECT actor FROM events');
      expect(rows.rows).toEqual([{ actor: 'test' }]);
    });
  });
});

describe('migration runner', () => {
  test('migrating an up-to-date database is a no-op', async () => {
    const db = await createTestDatabase();
    try {
      const before = await readActualSchema(db.url);
      const { applied: appliedBefore } = await status(db.url);
      expect(await migrate(db.url)).toEqual({ applied: [] });
      expect(await migrate(db.url)).toEqual({ applied: [] });
      const after = await status(db.url);
      expect(after.applied).toEqual(appliedBefore);
      expect(after).toMatchObject({ pending: [], modified: [], missing: [] });
      expect(compareSchemas(expectedSchemaFrom(schemaText), before)).toEqual([]);
      expect(await readActualSchema(db.url)).toEqual(before);
    } finally {
      await db.drop();
    }
  });

  test('an applied migration whose up.sql was edited is refused by migrate and rollback', async () => {
    const dir = copyMigrations();
    const db = await createTestDatabase({ migrate: false });
    try {
      // The last one: rollback reads only the migration it would undo.
      const first = (await status(db.url, { dir })).pending.at(-1);
      expect(first).toBeDefined();
      await migrate(db.url, { dir });
      appendFileSync(path.join(dir, first as string, 'up.sql'), '\n-- a harmless-looking edit\n');

      await expect(migrate(db.url, { dir })).rejects.toThrow(
        new RegExp(`migration ${first} was edited after it was applied`),
      );
      await expect(rollback(db.url, { dir })).rejects.toThrow(
        new RegExp(`migration ${first} was edited after it was applied`),
      );
      expect((await status(db.url, { dir })).modified).toEqual([first]);
      // Refusing changed nothing.
      expect(compareSchemas(expectedSchemaFrom(schemaText), await readActualSchema(db.url))).toEqual([]);
    } finally {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an applied migration missing on disk, or a new one sorting before the last applied, is refused', async () => {
    const dir = copyMigrations();
    const db = await createTestDatabase({ migrate: false });
    const addMigration = (name: string, up: string, down: string): void => {
      mkdirSync(path.join(dir, name));
      writeFileSync(path.join(dir, name, 'up.sql'), up);
      writeFileSync(path.join(dir, name, 'down.sql'), down);
    };
    try {
      addMigration('9999_extra', 'CREATE TABLE extra (id int);', 'DROP TABLE extra;');
      expect((await migrate(db.url, { dir })).applied).toContain('9999_extra');

      // The database is ahead of this code: nothing may be applied on top.
      rmSync(path.join(dir, '9999_extra'), { recursive: true });
      await expect(migrate(db.url, { dir })).rejects.toThrow(
        /migration 9999_extra is applied in the database but has no folder/,
      );
      expect((await status(db.url, { dir })).missing).toEqual(['9999_extra']);

      // A migration that sorts before the last applied one would run in a
      // different order here than on databases migrated step by step.
      addMigration('9999_extra', 'CREATE TABLE extra (id int);', 'DROP TABLE extra;');
      addMigration('0000_early', 'CREATE TABLE early (id int);', 'DROP TABLE early;');
      await expect(migrate(db.url, { dir })).rejects.toThrow(
        /pending migration 0000_early sorts before already-applied 9999_extra/,
      );
      expect((await status(db.url, { dir })).pending).toEqual(['0000_early']);
    } finally {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a migration folder without down.sql is refused before touching the database', async () => {
    const dir = copyMigrations();
    try {
      mkdirSync(path.join(dir, '9999_no_down'));
      writeFileSync(path.join(dir, '9999_no_down', 'up.sql'), 'CREATE TABLE nope (id int);');
      // The database does not even exist: the folder check comes first.
      const url = databaseUrlFor('keel_test_never_created');
      await expect(migrate(url, { dir })).rejects.toThrow(/9999_no_down is missing down\.sql/);
      await expect(rollback(url, { dir })).rejects.toThrow(/9999_no_down is missing down\.sql/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a failing migration is rolled back as a whole and not recorded', async () => {
    const dir = copyMigrations();
    const db = await createTestDatabase({ migrate: false });
    try {
      mkdirSync(path.join(dir, '9999_broken'));
      writeFileSync(path.join(dir, '9999_broken', 'up.sql'), 'CREATE TABLE half_done (id int);\nSELECT 1 / 0;');
      writeFileSync(path.join(dir, '9999_broken', 'down.sql'), 'DROP TABLE half_done;');

      await expect(migrate(db.url, { dir })).rejects.toThrow(
        /Migration 9999_broken failed \(up\.sql\): division by zero/,
      );
      const s = await status(db.url, { dir });
      expect(s.pending).toEqual(['9999_broken']);
      expect(s.applied.map((a) => a.name)).not.toContain('9999_broken');
      const halfDone = await withPg(db.url, (pg) => pg.query(`SELECT to_regclass('half_done') AS t`));
      expect(halfDone.rows).toEqual([{ t: null }]);
    } finally {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('concurrent migrate calls apply each migration exactly once', async () => {
    const db = await createTestDatabase({ migrate: false });
    try {
      const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url), migrate(db.url)]);
      const appliedSomewhere = results.flatMap((r) => r.applied);
      expect(appliedSomewhere).toEqual((await status(db.url)).applied.map((a) => a.name));
      expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
      expect(compareSchemas(expectedSchemaFrom(schemaText), await readActualSchema(db.url))).toEqual([]);
    } finally {
      await db.drop();
    }
  });

  // CREATE DATABASE on the KEEL_TEST_PG server: the embedded database has one database (db/embedded.ts).
  const serverOnly = TEST_DATABASE === 'embedded' ? test.skip : test;

  serverOnly('ensureDatabase creates a missing database once, even under concurrent callers', async () => {
    const name = `keel_test_ensure_${process.pid}_${Date.now()}`;
    const url = databaseUrlFor(name);
    try {
      const results = await Promise.all(Array.from({ length: 5 }, () => ensureDatabase(url)));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(await ensureDatabase(url)).toEqual({ created: false });
      const found = await withPg(TEST_SERVER_URL, (pg) =>
        pg.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]),
      );
      expect(found.rowCount).toBe(1);
    } finally {
      await withPg(TEST_SERVER_URL, (pg) => pg.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    }
  });
});
