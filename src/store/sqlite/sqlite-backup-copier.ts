// The worker thread of `npm run backup` (startSqliteBackup in sqlite-backup.ts): writes, checks
// and syncs the copy into the temporary file its plan names, and answers once, so that the main
// thread stays free to answer SIGINT or SIGTERM meanwhile (VACUUM INTO holds its thread until it
// returns). The main thread names the copy, or deletes the temporary file once this thread has
// ended. Given up meanwhile (the stop flag set), it stops at its next step, leaving the file alone.
import { parentPort, workerData } from "node:worker_threads";
import { BackupError, copyDatabase, type CopierAnswer, type CopierData } from "./sqlite-backup.js";

const { plan, stop } = workerData as CopierData;
let answer: CopierAnswer;
try {
  const schemaVersion = copyDatabase(plan, () => Atomics.load(stop, 0) === 1);
  answer = schemaVersion === undefined ? { stopped: true } : { schemaVersion };
} catch (error) {
  answer = { failed: error instanceof Error ? error.message : String(error), backup: error instanceof BackupError };
}
parentPort!.postMessage(answer);
