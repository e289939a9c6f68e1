// The worker thread of `npm run backup` (startSqliteBackup in sqlite-backup.ts): writes, checks
// and syncs the copy into the temporary file its plan names, and answers once, so that the main
// thread stays free to answer SIGINT or SIGTERM meanwhile (VACUUM INTO holds its thread until it
// returns). The main thread names the copy, or deletes the temporary file.
import { parentPort, workerData } from "node:worker_threads";
import { BackupError, copyDatabase, type BackupPlan, type CopierAnswer } from "./sqlite-backup.js";

let answer: CopierAnswer;
try {
  answer = { schemaVersion: copyDatabase(workerData as BackupPlan) };
} catch (error) {
  answer = { failed: error instanceof Error ? error.message : String(error), backup: error instanceof BackupError };
}
parentPort!.postMessage(answer);
