/**
 * The `kappa` command. `main(argv)` returns the exit code instead of exiting, so tests and the
 * bin script share it: 0 on success, 1 on any error (a clear message on stderr, nothing partial).
 * The commands are declared here in four groups (topics; the log; running; the views); each
 * command's work is in its own file. The CLI reaches the other layers only through their index.ts.
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KappaError } from '../errors.ts';
import type { DiffOptions } from './diff.ts';
import { DEFAULT_HISTORY, KAFKA_PORT_DEFAULT, WORKER_HEAP_MB_DEFAULT, defaultWorkers } from './defaults.ts';

/**
 * Each command's module, loaded when the command runs: `kappa --help`, `views` or `query` then load
 * neither the engine nor the server, the Kafka listener or the schema formats (about 600 files
 * before; see bench/cli.ts).
 */
const commands = {
  check: () => import('./check.ts'),
  consume: () => import('./consume.ts'),
  types: () => import('./types.ts'),
  demo: () => import('./demo.ts'),
  init: () => import('./init.ts'),
  produce: () => import('./produce.ts'),
  diff: () => import('./diff.ts'),
  replay: () => import('./replay.ts'),
  topics: () => import('./topics.ts'),
  start: () => import('./start.ts'),
  token: () => import('./token.ts'),
  verify: () => import('./verify.ts'),
  views: () => import('./views.ts'),
  lag: () => import('./lag.ts'),
};

export interface CliContext {
  dataDir: string;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  /** Set by a command that finished its work but must report failure (e.g. verify found damage). */
  exitCode: number;
}

export function parseWholeNumber(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `${name} must be a whole number${min === 0 ? ' (0 or more)' : min === 1 ? ' (1 or more)' : ` of at least ${min}`}, not "${value}".`,
      );
    }
    return n;
  };
}

/** A subcommand whose only option is `--json` (print JSON instead of a table). */
function jsonCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return parent.command(nameAndArgs).description(description).option('--json', 'print JSON');
}

/** The version in Kappa's package.json, two folders above this module in src/cli/ and in dist/cli/ alike. */
function kappaVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
}

/** The `--config` given before the command, for the commands that load the app. */
const configOf = (program: Command): string | undefined => program.opts().config as string | undefined;

function buildProgram(ctx: () => CliContext): Command {
  const program = new Command('kappa')
    .description('Kappa: one replayable event log, one stream-processing code path, versioned SQL views.')
    .addOption(new Option('--data-dir <dir>', 'where Kappa keeps its data').env('KAPPA_DATA_DIR').default('./.kappa'))
    .option(
      '--config <file>',
      'the app config (kappa.config.ts or .js); used by `kappa start`, and by `kappa replay`/`rollback` when no `kappa start` is running',
    )
    .version(kappaVersion(), '-V, --version', 'print the version of Kappa')
    .showHelpAfterError('(run `kappa --help` to see the commands)')
    .exitOverride();
  addTopicCommands(program, ctx);
  addLogCommands(program, ctx);
  addRunCommands(program, ctx);
  addViewCommands(program, ctx);
  addDemoCommand(program, ctx);
  program
    .command('init [dir]')
    .description('write a starter app (config, schema, generator, README) into dir (default: here); never overwrites')
    .action(async (dir: string | undefined) => (await commands.init()).initCommand(ctx(), dir));
  program
    .command('types <schema-file>')
    .description('print the TypeScript types of the records an Avro (.avsc) or Protobuf (.proto) schema decodes to')
    .option('--message <name>', 'with a .proto file: only this message (and the types it uses)')
    .action(async (file: string, opts: { message?: string }) =>
      (await commands.types()).typesCommand(ctx(), file, opts),
    );
  program
    .command('check')
    .description('type-check the config and validate its topics, views and outputs; exits 1 on any error')
    .option('--config <file>', 'the app config (default: kappa.config.ts here)')
    .addOption(new Option('--types-json', 'only type-check, and print the errors as JSON').hideHelp())
    .action(async (opts) =>
      (await commands.check()).checkCommand(ctx(), {
        config: (opts.config as string | undefined) ?? configOf(program),
        typesJson: opts.typesJson,
      }),
    );
  return program;
}

