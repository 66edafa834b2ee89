/**
 * `kappa types <schema file> [--message NAME]`: prints the TypeScript types of the records an Avro
 * (`.avsc`) or Protobuf (`.proto`) schema decodes to in Kappa, for a config's `avro<Sale>(…)` or
 * `protobuf<Sale>(…)` (src/formats/typescript.ts says how each schema type maps).
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { KappaError } from '../errors.ts';
import { CODECS, type AvroSchema, type ProtobufSchema, avroTypeScript, protobufTypeScript } from '../formats/index.ts';
import type { CliContext } from './main.ts';

export function typesCommand(ctx: CliContext, file: string, opts: { message?: string }): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `Cannot read ${file}: ${(err as Error).message}`, { file }, err);
  }
  const ext = extname(file).toLowerCase();
  if (ext === '.proto') {
    const schema = CODECS.PROTOBUF.parse(text) as ProtobufSchema;
    ctx.stdout.write(protobufTypeScript(schema, opts.message));
    return;
  }
  if (ext === '.avsc' || ext === '.json') {
    if (opts.message !== undefined)
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        '--message names a Protobuf message; an Avro schema has one root type.',
      );
    ctx.stdout.write(avroTypeScript(CODECS.AVRO.parse(text) as AvroSchema));
    return;
  }
  throw new KappaError(
    'KAPPA_INVALID_ARGUMENT',
    `${file}: give an Avro schema (.avsc) or a Protobuf file (.proto); for a JSON Schema topic, declare the schema with TypeBox and the type is inferred.`,
    { file },
  );
}
