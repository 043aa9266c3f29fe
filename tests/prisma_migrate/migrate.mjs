// Prisma Migrate, offline: Prisma's own schema engine (its WebAssembly build on npm) driven against a real
// PostgreSQL through Prisma's pg driver adapter, for interoperability tests. No Prisma CLI, no download.
//
//   node migrate.mjs deploy                   MIGRATIONS_DIR DATABASE_URL [--model batch|split] [--trace]
//   node migrate.mjs status                   MIGRATIONS_DIR DATABASE_URL [...]
//   node migrate.mjs resolve-applied NAME     MIGRATIONS_DIR DATABASE_URL [...]
//   node migrate.mjs resolve-rolled-back NAME MIGRATIONS_DIR DATABASE_URL [...]
//
// MIGRATIONS_DIR holds migration_lock.toml and the <timestamp>_<name>/migration.sql folders. DATABASE_URL is
// a postgresql:// URL (a socket folder goes in `?host=/path`).
//
// Prints ONE JSON object on stdout:
//   {"ok": true, "command": ..., "model": ..., "result": <the engine's answer>, ...}
//   {"ok": false, "command": ..., "model": ..., "error": {"code": "P3009" | null, "message": ..., "meta": ...}}
// A failed migration script comes back from the engine without a code; the harness then answers the P3018 the
// native engine would give, marked "synthesized": true (see describeError).
// `status` adds "migrations" (the folders found) and "cli": what `prisma migrate status` would conclude from the
// same answer ({"verdict": "up_to_date" | "pending" | "diverged" | "not_managed" | "failed", "exitCode": 0 | 1}).
// --trace adds "trace": every statement the engine sent, in order ({method, sql, args}).
// Exit code: 0 the engine answered, 1 the engine refused or failed (the error object says why), 2 bad usage.
//
// Execution model (--model), i.e. what happens to a migration.sql the engine hands to the driver:
//   batch (default): the whole file is ONE simple-query `client.query(script)`. PostgreSQL runs a
//     multi-statement simple query as one implicit transaction, which is what the native schema engine of
//     Prisma before 7.4 does: the file is atomic, every lock is held to its end, and CONCURRENTLY fails (25001)
//     unless it is the file's only statement. This is the default because it is the faithful model of the
//     native engine of every Prisma before 7.4 without a driver adapter, which is what most deployments run.
//   split: @prisma/adapter-pg's own executeScript, kept as shipped: the file is cut at every `;` (even inside
//     quotes or $$ bodies) and each piece runs on its own, outside any transaction: not atomic, CONCURRENTLY
//     works anywhere. That is Prisma 7 with a driver adapter for Migrate. It is NOT the native engine of 7.4+,
//     which splits with a SQL parser and falls back to one batch when the parser fails.
// In both models the engine hands the driver the whole file in one executeScript call (checked with --trace).
//
// The engine leaves a 10 s timer and the connection pool open: the process exits explicitly. Exiting closes
// the connection, which is also how the native CLI lets go of pg_advisory_lock(72707369).

import fs from 'node:fs';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import * as bg from '@prisma/schema-engine-wasm/schema_engine_bg';

const COMMANDS = { deploy: 0, status: 0, 'resolve-applied': 1, 'resolve-rolled-back': 1 };
const MODELS = ['batch', 'split'];

let output = { ok: false, command: null, model: null };

function finish(code, extra) {
  output = { ...output, ...extra };
  process.stdout.write(`${JSON.stringify(output)}\n`, () => process.exit(code));
}

function usage(message) {
  finish(2, { error: { code: null, kind: 'usage', message, meta: null } });
}

