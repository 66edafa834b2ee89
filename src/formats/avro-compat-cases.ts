/**
 * Known compatible and incompatible Avro reader/writer pairs, one per rule of the Avro
 * specification's "Schema Resolution" section (https://avro.apache.org/docs/1.11.1/specification/#schema-resolution),
 * quoted in each case's comment. avro.test.ts checks Kappa's walker and avsc's createResolver
 * against it; test/formats/avro-interop.test.ts checks Apache's Python implementation too.
 * Test data, kept beside the code it describes so both suites share one table.
 */

export interface CompatCase {
  name: string;
  reader: unknown;
  writer: unknown;
  compatible: boolean;
  /** For an incompatible pair: the path Kappa's first problem names. */
  path?: string;
  /**
   * `kappa`: plain avsc ignores logical types, so the oracle for this case is avsc with Kappa's
   * types (which add the specification's decimal rule). Default `avsc`.
   */
  oracle?: 'avsc' | 'kappa';
}

const rec = (name: string, fields: unknown[], extra: Record<string, unknown> = {}): unknown => ({
  type: 'record',
  name,
  fields,
  ...extra,
});
const field = (name: string, type: unknown, extra: Record<string, unknown> = {}): unknown => ({ name, type, ...extra });
const sale = (fields: unknown[], extra: Record<string, unknown> = {}): unknown => rec('com.acme.Sale', fields, extra);
const enumOf = (name: string, symbols: string[], extra: Record<string, unknown> = {}): unknown => ({
  type: 'enum',
  name,
  symbols,
  ...extra,
});
const fixed = (name: string, size: number): unknown => ({ type: 'fixed', name, size });
const decimal = (precision: number, scale: number): unknown => ({
  type: 'bytes',
  logicalType: 'decimal',
  precision,
  scale,
});
const list = (value: unknown): unknown => rec('Node', [field('value', value), field('next', ['null', 'Node'])]);