/** `kappa topics create | list | describe`. */
function addTopicCommands(program: Command, ctx: () => CliContext): void {
  const topics = program.command('topics').description('create, list, describe and delete topics');
  topics
    .command('create <name>')
    .description('create a topic')
    .option('--partitions <n>', 'number of partitions', parseWholeNumber('--partitions', 1), 1)
    .option(
      '--retention-ms <ms>',
      'delete data older than this; -1 keeps it forever',
      parseWholeNumber('--retention-ms', -1),
      -1,
    )
    .option(
      '--retention-bytes <bytes>',
      'keep at most about this many bytes per partition; -1 = no limit',
      parseWholeNumber('--retention-bytes', -1),
      -1,
    )
    .option(
      '--segment-bytes <bytes>',
      'size at which a partition starts a new segment file',
      parseWholeNumber('--segment-bytes', 1024),
    )
    .action(async (name: string, opts) => (await commands.topics()).topicsCreate(ctx(), name, opts));
  jsonCommand(topics, 'list', 'list topics').action(async (opts) => (await commands.topics()).topicsList(ctx(), opts));
  jsonCommand(topics, 'describe <name>', "show a topic's settings and each partition's offsets").action(
    async (name: string, opts) => (await commands.topics()).topicsDescribe(ctx(), name, opts),
  );
  topics
    .command('delete <name>')
    .description(
      'delete a topic and all its records, with its dead letters and late events (refused while `kappa start` runs, and while a view or output uses it: see --force)',
    )
    .option(
      '--force',
      'delete it even though views or outputs use it: the views that read it are dropped (and rebuilt by the next start if configured), the outputs that read it start again from its first record',
    )
    .action(async (name: string, opts: { force?: boolean }) =>
      (await commands.topics()).topicsDelete(ctx(), name, { force: opts.force, config: configOf(program) }),
    );
}

/** `kappa produce`, `consume`, `verify`: records in and out of the log, and its integrity. */
function addLogCommands(program: Command, ctx: () => CliContext): void {
  program
    .command('produce <topic>')
    .description('append NDJSON from stdin to a topic, one record per line')
    .option('--key-field <path>', 'use this field of each record (dot path, e.g. store.id) as its key')
    .option('--time-field <path>', 'use this field (ms since epoch or ISO time) as the record timestamp')
    .action(async (topic: string, opts) => (await commands.produce()).produceCommand(ctx(), topic, opts));

  program
    .command('consume <topic>')
    .description('print records of a topic as NDJSON')
    .option('--from <where>', 'earliest, latest, an offset, or @<ISO time>', 'earliest')
    .option('--partition <p>', 'read only this partition', parseWholeNumber('--partition', 0))
    .option('--limit <n>', 'stop after this many records', parseWholeNumber('--limit', 0))
    .option('--follow', 'keep waiting for new records (Ctrl-C to stop)')
    .option('--with-meta', 'print {topic,partition,offset,timestamp,key,value} instead of the bare value')
    .action(async (topic: string, opts) =>
      (await commands.consume()).consumeCommand(ctx(), topic, { ...opts, config: configOf(program) }),
    );

  const verifyWhat = 'check every stored batch (CRC, offsets, indexes); exits 1 if any data is damaged';
  jsonCommand(program, 'verify', verifyWhat).action(async (opts) =>
    (await commands.verify()).verifyCommand(ctx(), opts),
  );
}

/** `kappa start`, `token`: running the pipelines and the HTTP API, and its tokens. */
function addRunCommands(program: Command, ctx: () => CliContext): void {
  runtimeOptions(
    program
      .command('start')
      .description('run every pipeline of the config over the log until Ctrl-C (flushes and checkpoints on exit)')
      .option(
        '--flush-interval-ms <ms>',
        'how often tasks commit their rows and checkpoints',
        parseWholeNumber('--flush-interval-ms', 1),
      )
      .option(
        '--workers <n>',
        `worker threads that run the tasks (one task per view and partition, spread round-robin); 0 runs every task on the main thread (default: one per core, ${defaultWorkers()} here)`,
        parseWholeNumber('--workers', 0),
      )
      .option(
        '--worker-heap-mb <mb>',
        `cap on each worker thread's heap in MB (default ${WORKER_HEAP_MB_DEFAULT}); raise it if a worker runs out of memory`,
        parseWholeNumber('--worker-heap-mb', 16),
      )
      .option(
        '--host <address>',
        "the HTTP API's address (default: the config's server.host, or 127.0.0.1; another address needs tokens in the config)",
      )
      .option(
        '--port <port>',
        "the HTTP API's port (default: the config's server.port, or 8080; 0 picks a free one)",
        parseWholeNumber('--port', 0),
      )
      .option('--no-server', 'run the pipelines without the HTTP API')
      .option(
        '--kafka-port <port>',
        `the Kafka listener's port, for any Kafka client (default: the config's server.kafka.port, or ${KAFKA_PORT_DEFAULT}; 0 picks a free one)`,
        parseWholeNumber('--kafka-port', 0),
      )
      .option('--no-kafka', 'run without the Kafka listener')
      .option('--http-log', 'log every HTTP request (JSON lines on stdout)')
      .option('--strict', 'refuse to start if the config has type errors (by default they are printed as warnings)'),
  ).action(async (opts) =>
    (await commands.start()).startCommand(ctx(), {
      log: opts.log ?? (process.env.KAPPA_LOG || undefined),
      store: opts.store ?? (process.env.KAPPA_STORE || undefined),
      heartbeatMs: opts.heartbeatMs,
      sessionTimeoutMs: opts.sessionTimeoutMs,
      config: configOf(program),
      flushIntervalMs: opts.flushIntervalMs,
      workers: opts.workers,
      workerHeapMb: opts.workerHeapMb,
      host: opts.host,
      port: opts.port,
      server: opts.server,
      kafkaPort: opts.kafkaPort,
      kafka: opts.kafka,
      httpLog: opts.httpLog,
      strict: opts.strict,
    }),
  );

  program
    .command('token')
    .description(
      'make a token for the HTTP API: prints the token once, and the line to add to server.tokens in the config',
    )
    .argument(
      '<name>',
      'a name for the token (shown in logs, never the token itself); `kappa token create <name>` works too',
    )
    .allowExcessArguments(true)
    .requiredOption(
      '--scopes <list>',
      'comma-separated: produce:<topic>, consume:<topic>, query, admin (* matches any characters, e.g. produce:*)',
    )
    .action(async (_name: string, opts, cmd: Command) => {
      const { tokenCommand, tokenName } = await commands.token();
      await tokenCommand(ctx(), tokenName(cmd.args), opts.scopes as string);
    });
}

