// `npm run backup -- <destination file>`: a consistent copy of the embedded store's database,
// taken while the service runs (store/sqlite/sqlite-backup.ts; README, "Backups"). tsc's output,
// dist/src/backup.js, run with plain node: nothing is compiled at run time.
//
// It reads TESSERA_DATA_DIR as the service does (relative: to the directory it runs in, which npm
// makes the project's, as for `npm start`); a relative destination is taken from where npm was
// run (INIT_CWD). Exit codes: 0 written; 1 not written (no database, the destination exists or
// its directory cannot take it, the database stayed locked, the copy did not check out); 2 a
// usage or configuration error (no destination, MONGODB_URI set, a bad TESSERA_DATA_DIR). Stopped
// by SIGINT, SIGTERM or SIGHUP before the copy is named: once the copy's thread has ended, the temporary
// file deleted, ended by the signal.
import { writeSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError, readVariable } from "./config.js";
import { oneLine } from "./core/text.js";
import { startSqliteBackup, type RunningBackup } from "./store/sqlite/sqlite-backup.js";

/**
 * A signal that stops the backup: a terminal's Ctrl-C, a supervisor's stop, the terminal closed
 * (SIGHUP: an ssh session dropped), whose default action left the temporary file, a partial copy
 * of the database, behind.
 */
const STOPS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

async function backUp(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out?: string; err?: string }> {
  if (args.length !== 1 || args[0] === "") return { code: 2, err: "usage: npm run backup -- <destination file>" };
  let dataDir: string;
  try {
    if (readVariable("mongodbUri", env) !== undefined) {
      return {
        code: 2,
        err: 'tessera: backup: MONGODB_URI is set: the store is MongoDB, which this command does not copy; back it up with MongoDB\'s own tools (mongodump, or a snapshot of a replica set member: README, "Backups")',
      };
    }
    dataDir = readVariable("dataDir", env);
  } catch (e) {
    if (e instanceof ConfigError) return { code: 2, err: `tessera: configuration error: ${e.message}` };
    throw e;
  }
  // Stopped (listened for before the temporary file is made, so that no signal ends the process
  // between its creation and here): the temporary file is deleted, one line says so, and the
  // signal is raised again without a listener, so that the process ends by it, as the shell or
  // supervisor that sent it expects (exit status 128 + its number: 130 for SIGINT, 143 for SIGTERM,
  // 129 for SIGHUP).
  // The copy's thread is told to stop and waited for (it finishes the SQLite call under way)
  // before the file is removed: removed first, the thread could write it again. A second signal
  // meanwhile changes nothing.
  let running: RunningBackup | undefined;
  let stopping = false;
  const end = (signal: NodeJS.Signals, removed: string) => {
    writeSync(2, `tessera: backup stopped by ${signal}: nothing written${removed}\n`);
    for (const s of STOPS) process.removeAllListeners(s);
    process.kill(process.pid, signal);
  };
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    if (running === undefined) return end(signal, "");
    const { temporary } = running;
    void running.abandon().then((abandoned) => {
      if (abandoned) end(signal, `; its temporary file ${temporary} removed`); // else named already: the answer follows
    });
  };
  for (const s of STOPS) process.on(s, stop);
  try {
    const started = Date.now();
    running = startSqliteBackup(dataDir, resolve(env.INIT_CWD ?? process.cwd(), args[0]!));
    const copy = await running.done;
    return {
      code: 0,
      out: `tessera: backup of ${copy.source} (schema version ${copy.schemaVersion}) written to ${copy.destination}: ${copy.bytes} bytes in ${Date.now() - started} ms`,
    };
  } catch (e) {
    // One line, never a stack trace: what went wrong, naming the path.
    return { code: 1, err: `tessera: backup failed: ${oneLine(e instanceof Error ? e.message : String(e))}` };
  } finally {
    for (const s of STOPS) process.off(s, stop);
  }
}

const { code, out, err } = await backUp(process.argv.slice(2), process.env);
if (out !== undefined) process.stdout.write(`${out}\n`);
if (err !== undefined) process.stderr.write(`${err}\n`);
process.exitCode = code;