function parseArgs(argv) {
  const positional = [];
  const options = { model: 'batch', trace: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--trace') options.trace = true;
    else if (arg === '--model') options.model = argv[++i];
    else if (arg.startsWith('--model=')) options.model = arg.slice('--model='.length);
    else if (arg.startsWith('--')) return { error: `unknown option ${arg}` };
    else positional.push(arg);
  }
  const [command, ...rest] = positional;
  if (!(command in COMMANDS)) return { error: `unknown command ${command}: one of ${Object.keys(COMMANDS).join(', ')}` };
  const wanted = COMMANDS[command] + 2;
  if (rest.length !== wanted) return { error: `${command} takes ${wanted} arguments, got ${rest.length}` };
  if (!MODELS.includes(options.model)) return { error: `--model is one of ${MODELS.join(', ')}` };
  const name = COMMANDS[command] ? rest.shift() : null;
  const [migrationsDir, databaseUrl] = rest;
  return { command, name, migrationsDir: path.resolve(migrationsDir), databaseUrl, ...options };
}

// The migrations folder, read the way the CLI reads it (prisma/packages/migrate listMigrations): every
// sub-folder, its migration.sql read as UTF-8 text, sorted with localeCompare; the lock file may be absent.
function listMigrations(baseDir) {
  const read = (file) => {
    try {
      return { tag: 'ok', value: fs.readFileSync(file, 'utf8') };
    } catch (error) {
      // The engine wants the reason as a string.
      return { tag: 'error', value: String(error?.message ?? error) };
    }
  };
  const lock = read(path.join(baseDir, 'migration_lock.toml'));
  const folders = fs
    .readdirSync(baseDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => a.localeCompare(b));
  return {
    baseDir,
    lockfile: { path: 'migration_lock.toml', content: lock.tag === 'ok' ? lock.value : null },
    shadowDbInitScript: '',
    migrationDirectories: folders.map((folder) => ({
      path: folder,
      migrationFile: { path: 'migration.sql', content: read(path.join(baseDir, folder, 'migration.sql')) },
    })),
  };
}

// PrismaPg with the execution model chosen, the last failure of a migration script kept (for P3018), and
// optionally every statement the engine sends recorded.
class HarnessPg extends PrismaPg {
  constructor(connectionString, model, trace) {
    super({ connectionString });
    this.model = model;
    this.trace = trace;
    this.scriptFailure = null;
  }

  async connect() {
    const adapter = await super.connect();
    if (this.model === 'batch') {
      adapter.executeScript = async function (script) {
        try {
          await this.client.query(script);
        } catch (error) {
          this.onError(error);
        }
      };
    }
    const runScript = adapter.executeScript.bind(adapter);
    adapter.executeScript = async (script) => {
      try {
        return await runScript(script);
      } catch (error) {
        const cause = error?.cause ?? {};
        const code = cause.originalCode ?? cause.code ?? null;
        this.scriptFailure = {
          code,
          severity: cause.severity ?? (code ? 'ERROR' : null),
          message: String(cause.originalMessage ?? cause.message ?? error?.message ?? error),
        };
        throw error;
      }
    };
    if (this.trace) {
      for (const method of ['queryRaw', 'executeRaw', 'executeScript']) {
        const original = adapter[method].bind(adapter);
        adapter[method] = async (query) => {
          const entry =
            method === 'executeScript' ? { method, sql: query } : { method, sql: query.sql, args: query.args };
          this.trace.push(entry);
          try {
            return await original(query);
          } catch (error) {
            entry.error = String(error?.cause?.originalMessage ?? error?.cause?.kind ?? error?.message ?? error);
            throw error;
          }
        };
      }
    }
    return adapter;
  }
}

async function loadEngine() {
  const wasm = new URL('./node_modules/@prisma/schema-engine-wasm/schema_engine_bg.wasm', import.meta.url);
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(wasm), { './schema_engine_bg.js': bg });
  bg.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start?.();
}

// What `prisma migrate status` concludes from diagnoseMigrationHistory, in the order its CLI checks
// (prisma/packages/migrate MigrateStatus.ts): edited migrations do not count there.
function cliStatus(result) {
  const kind = result.history?.diagnostic;
  if (kind === 'databaseIsBehind') return { verdict: 'pending', exitCode: 1 };
  if (kind === 'historiesDiverge') return { verdict: 'diverged', exitCode: 1 };
  if (!result.hasMigrationsTable) return { verdict: 'not_managed', exitCode: 1 };
  if (result.failedMigrationNames.length > 0) return { verdict: 'failed', exitCode: 1 };
  return { verdict: 'up_to_date', exitCode: 0 };
}

