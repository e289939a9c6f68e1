import { startServerProcess, signUpAndLogIn } from "../lib.js";
const s = await startServerProcess({}, {});
const tok = await signUpAndLogIn(s.url, "p@example.com");
console.log(JSON.stringify({ url: s.url, tok, pid: s.pid }));
process.on("SIGTERM", async () => { await s.stop(); process.exit(0); });
setInterval(() => {}, 1000);
