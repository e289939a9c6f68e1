// The process entry from the sources (`npm run dev`, `tsx src/main.ts`, the tests). `npm start`
// runs the same run() from the compiled bundle, through start.cjs.
import { run } from "./run.js";

run();