// The engine's own refusals carry Prisma's code (P3008, P3009, P3012, P3017, ...). A migration whose SQL fails
// does not: through a driver adapter the engine only says "external connector error", where the native engine
// answers P3018 with the database's error code (its apply_migration_script). For that case the harness
// builds the P3018 the native engine would give, from the error the driver saw, and says so ("synthesized").
function describeError(error, scriptFailure) {
  const message = String(error?.message ?? error);
  if (error && typeof error === 'object' && typeof error.code === 'string') {
    return { code: error.code, kind: 'engine', message, meta: error.meta ?? null };
  }
  if (scriptFailure) {
    const migrationName = /migration_name="([^"]*)"/.exec(message)?.[1] ?? null;
    const databaseError = scriptFailure.severity
      ? `${scriptFailure.severity}: ${scriptFailure.message}`
      : scriptFailure.message;
    return {
      code: 'P3018',
      kind: 'engine',
      synthesized: true,
      message:
        'A migration failed to apply. New migrations cannot be applied before the error is recovered from. ' +
        'Read more about how to resolve migration issues in a production database: https://pris.ly/d/migrate-resolve' +
        `\n\nMigration name: ${migrationName}\n\nDatabase error code: ${scriptFailure.code ?? 'none'}\n\nDatabase error:\n${databaseError}\n`,
      meta: {
        migration_name: migrationName,
        database_error_code: scriptFailure.code ?? 'none',
        database_error: databaseError,
      },
      engineMessage: message,
    };
  }
  return { code: null, kind: error?.name ?? 'unknown', message, meta: null };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.error) return usage(args.error);
  output = { ok: false, command: args.command, model: args.model };
  if (!fs.existsSync(args.migrationsDir)) return usage(`no migrations folder ${args.migrationsDir}`);

  const trace = args.trace ? [] : null;
  const extra = trace ? { trace } : {};
  await loadEngine();
  const pg = new HarnessPg(args.databaseUrl, args.model, trace);
  const factory = bindMigrationAwareSqlAdapterFactory(pg);
  const log = args.trace ? (line) => process.stderr.write(`${line}\n`) : () => {};
  const filters = { externalTables: [], externalEnums: [] };
  const migrationsList = listMigrations(args.migrationsDir);
  const started = performance.now();
  try {
    const engine = await bg.SchemaEngine.new({ datamodels: undefined }, log, factory);
    let result;
    if (args.command === 'deploy') {
      result = await engine.applyMigrations({ migrationsList, filters });
    } else if (args.command === 'status') {
      result = await engine.diagnoseMigrationHistory({ migrationsList, optInToShadowDatabase: false, filters });
      extra.migrations = migrationsList.migrationDirectories.map((dir) => dir.path);
      extra.cli = cliStatus(result);
    } else if (args.command === 'resolve-applied') {
      result = await engine.markMigrationApplied({ migrationName: args.name, migrationsList });
    } else {
      result = await engine.markMigrationRolledBack({ migrationName: args.name });
    }
    finish(0, { ok: true, result, elapsedMs: Math.round(performance.now() - started), ...extra });
  } catch (error) {
    finish(1, {
      error: describeError(error, args.command === 'deploy' ? pg.scriptFailure : null),
      elapsedMs: Math.round(performance.now() - started),
      ...extra,
    });
  }
}

process.on('uncaughtException', (error) =>
  finish(2, { error: { code: null, kind: 'harness', message: String(error?.stack ?? error), meta: null } }),
);
main().catch((error) => finish(2, { error: { code: null, kind: 'harness', message: String(error?.stack ?? error), meta: null } }));