/** `kappa replay`, `rollback`, `views`, `query`, `lag`: the views, their versions and their lag. */
function addViewCommands(program: Command, ctx: () => CliContext): void {
  program
    .command('replay <view>')
    .description(
      'build a new version of a view by replaying the log beside the live one; it goes live once it has caught up with the head',
    )
    .option(
      '--from <where>',
      'earliest, or @<ISO time> to replay only the records from that time on (found with the time index)',
    )
    .option('--cancel', 'cancel the build in progress (what it built so far is dropped)')
    .option(
      '--no-wait',
      'return once the build has started instead of following its progress until the version is live',
    )
    .addOption(storeOption())
    .action(async (view: string, opts) =>
      (await commands.replay()).replayCommand(ctx(), view, {
        config: configOf(program),
        from: opts.from,
        cancel: opts.cancel,
        wait: opts.wait,
        store: opts.store,
      }),
    );

  program
    .command('rollback <view>')
    .description('make the previous version of a view live again; it first catches up from its own checkpoints')
    .option('--to <version>', 'the retired version to make live (`kappa views` lists them); default the previous one')
    .option('--no-wait', 'return once the rollback has started instead of following it until the version is live')
    .addOption(storeOption())
    .action(async (view: string, opts) =>
      (await commands.replay()).rollbackCommand(ctx(), view, {
        config: configOf(program),
        wait: opts.wait,
        to: opts.to,
        store: opts.store,
      }),
    );

  const viewsWhat = 'list views with their versions (live, building with progress, retired), rows and lag';
  const views = readRuntimeOptions(jsonCommand(program, 'views', viewsWhat)).action(async (opts) =>
    (await commands.views()).viewsCommand(ctx(), opts),
  );
  addViewsSubcommands(views, ctx);
  const queryWhat = 'run a read-only SQL query over the views';
  jsonCommand(program, 'query <sql>', queryWhat).action(async (sql: string, opts) =>
    (await commands.views()).queryCommand(ctx(), sql, opts),
  );
  const lagWhat =
    'per view (and output pipeline) and partition, then per Kafka consumer group and partition: committed offset, log end, lag';
  readRuntimeOptions(jsonCommand(program, 'lag', lagWhat)).action(async (opts) =>
    (await commands.lag()).lagCommand(ctx(), opts),
  );
}

/** `kappa views drop | diff | builds`. */
function addViewsSubcommands(views: Command, ctx: () => CliContext): void {
  views
    .command('drop <view>')
    .description(
      'drop every version of a view, its rows and its SQL view (refused while `kappa start` runs; needs --yes)',
    )
    .option('--yes', 'really drop it (without it, only says what would be dropped)')
    .action(async (name: string, opts: { yes?: boolean }) => (await commands.views()).viewsDrop(ctx(), name, opts));
  views
    .command('diff <view> <a> <b>')
    .description('compare two versions of a view: row counts, totals per measure, and the rows that differ (by key)')
    .option('--limit <n>', 'list at most this many rows of each kind of difference (default 20)')
    .option('--json', 'print JSON')
    // `kappa views` has its own --json, which takes the flag wherever it is: read both.
    .action(async (view: string, a: string, b: string, _opts: DiffOptions, cmd: Command) =>
      (await commands.diff()).viewsDiff(ctx(), view, a, b, cmd.optsWithGlobals<DiffOptions>()),
    );
  views
    .command('builds <view>')
    .description('the builds of a view, newest first: why, what changed in the logic, records read, duration, result')
    .option('--json', 'print JSON')
    .action(async (view: string, _opts: DiffOptions, cmd: Command) =>
      (await commands.diff()).viewsBuilds(ctx(), view, cmd.optsWithGlobals<DiffOptions>()),
    );
}