export const COMPAT_CASES: CompatCase[] = [
  // "both schemas are primitive ... and the writer's schema may be promoted to the reader's":
  // the same primitive always matches.
  { name: 'same primitive', reader: 'string', writer: 'string', compatible: true },
  // "int is promotable to long, float, or double"
  { name: 'int promotes to long', reader: 'long', writer: 'int', compatible: true },
  { name: 'int promotes to float', reader: 'float', writer: 'int', compatible: true },
  { name: 'int promotes to double', reader: 'double', writer: 'int', compatible: true },
  // "long is promotable to float or double"
  { name: 'long promotes to float', reader: 'float', writer: 'long', compatible: true },
  { name: 'long promotes to double', reader: 'double', writer: 'long', compatible: true },
  // "float is promotable to double"
  { name: 'float promotes to double', reader: 'double', writer: 'float', compatible: true },
  // "string is promotable to bytes" / "bytes is promotable to string"
  { name: 'string promotes to bytes', reader: 'bytes', writer: 'string', compatible: true },
  { name: 'bytes promotes to string', reader: 'string', writer: 'bytes', compatible: true },
  // Promotions only widen: "It is an error if the two schemas do not match" (long to int is not listed).
  { name: 'long does not narrow to int', reader: 'int', writer: 'long', compatible: false, path: '(root)' },
  { name: 'double does not narrow to float', reader: 'float', writer: 'double', compatible: false, path: '(root)' },
  { name: 'string is not an int', reader: 'int', writer: 'string', compatible: false, path: '(root)' },
  { name: 'boolean is not an int', reader: 'int', writer: 'boolean', compatible: false, path: '(root)' },
  // Records: "if the reader's record schema has a field that contains a default value, and
  // writer's schema does not have a field with the same name, then the reader should use the default value"
  {
    name: 'reader adds a field with a default',
    reader: sale([field('id', 'string'), field('region', 'string', { default: 'none' })]),
    writer: sale([field('id', 'string')]),
    compatible: true,
  },
  // "...if the reader's record schema has a field with no default value, and writer's schema does
  // not have a field with the same name, an error is signalled."
  {
    name: 'reader adds a field without a default',
    reader: sale([field('id', 'string'), field('region', 'string')]),
    writer: sale([field('id', 'string')]),
    compatible: false,
    path: 'Sale.region',
  },
  // "if the writer's record contains a field with a name not present in the reader's record, the
  // writer's value for that field is ignored."
  {
    name: 'reader drops a field',
    reader: sale([field('id', 'string')]),
    writer: sale([field('id', 'string'), field('note', 'string')]),
    compatible: true,
  },
  // "both schemas are records with the same (unqualified) name" — and avsc, Java and Kappa compare full names.
  {
    name: 'record renamed',
    reader: rec('com.acme.Order', [field('id', 'string')]),
    writer: sale([field('id', 'string')]),
    compatible: false,
    path: 'Order',
  },
  // Aliases: "the reader's schema can use aliases to map the writer's names"
  {
    name: 'record renamed with a reader alias',
    reader: rec('com.acme.Order', [field('id', 'string')], { aliases: ['com.acme.Sale'] }),
    writer: sale([field('id', 'string')]),
    compatible: true,
  },
  // Aliases apply to fields too: "Named types and fields may have aliases".
  {
    name: 'field renamed with a reader alias',
    reader: sale([field('orderId', 'string', { aliases: ['id'] })]),
    writer: sale([field('id', 'string')]),
    compatible: true,
  },
  // "The schemas of the fields with the same name are recursively resolved": a promotion inside a record.
  {
    name: 'field widened from int to long',
    reader: sale([field('qty', 'long')]),
    writer: sale([field('qty', 'int')]),
    compatible: true,
  },
  {
    name: 'field changed from string to int',
    reader: sale([field('qty', 'int')]),
    writer: sale([field('qty', 'string')]),
    compatible: false,
    path: 'Sale.qty',
  },
  // Enums: "if the writer's symbol is not present in the reader's enum and the reader has a default
  // value, then that value is used, otherwise an error is signalled."
  {
    name: 'enum gains a symbol in the reader',
    reader: enumOf('Region', ['N', 'S', 'E']),
    writer: enumOf('Region', ['N', 'S']),
    compatible: true,
  },
  {
    name: 'enum loses a symbol the writer uses, no default',
    reader: enumOf('Region', ['N']),
    writer: enumOf('Region', ['N', 'S']),
    compatible: false,
    path: 'Region',
  },
  {
    name: 'enum loses a symbol, reader has a default',
    reader: enumOf('Region', ['N', 'UNKNOWN'], { default: 'UNKNOWN' }),
    writer: enumOf('Region', ['N', 'S']),
    compatible: true,
  },
  // "both schemas are enums with the same (unqualified) name"
  {
    name: 'enum renamed',
    reader: enumOf('Area', ['N']),
    writer: enumOf('Region', ['N']),
    compatible: false,
    path: 'Area',
  },
  // "both schemas are fixed with the same (unqualified) name and size"
  { name: 'fixed, same name and size', reader: fixed('Hash', 16), writer: fixed('Hash', 16), compatible: true },
  { name: 'fixed changes size', reader: fixed('Hash', 32), writer: fixed('Hash', 16), compatible: false, path: 'Hash' },
  { name: 'fixed renamed', reader: fixed('Digest', 16), writer: fixed('Hash', 16), compatible: false, path: 'Digest' },
  // "both schemas are arrays whose item types match"
  {
    name: 'array items widen',
    reader: { type: 'array', items: 'long' },
    writer: { type: 'array', items: 'int' },
    compatible: true,
  },
  {
    name: 'array items change type',
    reader: { type: 'array', items: 'int' },
    writer: { type: 'array', items: 'string' },
    compatible: false,
    path: '(root)[]',
  },
  // "both schemas are maps whose value types match"
  {
    name: 'map values widen',
    reader: { type: 'map', values: 'double' },
    writer: { type: 'map', values: 'int' },
    compatible: true,
  },
  {
    name: 'a map is not an array',
    reader: { type: 'array', items: 'int' },
    writer: { type: 'map', values: 'int' },
    compatible: false,
    path: '(root)',
  },
  // "if both are unions: The first schema in the reader's union that matches the selected writer's
  // union schema is recursively resolved against it. if none match, an error is signalled."
  { name: 'both unions, each branch matches', reader: ['null', 'long'], writer: ['null', 'int'], compatible: true },
  { name: 'both unions, branch order changed', reader: ['int', 'null'], writer: ['null', 'int'], compatible: true },
  {
    name: 'both unions, a writer branch unmatched',
    reader: ['null', 'int'],
    writer: ['null', 'string'],
    compatible: false,
    path: '(root)',
  },
  // "if writer's is a union, but reader's is not: If the reader's schema matches the selected
  // writer's schema, it is recursively resolved against it. If they do not match, an error is signalled."
  { name: 'writer union, reader reads every branch', reader: 'double', writer: ['int', 'float'], compatible: true },
  {
    name: 'writer union, reader misses a branch',
    reader: 'int',
    writer: ['int', 'string'],
    compatible: false,
    path: '(root)',
  },
  // "if reader's is a union, but writer's is not: The first schema in the reader's union that
  // matches the writer's schema is recursively resolved against it. If none match, an error is signalled."
  { name: 'reader union holds the writer type', reader: ['null', 'int'], writer: 'int', compatible: true },
  {
    name: 'reader union holds a promotion of the writer type',
    reader: ['null', 'long'],
    writer: 'int',
    compatible: true,
  },
  {
    name: 'reader union lacks the writer type',
    reader: ['null', 'int'],
    writer: 'string',
    compatible: false,
    path: '(root)',
  },
  // Recursive records resolve like any other: a linked list whose reader adds a defaulted field.
  {
    name: 'recursive record gains a defaulted field',
    reader: rec('Node', [
      field('value', 'long'),
      field('next', ['null', 'Node']),
      field('tag', 'string', { default: '' }),
    ]),
    writer: list('int'),
    compatible: true,
  },
  // The record rules apply at any depth: a nested record inside an array.
  {
    name: 'nested record field without default, inside an array',
    reader: rec('Order', [
      field('lines', { type: 'array', items: rec('Line', [field('sku', 'string'), field('qty', 'int')]) }),
    ]),
    writer: rec('Order', [field('lines', { type: 'array', items: rec('Line', [field('sku', 'string')]) })]),
    compatible: false,
    path: 'Order.lines[].qty',
  },
  // Decimal: "For the purposes of schema resolution, two schemas that are decimal logical types
  // match if their scales and precisions match."
  {
    name: 'decimal, same precision and scale',
    reader: decimal(9, 2),
    writer: decimal(9, 2),
    compatible: true,
    oracle: 'kappa',
  },
  {
    name: 'decimal changes scale',
    reader: decimal(9, 3),
    writer: decimal(9, 2),
    compatible: false,
    path: '(root)',
    oracle: 'kappa',
  },
  // "Language implementations must ignore unknown logical types when reading, and should use the
  // underlying Avro type": a logical type over long reads from a plain long.
  {
    name: 'timestamp-millis reads a plain long',
    reader: { type: 'long', logicalType: 'timestamp-millis' },
    writer: 'long',
    compatible: true,
  },
];