/** `kappa demo`: the sales example with a generator, what `npm start` runs. */
function addDemoCommand(program: Command, ctx: () => CliContext): void {
  program
    .command('demo')
    .description(
      'the sales demo (what `npm start` runs): sales events at a steady rate, the sales pipelines, the HTTP API and the dashboard, until Ctrl-C',
    )
    .option('--rate <n>', 'sales events a second', parseWholeNumber('--rate', 1), 200)
    .option(
      '--history <n>',
      'sales to seed over the last 24 hours at the first start (0: none)',
      parseWholeNumber('--history', 0),
      DEFAULT_HISTORY,
    )
    .option('--host <address>', "the HTTP API's address (default 127.0.0.1)")
    .option('--port <port>', "the HTTP API's port (default 8080; 0 picks a free one)", parseWholeNumber('--port', 0))
    .option(
      '--kafka-port <port>',
      `the Kafka listener's port (default ${KAFKA_PORT_DEFAULT}; 0 picks a free one)`,
      parseWholeNumber('--kafka-port', 0),
    )
    .option('--no-kafka', 'run without the Kafka listener')
    .option(
      '--workers <n>',
      'worker threads for the pipelines (default: one per core)',
      parseWholeNumber('--workers', 0),
    )
    .action(async (opts) =>
      (await commands.demo()).demoCommand(ctx(), {
        rate: opts.rate,
        history: opts.history,
        host: opts.host,
        port: opts.port,
        kafkaPort: opts.kafkaPort,
        kafka: opts.kafka,
        workers: opts.workers,
      }),
    );
}

export async function main(
  argv: string[],
  io: Partial<Pick<CliContext, 'stdout' | 'stderr' | 'stdin'>> = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let context: CliContext | null = null;
  const ctx = (): CliContext =>
    (context ??= {
      dataDir: resolve(program.opts().dataDir as string),
      stdout,
      stderr,
      stdin: io.stdin ?? process.stdin,
      exitCode: 0,
    });
  const program = buildProgram(ctx);
  program.configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return (context as CliContext | null)?.exitCode ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    if (err instanceof KappaError) {
      stderr.write(`kappa: error: ${err.message}\n`);
      return 1;
    }
    stderr.write(`kappa: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

/** `kappa start`'s options for a log and store outside the data dir, and for sharing the tasks (docs/scale-out.md). */
function runtimeOptions(cmd: Command): Command {
  return cmd
    .option(
      '--log <url>',
      'keep the log on a Kafka cluster, kafka://host:port[,host:port…], instead of the data dir (env KAPPA_LOG; see docs/scale-out.md)',
    )
    .option(
      '--store <url>',
      'keep the views in PostgreSQL, postgres://user:password@host:5432/db, instead of SQLite in the data dir; processes on the same store share the tasks (env KAPPA_STORE)',
    )
    .option(
      '--heartbeat-ms <ms>',
      'with --store postgres: how often this process renews its leases and rebalances the tasks (default 1000)',
      parseWholeNumber('--heartbeat-ms', 50),
    )
    .option(
      '--session-timeout-ms <ms>',
      'with --store postgres: how long a process that stopped answering keeps its tasks before the others take them (default 10000)',
      parseWholeNumber('--session-timeout-ms', 200),
    );
}

/** `--store` of `kappa replay` and `rollback`: the request goes to the coordinator of the processes on that store. */
function storeOption(): Option {
  return new Option(
    '--store <url>',
    'the PostgreSQL store of a cluster (postgres://…, as given to kappa start): the request goes to its coordinator',
  ).env('KAPPA_STORE');
}

/** `--log` and `--store` of the commands that read a running cluster's state (`views`, `lag`). */
function readRuntimeOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--log <url>',
        'read the log on a Kafka cluster, kafka://host:port[,host:port…], instead of the data dir (as given to kappa start)',
      ).env('KAPPA_LOG'),
    )
    .addOption(
      new Option(
        '--store <url>',
        'read the views in PostgreSQL, postgres://user:password@host:5432/db, instead of SQLite in the data dir; also shows which process owns each task, and the processes',
      ).env('KAPPA_STORE'),
    );
}
