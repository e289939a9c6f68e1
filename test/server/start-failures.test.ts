// How the start fails: a bad value, a contradiction between two variables, or a resource that is
// not there stops the process with one line on stderr naming the variable (or the cause), a
// non-zero exit, and never the value of a secret.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type AddressInfo, type Server } from "node:net";
import { workerIdVariable } from "../../src/cluster.js";
import { ConfigError, loadConfig, unknownVariables, unusedVariables } from "../../src/config.js";
import { projectRoot } from "../../src/project-files.js";
import { ferretdbBinary, PrivateFerretDb } from "../support/ferretdb.js";
import { entryArgv, killService, runUntilExit, startService } from "../support/process.js";

/** The message loadConfig throws for `env`, or "" when it accepts it. */
function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
    return "";
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
}

/** Starts the compiled service with `env` (test credentials, cheap hashing) until it exits. */
const start = (env: Record<string, string>) => runUntilExit("compiled", env);

describe("config: a value is quoted on one line, whatever it holds", () => {
  it("a line break is escaped, not written", () => {
    assert.equal(refusal({ PORT: "80\n81" }), 'PORT: must be a whole number, got "80\\n81"');
    assert.equal(refusal({ TESSERA_LOG_LEVEL: "info\r\nerror" }), 'TESSERA_LOG_LEVEL: must be one of debug, info, warn, error, silent, got "info\\r\\nerror"');
    assert.equal(refusal({ TESSERA_TRUSTED_PROXIES: "10.0.0.0/8\n192.0.2.1" }), 'TESSERA_TRUSTED_PROXIES: "10.0.0.0/8\\n192.0.2.1": the prefix length must be 0 to 32');
    assert.equal(refusal({ TESSERA_NAT64_PREFIXES: "64:ff9b:1::/64\n2001:db8::/32" }), 'TESSERA_NAT64_PREFIXES: "64:ff9b:1::/64\\n2001:db8::/32" is not an IPv6 prefix (address/length)');
    assert.equal(refusal({ TESSERA_NAT64_PREFIXES: "64:ff9b:1::/50" }), 'TESSERA_NAT64_PREFIXES: "64:ff9b:1::/50": the prefix length must be 32, 40, 48, 56, 64 or 96 (RFC 6052)');
  });

  it("a huge value is cut, its length said", () => {
    const huge = "x".repeat(100_000);
    assert.equal(refusal({ TESSERA_JWT_ALG: huge }), `TESSERA_JWT_ALG: must be one of EdDSA, ES256, HS256, got "${"x".repeat(64)}"... (100000 characters)`);
  });

  it("a refused start writes one line and exits 2", async function () {
    this.timeout(30000);
    const r = await start({ HOST: "127.0.0.1\ntessera: listening" });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'tessera: configuration error: HOST: must be an IP address or a host name, got "127.0.0.1\\ntessera: listening"\n');
  });
});

describe("config: values no deployment means are refused by name", () => {
  for (const [env, expected] of [
    [{ TESSERA_CLIENT_IDS: "web, app, web" }, 'TESSERA_CLIENT_IDS: "web" is listed twice'],
    // A secret pasted into another variable is named, never quoted.
    [
      { TESSERA_ADMIN_TOKEN: "admin-token-0123456789", TESSERA_CLIENT_IDS: "web, admin-token-0123456789, admin-token-0123456789" },
      "TESSERA_CLIENT_IDS: <the value of TESSERA_ADMIN_TOKEN> is listed twice",
    ],
    [
      { TESSERA_JWT_SECRET: " a-jwt-secret-of-32-bytes-0123456789 ", TESSERA_CORS_ORIGINS: "a-jwt-secret-of-32-bytes-0123456789" },
      "TESSERA_CORS_ORIGINS: <the value of TESSERA_JWT_SECRET> is not a web origin (scheme://host[:port], as a browser sends it) or *",
    ],
    [{ TESSERA_CORS_ORIGINS: "https://a.example, https://a.example" }, 'TESSERA_CORS_ORIGINS: "https://a.example" is listed twice'],
    [{ TESSERA_TRUSTED_PROXIES: "10.0.0.0/8,10.0.0.0/8" }, 'TESSERA_TRUSTED_PROXIES: "10.0.0.0/8" is listed twice'],
    [{ TESSERA_DATA_DIR: "   " }, 'TESSERA_DATA_DIR: must not be blank, begin or end with white space, or hold control characters, got "   "'],
    [{ TESSERA_DATA_DIR: "/var/lib/tessera\n" }, 'TESSERA_DATA_DIR: must not be blank, begin or end with white space, or hold control characters, got "/var/lib/tessera\\n"'],
    [{ TESSERA_JWT_AUDIENCE: " " }, 'TESSERA_JWT_AUDIENCE: must not be blank, begin or end with white space, or hold control characters, got " "'],
    [{ TESSERA_JWT_ISSUER: "tessera " }, 'TESSERA_JWT_ISSUER: must not be blank, begin or end with white space, or hold control characters, got "tessera "'],
    [{ NODE_ENV: "staging " }, 'NODE_ENV: must not be blank, begin or end with white space, or hold control characters, got "staging "'],
    [{ TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48: "0" }, "TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48: must be between 1 and 1000000, got 0"],
    [{ TESSERA_SIGNUP_MAX_PER_IPV6_48: "100 per hour" }, 'TESSERA_SIGNUP_MAX_PER_IPV6_48: must be a whole number, got "100 per hour"'],
    [{ TESSERA_API_TOKEN_RETENTION_DAYS: "0" }, "TESSERA_API_TOKEN_RETENTION_DAYS: must be between 1 and 36500, got 0"],
    [{ TESSERA_API_TOKEN_RETENTION_DAYS: "36501" }, "TESSERA_API_TOKEN_RETENTION_DAYS: must be between 1 and 36500, got 36501"],
    [{ TESSERA_API_TOKEN_RETENTION_DAYS: "30d" }, 'TESSERA_API_TOKEN_RETENTION_DAYS: must be a whole number, got "30d"'],
  ] as const) {
    it(`${JSON.stringify(env)} -> ${expected}`, () => {
      assert.equal(refusal(env), expected);
    });
  }

  it("the IPv6 /48 limits default to 100 logins (20 x TESSERA_LOGIN_MAX_FAILURES's 5) and 100 sign-ups (5 x TESSERA_SIGNUP_MAX_PER_ADDRESS's 20)", () => {
    const config = loadConfig({});
    assert.deepEqual(
      [config.loginMaxFailures, config.loginMaxFailuresPerIpv6_48, config.signupMaxPerAddress, config.signupMaxPerIpv6_48],
      [5, 100, 20, 100],
    );
  });

  it("TESSERA_API_TOKEN_RETENTION_DAYS: 30 unset, as TESSERA_USER_TOKEN_RETENTION_DAYS; a whole number of days from 1 to 36500 is taken", () => {
    assert.equal(loadConfig({}).apiTokenRetentionDays, 30);
    assert.equal(loadConfig({ TESSERA_API_TOKEN_RETENTION_DAYS: "1" }).apiTokenRetentionDays, 1);
    assert.equal(loadConfig({ TESSERA_API_TOKEN_RETENTION_DAYS: "36500" }).apiTokenRetentionDays, 36500);
  });

  it("a directory name with inner spaces and an issuer URL are accepted", () => {
    assert.equal(refusal({ TESSERA_DATA_DIR: "/srv/tessera data", TESSERA_JWT_ISSUER: "https://auth.example.com" }), "");
  });
});

describe("config: HOST that the resolver would read as another IPv4 address than it shows", () => {
  // getaddrinfo reads a name ending in a number as an IPv4 address in inet_aton's notations (a
  // part with a leading 0 octal, 0x hexadecimal, fewer than four parts): 127.000.000.010 was
  // listened on as 127.0.0.8, and 0 as 0.0.0.0 (every interface), the start going on.
  const why = "the resolver reads a name ending in a number as an IPv4 address (a part with a leading 0 as octal, 0x as hexadecimal, fewer than four parts as filling the last): write the address as four decimal numbers without leading zeros, or a host name";
  for (const host of ["127.000.000.010", "0", "127.1", "2130706433", "0x7f000001", "10.0.0.1."]) {
    it(`${JSON.stringify(host)} -> refused, naming HOST`, () => {
      assert.equal(refusal({ HOST: host }), `HOST: must be an IP address or a host name, got ${JSON.stringify(host)}: ${why}`);
    });
  }
  it("IP addresses and host names, numbers inside them included, are accepted", () => {
    for (const host of ["127.0.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1", "localhost", "localhost.", "db1", "1password.example", "10-0-0-1.example.com", "app.0x10.example"]) {
      assert.equal(refusal({ HOST: host }), "", host);
    }
  });
});

describe("config: a whole number too large for a double is quoted as written", () => {
  // It was quoted as the double it reads as: "got 1e+22", "got Infinity", 2^53 + 1 as 2^53.
  for (const [env, expected] of [
    [{ PORT: "9".repeat(22) }, `PORT: must be between 0 and 65535, got "${"9".repeat(22)}"`],
    [{ PORT: "9007199254740993" }, 'PORT: must be between 0 and 65535, got "9007199254740993"'],
    [{ TESSERA_WORKERS: `-${"9".repeat(400)}` }, `TESSERA_WORKERS: must be between 1 and 256, got "-${"9".repeat(63)}"... (401 characters)`],
  ] as const) {
    it(`${JSON.stringify(env).slice(0, 60)} -> ${expected.slice(0, 60)}`, () => {
      assert.equal(refusal(env), expected);
    });
  }
});

describe("config: variables that contradict each other are refused, both named", () => {
  it("TESSERA_METRICS=off with TESSERA_METRICS_PORT set (no /metrics would be served there)", () => {
    assert.equal(
      refusal({ TESSERA_METRICS: "off", TESSERA_METRICS_PORT: "9100" }),
      "TESSERA_METRICS and TESSERA_METRICS_PORT: metrics are off, so no port would serve them; unset TESSERA_METRICS_PORT or turn TESSERA_METRICS on",
    );
  });
});

describe("start: MONGODB_URI that cannot be used stops the start naming it, never its password", () => {
  const password = "pw-Secret-7f3a9c";

  it("a database name that is not percent-encoding -> exit 2, MONGODB_URI named", async function () {
    this.timeout(30000);
    const r = await start({ MONGODB_URI: `mongodb://tessera:${password}@127.0.0.1:1/%zz` });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, "tessera: configuration error: MONGODB_URI: the database name is not valid percent-encoding\n");
  });

  // Held to TESSERA_MONGODB_DATABASE's rules: the driver refused "a.b" only as the store opened,
  // as "failed to start: Database names cannot contain the character '.'" (exit 1).
  it("a database name MongoDB does not take -> exit 2, MONGODB_URI named with what it takes", async function () {
    this.timeout(30000);
    const r = await start({ MONGODB_URI: `mongodb://tessera:${password}@127.0.0.1:1/tessera.prod` });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr,
      'tessera: configuration error: MONGODB_URI: the database it names must be a MongoDB database name (1 to 63 bytes, none of / \\ . " $, a space or a control character), got "tessera.prod"\n',
    );
    assert.equal(refusal({ MONGODB_URI: "mongodb://127.0.0.1:1/a%20b" }), 'MONGODB_URI: the database it names must be a MongoDB database name (1 to 63 bytes, none of / \\ . " $, a space or a control character), got "a b"');
    assert.equal(refusal({ MONGODB_URI: `mongodb://127.0.0.1:1/${"x".repeat(64)}` }).startsWith("MONGODB_URI: the database it names must be a MongoDB database name"), true);
    assert.equal(loadConfig({ MONGODB_URI: `mongodb://127.0.0.1:1/${"x".repeat(63)}` }).mongodbDatabase, "x".repeat(63));
  });

  // A bad value, found by the driver as the store opens: a configuration error (exit 2) like the
  // database name's above, not a failure a restart could mend (README, Configuration).
  it("a connection string the driver cannot parse -> exit 2, MONGODB_URI named with the driver's reason", async function () {
    this.timeout(30000);
    const r = await start({ MONGODB_URI: `mongodb://tessera:${password}@127.0.0.1:notaport/db` });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, "tessera: configuration error: MONGODB_URI: not a usable connection string: Unable to parse 127.0.0.1:notaport with URL\n");
    assert.ok(!(r.stdout + r.stderr).includes(password));
  });

  it("an option the driver does not know -> exit 2, MONGODB_URI named", async function () {
    this.timeout(30000);
    const r = await start({ MONGODB_URI: `mongodb://tessera:${password}@127.0.0.1:1/db?readPreferance=primary` });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, "tessera: configuration error: MONGODB_URI: not a usable connection string: option readpreferance is not supported\n");
    assert.ok(!(r.stdout + r.stderr).includes(password));
  });

  it("a server that is not there (a closed port) -> exit 1, the cause named", async function () {
    this.timeout(30000);
    const r = await start({ MONGODB_URI: `mongodb://tessera:${password}@127.0.0.1:1/db` });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, "tessera: failed to start: MongoDB unavailable: connect ECONNREFUSED 127.0.0.1:1\n");
    assert.ok(!(r.stdout + r.stderr).includes(password));
  });
});

describe("start: a MongoDB server that answers but cannot reach its own storage (FerretDB without its PostgreSQL)", () => {
  let db: PrivateFerretDb | undefined;
  before(function () {
    if (!ferretdbBinary()) {
      if (process.env.CI === "true") throw new Error("CI=true but the FerretDB binary is missing (FERRETDB_BIN)");
      this.skip();
    }
  });
  after(async () => db?.destroy());

  it("-> exit 1, one line saying MongoDB is unavailable and why (as for a server that is not there)", async function () {
    this.timeout(30000);
    db = await PrivateFerretDb.start({ backendLink: true });
    await db.cutBackend();
    const r = await start({ MONGODB_URI: db.uri });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^tessera: failed to start: MongoDB unavailable: .*failed to connect to `user=postgres database=tessera_fdb_[0-9a-f]+`.*connection refused[^\n]*\n$/);
  });
});

describe("start: TESSERA_DATA_DIR that is a link to nothing", () => {
  it("-> exit 1, one line naming the variable and the cause", async function () {
    this.timeout(30000);
    const dir = mkdtempSync(join(tmpdir(), "tessera-datadir-"));
    try {
      const link = join(dir, "data");
      symlinkSync(join(dir, "gone"), link);
      const r = await start({ TESSERA_DATA_DIR: link });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, `tessera: failed to start: TESSERA_DATA_DIR: cannot use the directory ${link} (ENOENT)\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("start: TESSERA_DATA_DIR that is a file", () => {
  it("-> exit 1, one line naming the variable and what is wrong", async function () {
    this.timeout(30000);
    const dir = mkdtempSync(join(tmpdir(), "tessera-datadir-"));
    try {
      const file = join(dir, "data");
      writeFileSync(file, "");
      const r = await start({ TESSERA_DATA_DIR: file });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, `tessera: failed to start: TESSERA_DATA_DIR: ${file} is not a directory\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("start: a listen that fails names the variable to change", () => {
  let holder: Server;
  let taken: number;
  before(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    taken = (holder.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => holder.close(() => resolve())));

  for (const [variable, env] of [
    ["PORT", (port: number) => ({ PORT: String(port) })],
    ["TESSERA_METRICS_PORT", (port: number) => ({ TESSERA_METRICS_PORT: String(port) })],
  ] as const) {
    it(`${variable} taken -> exit 1, "${variable}: listen EADDRINUSE ..."`, async function () {
      this.timeout(30000);
      const r = await start(env(taken));
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, `tessera: failed to start: ${variable}: listen EADDRINUSE: address already in use 127.0.0.1:${taken}\n`);
    });
  }

  it("HOST an address not this machine's -> exit 1, HOST named", async function () {
    this.timeout(30000);
    const r = await start({ HOST: "192.0.2.77" });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, "tessera: failed to start: HOST: listen EADDRNOTAVAIL: address not available 192.0.2.77\n");
  });
});

describe("config: a password in a refused URL is never quoted", () => {
  for (const [env, expected] of [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "ftp://tracer:pw-Secret-1@collector" }, 'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http or https URL, got "ftp://tracer:<hidden>@collector"'],
    [{ TESSERA_PUBLIC_URL: "https://admin:pw-Secret-1@auth.example.com" }, 'TESSERA_PUBLIC_URL: must have no query, fragment or credentials, got "https://admin:<hidden>@auth.example.com"'],
    [{ TESSERA_CORS_ORIGINS: "https://app.example.com, https://u:pw-Secret-1@app.example.com" }, 'TESSERA_CORS_ORIGINS: "https://u:<hidden>@app.example.com" is not a web origin (scheme://host[:port], as a browser sends it) or *'],
  ] as const) {
    it(`${Object.keys(env)[0]} -> the password <hidden>`, () => {
      assert.equal(refusal(env), expected);
    });
  }
});

describe("start: the embedded store's database file that cannot be one", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tessera-datadir-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a directory where tessera.db should be -> exit 1, the file named", async function () {
    this.timeout(30000);
    mkdirSync(join(dir, "tessera.db"));
    const r = await start({ TESSERA_DATA_DIR: dir });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `tessera: failed to start: TESSERA_DATA_DIR: ${join(dir, "tessera.db")} is not a file\n`);
  });

  it("a file that is not a SQLite database -> exit 1, the file named", async function () {
    this.timeout(30000);
    writeFileSync(join(dir, "tessera.db"), "not a database, not even close to one: some text long enough to be read\n".repeat(20));
    const r = await start({ TESSERA_DATA_DIR: dir });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `tessera: failed to start: TESSERA_DATA_DIR: ${join(dir, "tessera.db")} is not a SQLite database (SQLITE_NOTADB)\n`);
  });
});

describe("config: NODE_ENV=production generates no credential", () => {
  const kek = "kek-0123456789abcdef0123456789abcdef";
  it("without TESSERA_ADMIN_TOKEN: refused (a generated one would be printed into the logs)", () => {
    assert.equal(
      refusal({ NODE_ENV: "production", TESSERA_KEY_ENCRYPTION_KEY: kek, TESSERA_CLIENT_IDS: "web" }),
      "TESSERA_ADMIN_TOKEN: required when NODE_ENV=production (only development generates one, printed on stderr)",
    );
  });
  it("without TESSERA_CLIENT_IDS: refused", () => {
    assert.equal(
      refusal({ NODE_ENV: "production", TESSERA_KEY_ENCRYPTION_KEY: kek, TESSERA_ADMIN_TOKEN: "admin-token-0123456789" }),
      "TESSERA_CLIENT_IDS: required when NODE_ENV=production with the Session API on (only development generates one, printed on stderr)",
    );
  });
  it("without TESSERA_CLIENT_IDS but with the Session API off (no client presents one): accepted", () => {
    assert.equal(refusal({ NODE_ENV: "production", TESSERA_KEY_ENCRYPTION_KEY: kek, TESSERA_ADMIN_TOKEN: "admin-token-0123456789", TESSERA_SESSION_API: "false" }), "");
  });
  it("under HS256 (no private signing key is stored, so none to seal): accepted without TESSERA_KEY_ENCRYPTION_KEY", () => {
    const hs256 = { TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: "hs256-secret-0123456789abcdef0123456789" };
    assert.equal(refusal({ NODE_ENV: "production", ...hs256, TESSERA_ADMIN_TOKEN: "admin-token-0123456789", TESSERA_CLIENT_IDS: "web" }), "");
  });
  it("with both (and the key encryption key): accepted, nothing generated", () => {
    const config = loadConfig({ NODE_ENV: "production", TESSERA_KEY_ENCRYPTION_KEY: kek, TESSERA_ADMIN_TOKEN: "admin-token-0123456789", TESSERA_CLIENT_IDS: "web" });
    assert.deepEqual(config.generated, {});
  });
});

describe("config: one secret given for two roles is refused, naming both, never the value", () => {
  const secret = "one-secret-for-all-0123456789abcdef";
  for (const [a, b, extra] of [
    ["TESSERA_ADMIN_TOKEN", "TESSERA_KEY_ENCRYPTION_KEY", {}],
    ["TESSERA_ADMIN_TOKEN", "TESSERA_JWT_SECRET", { TESSERA_JWT_ALG: "HS256" }],
    ["TESSERA_JWT_SECRET", "TESSERA_KEY_ENCRYPTION_KEY", { TESSERA_JWT_ALG: "HS256" }],
    ["TESSERA_ADMIN_TOKEN", "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS", { TESSERA_KEY_ENCRYPTION_KEY: "the-current-key-encryption-key-0123" }],
  ] as const) {
    it(`${a} = ${b}`, () => {
      const message = refusal({ [a]: secret, [b]: secret, ...extra });
      assert.equal(message, `${a} and ${b}: the same secret; each must be its own (the admin token is sent with every admin call, the others never leave the service)`);
    });
  }
  it("a client id equal to TESSERA_ADMIN_TOKEN (client ids are sent by every client, browsers too)", () => {
    assert.equal(
      refusal({ TESSERA_ADMIN_TOKEN: "admin-token-0123456789", TESSERA_CLIENT_IDS: "web,admin-token-0123456789" }),
      "TESSERA_CLIENT_IDS and TESSERA_ADMIN_TOKEN: a client id is the admin token; client ids are sent by every client, the admin token by admins alone",
    );
  });
});

describe("config: a client id no client can send is refused", () => {
  for (const [id, why] of [
    ["web\napp", "a line break"],
    ["wéb", "a non-ASCII letter"],
  ] as const) {
    it(`with ${why}`, () => {
      assert.equal(refusal({ TESSERA_CLIENT_IDS: `ios, ${id}` }), `TESSERA_CLIENT_IDS: ${JSON.stringify(id)} is not printable ASCII (it is sent as the x-koms-clientid header)`);
    });
  }
  it("inner spaces and punctuation are accepted", () => {
    assert.deepEqual(loadConfig({ TESSERA_CLIENT_IDS: "my app, web:v2" }).clientIds, ["my app", "web:v2"]);
  });
});

describe("config: a client id too long for a request's headers", () => {
  // The server refuses a header block over 16 KiB (431): no client could send it.
  const id = (n: number) => "0123456789abcdef".repeat(Math.ceil(n / 16)).slice(0, n);
  it("15361 bytes -> refused, the limit named, the id quoted cut short", () => {
    assert.equal(
      refusal({ TESSERA_CLIENT_IDS: `web, ${id(15361)}` }),
      `TESSERA_CLIENT_IDS: "${id(64)}"... (15361 characters) is longer than 15360 bytes: it is sent as the x-koms-clientid header, and the server limits a request's headers to 16384 bytes (1024 left for the request line and the other headers)`,
    );
  });
  it("15360 bytes -> accepted", () => {
    assert.deepEqual(loadConfig({ TESSERA_CLIENT_IDS: `web, ${id(15360)}` }).clientIds, ["web", id(15360)]);
  });
});

describe("config: a MongoDB database name holding a control character is refused", () => {
  it("a line break", () => {
    assert.equal(
      refusal({ MONGODB_URI: "mongodb://127.0.0.1:1/", TESSERA_MONGODB_DATABASE: "tessera\nprod" }),
      'TESSERA_MONGODB_DATABASE: must be a MongoDB database name (1 to 63 bytes, none of / \\ . " $, a space or a control character), got "tessera\\nprod"',
    );
  });
});

describe("config: TESSERA_JWT_SECRET without TESSERA_JWT_ALG=HS256", () => {
  it("is refused naming both (the tokens would be signed with another algorithm than the secret's verifiers expect)", () => {
    assert.equal(
      refusal({ TESSERA_JWT_SECRET: "an-hs256-secret-of-32-bytes-or-more" }),
      "TESSERA_JWT_SECRET and TESSERA_JWT_ALG: a secret is set but TESSERA_JWT_ALG is EdDSA, which does not use it; set TESSERA_JWT_ALG=HS256 or unset TESSERA_JWT_SECRET",
    );
    assert.equal(refusal({ TESSERA_JWT_SECRET: "an-hs256-secret-of-32-bytes-or-more", TESSERA_JWT_ALG: "HS256" }), "");
  });
});

describe("start: a TLS file that is no regular file, or far too large for a PEM file", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tessera-tlsfile-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a FIFO (the start waited for a writer forever, silent) -> exit 2, one line", async function () {
    this.timeout(30000);
    const fifo = join(dir, "cert.pem");
    execFileSync("mkfifo", [fifo]);
    const r = await start({ TESSERA_TLS_CERT_FILE: fifo, TESSERA_TLS_KEY_FILE: fifo });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `tessera: configuration error: TESSERA_TLS_CERT_FILE: ${JSON.stringify(fifo)} is not a regular file\n`);
  });

  it("a file of 2 MiB -> exit 2, one line", async function () {
    this.timeout(30000);
    const big = join(dir, "cert.pem");
    writeFileSync(big, Buffer.alloc(2 * 1024 * 1024, 0x41));
    const r = await start({ TESSERA_TLS_CERT_FILE: big, TESSERA_TLS_KEY_FILE: big });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `tessera: configuration error: TESSERA_TLS_CERT_FILE: ${JSON.stringify(big)} is larger than 1 MiB, which no PEM certificate or key is\n`);
  });
});

describe("config: a TLS file variable given the key itself, not a file's path, is refused without quoting it", () => {
  // An operator pastes the PEM text (or its base64, as a secret store hands it out) where the
  // file's path goes. It was quoted as a path that cannot be read, its first 64 characters: the
  // label and 36 characters of the key's base64, some of them the private key's own bytes.
  // A readable file for the other variable: only the one holding the text is refused.
  const certFile = join(projectRoot, "README.md");
  const why = "must be the path of a file, not the key or certificate itself (the value holds PEM text, or PEM text in base64, and is not shown); write it to a file readable by Tessera's user alone and give that file's path";
  const pems = {
    "an Ed25519 key (PKCS #8)": generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    "a P-256 key (SEC 1)": generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }) as string,
  };

  for (const [what, pem] of Object.entries(pems)) {
    it(`TESSERA_TLS_KEY_FILE holding ${what} -> refused naming it, nothing of the key quoted`, () => {
      assert.equal(refusal({ TESSERA_TLS_CERT_FILE: certFile, TESSERA_TLS_KEY_FILE: pem }), `TESSERA_TLS_KEY_FILE: ${why}`);
    });
    it(`TESSERA_TLS_KEY_FILE holding ${what} in base64 -> refused naming it, nothing of it quoted`, () => {
      const encoded = Buffer.from(pem).toString("base64");
      assert.equal(refusal({ TESSERA_TLS_CERT_FILE: certFile, TESSERA_TLS_KEY_FILE: encoded }), `TESSERA_TLS_KEY_FILE: ${why}`);
    });
    it(`TESSERA_TLS_CERT_FILE holding ${what} (the two swapped) -> refused naming it, nothing of the key quoted`, () => {
      assert.equal(refusal({ TESSERA_TLS_CERT_FILE: pem, TESSERA_TLS_KEY_FILE: certFile }), `TESSERA_TLS_CERT_FILE: ${why}`);
    });
  }

  it("a path that cannot be read is still quoted", () => {
    const missing = join(projectRoot, "missing-dir", "key.pem");
    assert.equal(refusal({ TESSERA_TLS_CERT_FILE: certFile, TESSERA_TLS_KEY_FILE: missing }), `TESSERA_TLS_KEY_FILE: cannot read file ${JSON.stringify(missing)}`);
  });
});

describe("config: a CORS origin no browser sends is refused, the form browsers send named", () => {
  for (const [origin, sent] of [
    ["https://app.example.com:443", "https://app.example.com"],
    ["http://localhost:80", "http://localhost"],
    ["https://äpp.example", "https://xn--pp-uia.example"],
  ] as const) {
    it(`${origin} -> ${sent}`, () => {
      assert.equal(
        refusal({ TESSERA_CORS_ORIGINS: `https://web.example, ${origin}` }),
        `TESSERA_CORS_ORIGINS: ${JSON.stringify(origin)} never matches: a browser sends this origin as ${JSON.stringify(sent)}`,
      );
    });
  }
  it("letter case, a trailing slash, a port that is not the default and other schemes are accepted", () => {
    const origins = "https://App.Example.com/, https://app.example.com:8443, chrome-extension://abcdef, *";
    assert.deepEqual(loadConfig({ TESSERA_CORS_ORIGINS: origins }).corsOrigins, ["https://App.Example.com/", "https://app.example.com:8443", "chrome-extension://abcdef", "*"]);
  });
});

describe("config: a CORS origin that is no URL at all", () => {
  it("a port past 65535 is refused as not a web origin", () => {
    assert.equal(refusal({ TESSERA_CORS_ORIGINS: "https://app.example.com:99999" }), 'TESSERA_CORS_ORIGINS: "https://app.example.com:99999" is not a web origin (scheme://host[:port], as a browser sends it) or *');
  });
});

describe("run: standard output closed under the service (its log reader gone)", () => {
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), "tessera-epipe-"));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("stops with one line on stderr and exit 1, no stack trace", async function () {
    this.timeout(30000);
    const child = spawn(process.execPath, await entryArgv("compiled"), {
      cwd: projectRoot,
      env: { ...process.env, MONGODB_URI: "", PORT: "0", TESSERA_WORKERS: "1", TESSERA_CLIENT_IDS: "web", TESSERA_ADMIN_TOKEN: "admin-token-0123456789", TESSERA_DATA_DIR: dataDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
        const m = /"msg":"listening".*?"url":"([^"]+)"/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once("exit", () => reject(new Error(`exited: ${out}${err}`)));
    });
    child.stdout!.destroy();
    // A call writes its log line (info): into a pipe no one reads any more.
    for (let i = 0; i < 3 && child.exitCode === null; i++) await fetch(`${url}/jwt/version`).catch(() => undefined);
    assert.equal(await exited, 1);
    assert.equal(err, "tessera: stopping: standard output is closed (EPIPE), where the logs go\n");
  });
});

describe("config: NODE_ENV spelled like production but not exactly \"production\"", () => {
  for (const value of ["Production", "PRODUCTION", " production", "production "]) {
    it(`${JSON.stringify(value)} -> refused, the spelling named (it ran as development, without the production requirements)`, () => {
      assert.equal(refusal({ NODE_ENV: value }), `NODE_ENV: must be "production" exactly (lower case, no white space) to run as production, got ${JSON.stringify(value)}`);
    });
  }
  it("other values (development, test, staging) are accepted as before", () => {
    for (const value of ["development", "test", "staging"]) assert.equal(loadConfig({ NODE_ENV: value }).nodeEnv, value);
  });
  it("a start with NODE_ENV=Production -> exit 2, one line", async function () {
    this.timeout(30000);
    const r = await start({ NODE_ENV: "Production" });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'tessera: configuration error: NODE_ENV: must be "production" exactly (lower case, no white space) to run as production, got "Production"\n');
  });
});

describe("config: the previous key encryption key (TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS)", () => {
  const current = "the-current-key-encryption-key-0123";
  const previous = "the-previous-key-encryption-key-456";
  it("is taken beside TESSERA_KEY_ENCRYPTION_KEY", () => {
    const config = loadConfig({ TESSERA_KEY_ENCRYPTION_KEY: current, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: previous });
    assert.equal(config.keyEncryptionKey, current);
    assert.equal(config.keyEncryptionKeyPrevious, previous);
  });
  it("without TESSERA_KEY_ENCRYPTION_KEY: refused (keys would be opened with it, and new ones stored in the clear)", () => {
    assert.equal(
      refusal({ TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: previous }),
      "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: set without TESSERA_KEY_ENCRYPTION_KEY; the previous secret only opens keys sealed under it, which are sealed again under TESSERA_KEY_ENCRYPTION_KEY",
    );
  });
  it("equal to TESSERA_KEY_ENCRYPTION_KEY: refused, the value never quoted", () => {
    const message = refusal({ TESSERA_KEY_ENCRYPTION_KEY: current, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: current });
    assert.equal(
      message,
      "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS and TESSERA_KEY_ENCRYPTION_KEY: the same secret; the previous one is the secret keys were sealed with before TESSERA_KEY_ENCRYPTION_KEY changed (unset it once every key is sealed again)",
    );
  });
  it("held to the rules of TESSERA_KEY_ENCRYPTION_KEY, never quoted", () => {
    assert.equal(refusal({ TESSERA_KEY_ENCRYPTION_KEY: current, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: "short-secret" }), "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: must be at least 32 bytes long");
    assert.equal(refusal({ TESSERA_KEY_ENCRYPTION_KEY: current, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: " ".repeat(32) }), "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: must not be white space only");
    assert.equal(refusal({ TESSERA_KEY_ENCRYPTION_KEY: current, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: "p".repeat(40) }), "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: must not be one character repeated");
  });
  it("a refused start names it on one line and exits 2, without either secret", async function () {
    this.timeout(30000);
    const r = await start({ TESSERA_KEY_ENCRYPTION_KEY: current, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: current });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr,
      "tessera: configuration error: TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS and TESSERA_KEY_ENCRYPTION_KEY: the same secret; the previous one is the secret keys were sealed with before TESSERA_KEY_ENCRYPTION_KEY changed (unset it once every key is sealed again)\n",
    );
    assert.ok(!r.stdout.includes(current));
  });
});

describe("config: a secret of white space only, or of one character repeated, is refused, never quoted", () => {
  for (const [name, extra] of [
    ["TESSERA_JWT_SECRET", { TESSERA_JWT_ALG: "HS256" }],
    ["TESSERA_KEY_ENCRYPTION_KEY", {}],
  ] as const) {
    it(`${name}: 32 spaces, then white space mixed`, () => {
      assert.equal(refusal({ [name]: " ".repeat(32), ...extra }), `${name}: must not be white space only`);
      assert.equal(refusal({ [name]: " \t".repeat(20), ...extra }), `${name}: must not be white space only`);
    });
    it(`${name}: one character repeated`, () => {
      assert.equal(refusal({ [name]: "a".repeat(40), ...extra }), `${name}: must not be one character repeated`);
    });
  }
  it("TESSERA_ADMIN_TOKEN: one character repeated", () => {
    assert.equal(refusal({ TESSERA_ADMIN_TOKEN: "x".repeat(24) }), "TESSERA_ADMIN_TOKEN: must not be one character repeated");
  });
});

describe("config: a secret too short is refused in plain words, which never spell it out", () => {
  // The value was hidden wherever its text occurred in the message: a short one is text of the
  // message itself ("must b<hidd<hidden>n> at l<hidd<hidden>n>ast 16 byt<hidd<hidden>n>s long").
  for (const [env, expected] of [
    [{ TESSERA_ADMIN_TOKEN: "e" }, "TESSERA_ADMIN_TOKEN: must be at least 16 bytes long"],
    [{ TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: "bytes" }, "TESSERA_JWT_SECRET: must be at least 32 bytes long"],
    [{ TESSERA_KEY_ENCRYPTION_KEY: " " }, "TESSERA_KEY_ENCRYPTION_KEY: must be at least 32 bytes long"],
    [{ MONGODB_URI: "o" }, "MONGODB_URI: must be a mongodb:// or mongodb+srv:// connection string"],
  ] as const) {
    it(`${JSON.stringify(env)} -> ${expected}`, () => {
      assert.equal(refusal(env), expected);
    });
  }
  it("a start with TESSERA_ADMIN_TOKEN=t -> exit 2, one line", async function () {
    this.timeout(30000);
    const r = await start({ TESSERA_ADMIN_TOKEN: "t" });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, "tessera: configuration error: TESSERA_ADMIN_TOKEN: must be at least 16 bytes long\n");
  });
});

describe("config: TESSERA_ADMIN_TOKEN too long for a request's headers", () => {
  // The server refuses a header block over 16 KiB (431): an admin call could never present it.
  const token = (n: number) => "0123456789abcdef".repeat(Math.ceil(n / 16)).slice(0, n);
  it("16385 bytes -> refused, the limit named", () => {
    assert.equal(
      refusal({ TESSERA_ADMIN_TOKEN: token(16385) }),
      "TESSERA_ADMIN_TOKEN: must be at most 15360 bytes: an admin call sends it in its headers, which the server limits to 16384 bytes (1024 left for the request line and the other headers)",
    );
  });
  it("15360 bytes -> accepted", () => {
    assert.equal(refusal({ TESSERA_ADMIN_TOKEN: token(15360) }), "");
  });
});

describe("config: a password with a space or a quote in a refused URL is never quoted", () => {
  for (const [env, expected] of [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://tracer:pw Se"cret@collector' }, 'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http or https URL, got "ftp://tracer:<hidden>@collector"'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "ftp://tracer:pw%20Se%22cret@collector" }, 'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http or https URL, got "ftp://tracer:<hidden>@collector"'],
    [{ TESSERA_PUBLIC_URL: "https://admin:pw Secret@auth.example.com" }, 'TESSERA_PUBLIC_URL: must have no query, fragment or credentials, got "https://admin:<hidden>@auth.example.com"'],
    [{ TESSERA_PUBLIC_URL: 'https://admin:pw"Secret@auth.example.com' }, 'TESSERA_PUBLIC_URL: must have no query, fragment or credentials, got "https://admin:<hidden>@auth.example.com"'],
    [{ TESSERA_PUBLIC_URL: `https://admin:${"pw-Secret-".repeat(8)}@auth.example.com` }, 'TESSERA_PUBLIC_URL: must have no query, fragment or credentials, got "https://admin:<hidden>@auth.example.com"'],
    [{ TESSERA_CORS_ORIGINS: 'https://app.example.com, https://u:pw "Secret@app.example.com' }, 'TESSERA_CORS_ORIGINS: "https://u:<hidden>@app.example.com" is not a web origin (scheme://host[:port], as a browser sends it) or *'],
    [{ TESSERA_JWT_ISSUER: "https://u:pw Secret@auth.example.com " }, 'TESSERA_JWT_ISSUER: must not be blank, begin or end with white space, or hold control characters, got "https://u:<hidden>@auth.example.com "'],
  ] as const) {
    it(`${Object.keys(env)[0]}=${JSON.stringify(Object.values(env)[0])} -> the password <hidden>`, () => {
      assert.equal(refusal(env), expected);
    });
  }
});

describe("config: TESSERA_JWT_BASE_PATH under which a JWT API route meets another API's", () => {
  for (const [base, jwtRoute, other] of [
    ["/v1/frontend/auth", "GET /v1/frontend/auth/token", "GET /v1/frontend/auth/{account_id} (tessera.apitoken.v1.ApiTokenService/ListTokens)"],
    ["/api/authenticationtoken", "GET /api/authenticationtoken/token", "GET /api/authenticationtoken/{token} (tessera.authtoken.v1.AuthenticationTokenService/GetToken)"],
  ] as const) {
    it(`${base} -> refused, the clashing routes named`, () => {
      const message = refusal({ TESSERA_JWT_BASE_PATH: base });
      assert.equal(message, `TESSERA_JWT_BASE_PATH: under ${JSON.stringify(base)} the JWT API's ${jwtRoute} meets ${other}: one would answer the other's requests; mount it where no other API's routes are`);
    });
  }
  it("paths beside the other APIs' routes are accepted (/auth, /v1/admin, / without the Session API)", () => {
    assert.equal(refusal({ TESSERA_JWT_BASE_PATH: "/auth" }), "");
    assert.equal(refusal({ TESSERA_JWT_BASE_PATH: "/v1/admin" }), "");
    assert.equal(refusal({ TESSERA_JWT_BASE_PATH: "/", TESSERA_SESSION_API: "false" }), "");
  });
});

describe("config: TESSERA_JWT_BASE_PATH with an empty, \".\" or \"..\" segment", () => {
  // "/jwt//x" stopped the start as a route that does not compile, naming no variable (exit 1);
  // "/jwt/../user" was served as written, where no client's URL reaches (it is sent as /user/...).
  const refused = (base: string) => `TESSERA_JWT_BASE_PATH: must be "/" or a path of segments, none of them empty, "." or "..", got ${JSON.stringify(base)}`;
  for (const base of ["/jwt//x", "//", "/./jwt", "/jwt/..", "/jwt/../user"]) {
    it(`${base} -> refused, what it takes named`, () => {
      assert.equal(refusal({ TESSERA_JWT_BASE_PATH: base, TESSERA_SESSION_API: "false" }), refused(base));
    });
  }
  it("a start with TESSERA_JWT_BASE_PATH=/jwt//x -> exit 2, one line naming it", async function () {
    this.timeout(30000);
    const r = await start({ TESSERA_JWT_BASE_PATH: "/jwt//x" });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `tessera: configuration error: ${refused("/jwt//x")}\n`);
  });
  it("a trailing slash is dropped; dots inside a segment are a name", () => {
    assert.equal(loadConfig({ TESSERA_JWT_BASE_PATH: "/auth/jwt/" }).jwtBasePath, "/auth/jwt");
    assert.equal(loadConfig({ TESSERA_JWT_BASE_PATH: "/jwt.v1/..x" }).jwtBasePath, "/jwt.v1/..x");
  });
});

describe("start: a mongodb+srv:// MONGODB_URI whose DNS lookup fails names MONGODB_URI, never the password", () => {
  it("a host under .invalid (RFC 6761: never resolves) -> exit 1, MONGODB_URI named", async function () {
    this.timeout(30000);
    const password = "pw-Secret-7f3a9c";
    const r = await start({ MONGODB_URI: `mongodb+srv://tessera:${password}@cluster0.example.invalid/db` });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^tessera: failed to start: MONGODB_URI: the DNS lookup of the mongodb\+srv host cluster0\.example\.invalid failed \(querySrv E[A-Z]+ _mongodb\._tcp\.cluster0\.example\.invalid\)\n$/);
    assert.ok(!(r.stdout + r.stderr).includes(password));
  });
});

describe("config: a TESSERA_ variable Tessera does not read (a misspelt name)", () => {
  it("is named, with the nearest variable it reads when one is close; its internal worker id is none", () => {
    assert.deepEqual(
      unknownVariables({ TESSERA_LOGIN_MAX_FAILURE: "3", TESSERA_ADMIN_TOKN: "a-secret-admin-token", TESSERA_SOMETHING_ELSE: "x", TESSERA_PORT: "1", [workerIdVariable]: "2", TESSERA_WORKERS: "2", PORT: "1" }),
      [
        { variable: "TESSERA_ADMIN_TOKN", didYouMean: "TESSERA_ADMIN_TOKEN" },
        { variable: "TESSERA_LOGIN_MAX_FAILURE", didYouMean: "TESSERA_LOGIN_MAX_FAILURES" },
        { variable: "TESSERA_PORT" },
        { variable: "TESSERA_SOMETHING_ELSE" },
      ],
    );
  });

  it("in another letter case (names are case-sensitive: tessera_workers is not read) is named too, with the variable meant", () => {
    assert.deepEqual(unknownVariables({ tessera_workers: "2", Tessera_Admin_Token: "a-secret-admin-token", tessera_somthing: "x", TESSERA_WORKERS: "2" }), [
      { variable: "Tessera_Admin_Token", didYouMean: "TESSERA_ADMIN_TOKEN" },
      { variable: "tessera_somthing" },
      { variable: "tessera_workers", didYouMean: "TESSERA_WORKERS" },
    ]);
  });

  it("is logged at warn as the service starts (the name, never the value), which goes on", async function () {
    this.timeout(30000);
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-unknown-"));
    const service = await startService("compiled", { TESSERA_WORKERS: "1", TESSERA_DATA_DIR: dataDir, TESSERA_LOGIN_MAX_FAILURE: "3", TESSERA_ADMIN_TOKN: "a-secret-admin-token" });
    try {
      const warned = service.lines().filter((l) => l.msg === "unknown configuration variable, not read");
      assert.deepEqual(
        warned.map((l) => [l.level, l.variable, l.didYouMean]),
        [
          ["warn", "TESSERA_ADMIN_TOKN", "TESSERA_ADMIN_TOKEN"],
          ["warn", "TESSERA_LOGIN_MAX_FAILURE", "TESSERA_LOGIN_MAX_FAILURES"],
        ],
      );
      assert.ok(!JSON.stringify(service.lines()).includes("a-secret-admin-token"));
    } finally {
      await killService(service);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("config: a variable set that the configuration chosen does not use", () => {
  const kek = "a-key-encryption-key-0123456789abcdef";
  const jwtSecret = "an-hs256-secret-0123456789abcdefghij";
  const unused = (env: Record<string, string>) => unusedVariables(loadConfig(env), env);

  it("is named with why: a MongoDB database, or a store timeout, on the embedded store; a data directory on MongoDB; a key encryption key under HS256; TLS settings without TLS; audit budgets with the trail off", () => {
    assert.deepEqual(unused({ TESSERA_MONGODB_DATABASE: "tessera_prod" }), [
      { variable: "TESSERA_MONGODB_DATABASE", reason: "MONGODB_URI is unset: the embedded store is used, which has no database name" },
    ]);
    assert.deepEqual(unused({ TESSERA_STORE_TIMEOUT_MS: "500" }), [
      { variable: "TESSERA_STORE_TIMEOUT_MS", reason: "MONGODB_URI is unset: it bounds the wait for an unreachable MongoDB, and the embedded store is used" },
    ]);
    assert.deepEqual(unused({ TESSERA_STORE_START_WAIT_SECONDS: "30" }), [
      { variable: "TESSERA_STORE_START_WAIT_SECONDS", reason: "MONGODB_URI is unset: a start waits only for an unreachable MongoDB, and the embedded store is used" },
    ]);
    assert.deepEqual(unused({ MONGODB_URI: "mongodb://127.0.0.1:27017/", TESSERA_DATA_DIR: "/var/lib/tessera" }), [
      { variable: "TESSERA_DATA_DIR", reason: "MONGODB_URI is set: the store is MongoDB, and the embedded store's directory is not used" },
    ]);
    assert.deepEqual(unused({ TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: jwtSecret, TESSERA_KEY_ENCRYPTION_KEY: kek }), [
      { variable: "TESSERA_KEY_ENCRYPTION_KEY", reason: "TESSERA_JWT_ALG is HS256: tokens are signed with TESSERA_JWT_SECRET, and no private signing key is stored to seal" },
    ]);
    assert.deepEqual(unused({ TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: jwtSecret, TESSERA_KEY_ENCRYPTION_KEY: kek, TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS: `${kek}-before` }), [
      { variable: "TESSERA_KEY_ENCRYPTION_KEY", reason: "TESSERA_JWT_ALG is HS256: tokens are signed with TESSERA_JWT_SECRET, and no private signing key is stored to seal" },
      { variable: "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS", reason: "TESSERA_JWT_ALG is HS256: tokens are signed with TESSERA_JWT_SECRET, and no private signing key is stored to seal" },
    ]);
    assert.deepEqual(unused({ TESSERA_TLS_RELOAD_SECONDS: "30", TESSERA_HSTS_MAX_AGE_SECONDS: "0" }), [
      { variable: "TESSERA_TLS_RELOAD_SECONDS", reason: "TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE are unset: no TLS certificate is served" },
      { variable: "TESSERA_HSTS_MAX_AGE_SECONDS", reason: "TESSERA_TLS_CERT_FILE and TESSERA_TLS_KEY_FILE are unset: Strict-Transport-Security is sent only under TLS" },
    ]);
    assert.deepEqual(unused({ TESSERA_AUDIT: "off", TESSERA_AUDIT_REFUSALS_PER_MINUTE: "5", TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL: "50" }), [
      { variable: "TESSERA_AUDIT_REFUSALS_PER_MINUTE", reason: "TESSERA_AUDIT is off: no audit event is recorded" },
      { variable: "TESSERA_AUDIT_REFUSALS_PER_MINUTE_TOTAL", reason: "TESSERA_AUDIT is off: no audit event is recorded" },
    ]);
  });

  it("names OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which is never read: spans go to OTEL_EXPORTER_OTLP_ENDPOINT's /v1/traces, or nowhere", () => {
    // The OpenTelemetry variable a collector's documentation often gives: alone, no span was
    // exported; beside OTEL_EXPORTER_OTLP_ENDPOINT, the exporter's URL, set from that one, wins.
    const reason = "spans are exported to OTEL_EXPORTER_OTLP_ENDPOINT followed by /v1/traces, and none without it; set that one to the collector's base URL";
    const traces = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" };
    assert.deepEqual(unused(traces), [{ variable: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", reason }]);
    assert.deepEqual(unused({ ...traces, OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }), [{ variable: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", reason }]);
  });

  it("names the login protection's limits with the protection off: no login attempt or sign-up is limited", () => {
    const off = "TESSERA_LOGIN_PROTECTION is off: no login attempt or sign-up is limited";
    const limits = {
      TESSERA_LOGIN_MAX_FAILURES: "3",
      TESSERA_LOGIN_LOCKOUT_SECONDS: "30",
      TESSERA_SIGNUP_MAX_PER_ADDRESS: "5",
      TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48: "60",
      TESSERA_SIGNUP_MAX_PER_IPV6_48: "25",
    };
    assert.deepEqual(
      unused({ TESSERA_LOGIN_PROTECTION: "false", ...limits }),
      [
        { variable: "TESSERA_LOGIN_MAX_FAILURES", reason: off },
        { variable: "TESSERA_LOGIN_LOCKOUT_SECONDS", reason: off },
        { variable: "TESSERA_SIGNUP_MAX_PER_ADDRESS", reason: off },
        { variable: "TESSERA_LOGIN_MAX_FAILURES_PER_IPV6_48", reason: off },
        { variable: "TESSERA_SIGNUP_MAX_PER_IPV6_48", reason: off },
      ],
    );
    assert.deepEqual(unused(limits), []);
  });

  it("is not named where it is used, nor when set empty (unset)", () => {
    // Housekeeping deletes the login counters older than the window (ones a store shared with
    // instances that count, or kept from before, holds) whether this instance counts or not.
    assert.deepEqual(unused({ TESSERA_LOGIN_PROTECTION: "false", TESSERA_LOGIN_WINDOW_SECONDS: "600" }), []);
    // Without the Session API, seed 003's routes still take a session access token (a store
    // shared with instances that serve it) with its client id, which must be one of these.
    assert.deepEqual(unused({ TESSERA_SESSION_API: "false", TESSERA_CLIENT_IDS: "web" }), []);
    assert.deepEqual(unused({ MONGODB_URI: "mongodb://127.0.0.1:27017/", TESSERA_MONGODB_DATABASE: "tessera_prod", TESSERA_STORE_TIMEOUT_MS: "500", TESSERA_STORE_START_WAIT_SECONDS: "30" }), []);
    assert.deepEqual(unused({ TESSERA_DATA_DIR: "/var/lib/tessera", TESSERA_KEY_ENCRYPTION_KEY: kek, TESSERA_AUDIT_REFUSALS_PER_MINUTE: "5" }), []);
    assert.deepEqual(unused({ TESSERA_JWT_ALG: "ES256", TESSERA_KEY_ENCRYPTION_KEY: kek }), []);
    assert.deepEqual(unused({ TESSERA_MONGODB_DATABASE: "", TESSERA_JWT_ALG: "HS256", TESSERA_JWT_SECRET: jwtSecret, TESSERA_KEY_ENCRYPTION_KEY: "" }), []);
  });

  it("is logged at warn as the service starts (the name and why, never the value), which goes on", async function () {
    this.timeout(30000);
    const dataDir = mkdtempSync(join(tmpdir(), "tessera-unused-"));
    const service = await startService("compiled", {
      TESSERA_WORKERS: "1",
      TESSERA_DATA_DIR: dataDir,
      TESSERA_MONGODB_DATABASE: "tessera_prod",
      TESSERA_JWT_ALG: "HS256",
      TESSERA_JWT_SECRET: jwtSecret,
      TESSERA_KEY_ENCRYPTION_KEY: kek,
    });
    try {
      const warned = service.lines().filter((l) => l.msg === "configuration variable not used");
      assert.deepEqual(
        warned.map((l) => [l.level, l.variable, l.reason]),
        [
          ["warn", "TESSERA_MONGODB_DATABASE", "MONGODB_URI is unset: the embedded store is used, which has no database name"],
          ["warn", "TESSERA_KEY_ENCRYPTION_KEY", "TESSERA_JWT_ALG is HS256: tokens are signed with TESSERA_JWT_SECRET, and no private signing key is stored to seal"],
        ],
      );
      assert.ok(service.lines().some((l) => l.msg === "listening"));
      const output = JSON.stringify(service.lines()) + service.stderr();
      assert.ok(!output.includes(kek) && !output.includes(jwtSecret) && !output.includes("tessera_prod"));
    } finally {
      await killService(service);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("config: TESSERA_HASH_CONCURRENCY that would take every thread of libuv's pool (UV_THREADPOOL_SIZE)", () => {
  const refused = (n: number, pool: string, ceiling: number) =>
    `TESSERA_HASH_CONCURRENCY and UV_THREADPOOL_SIZE: ${n} hashes at once would take every thread of libuv's pool (UV_THREADPOOL_SIZE: ${pool}), which file reads, DNS lookups and the embedded store's fsync share, so they would wait behind the hashes; set UV_THREADPOOL_SIZE to at least ${n + 1}, or TESSERA_HASH_CONCURRENCY to at most ${ceiling}`;

  it("is refused naming both, with what would do: the pool's size or more, set or libuv's default of 4", () => {
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "4" }), refused(4, "4, the default", 3));
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "8", UV_THREADPOOL_SIZE: "8" }), refused(8, "8", 7));
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "16", UV_THREADPOOL_SIZE: "8" }), refused(16, "8", 7));
    // As libuv reads it: 0 (or no number) is one thread.
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "2", UV_THREADPOOL_SIZE: "0" }), refused(2, "1", 1));
  });

  it("one thread left beside the hashes is accepted, and one hash whatever the pool", () => {
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "3" }), "");
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "7", UV_THREADPOOL_SIZE: "8" }), "");
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "1", UV_THREADPOOL_SIZE: "1" }), "");
    assert.equal(loadConfig({ TESSERA_HASH_CONCURRENCY: "7", UV_THREADPOOL_SIZE: "8" }).hashConcurrency, 7);
  });

  it("the default leaves a thread too, the pool read as libuv reads it (0: one thread, so one hash)", () => {
    assert.equal(loadConfig({ UV_THREADPOOL_SIZE: "0", TESSERA_WORKERS: "1" }).hashConcurrency, 1);
    assert.equal(loadConfig({ UV_THREADPOOL_SIZE: "2", TESSERA_WORKERS: "1" }).hashConcurrency, 1);
  });

  it("the pool is the threads libuv starts for the value, as its atoi reads it (white space of C only, 32 bits)", () => {
    // Each value's pool as a node process with it starts the pool: the threads that appear.
    const threadsStarted = (value: string) =>
      Number(
        execFileSync(process.execPath, ["-e", 'const fs = require("node:fs"); const before = new Set(fs.readdirSync("/proc/self/task")); fs.stat(".", () => {}); process.stdout.write(String(fs.readdirSync("/proc/self/task").filter((t) => !before.has(t)).length))'], {
          env: { ...process.env, UV_THREADPOOL_SIZE: value },
          encoding: "utf8",
        }),
      );
    for (const [value, threads] of [
      [" 4", 4],
      ["4abc", 4],
      ["+3", 3],
      ["\t\n2", 2],
      ["", 1],
      // A no-break space is no white space to C (JavaScript's parseInt skips it): no number, one thread.
      ["\u00a04", 1],
      // Past 32 bits atoi keeps the low ones: 2^32 + 1 is one thread, 2^32 + 3 three.
      ["4294967297", 1],
      ["4294967299", 3],
      ["-4294967294", 2],
    ] as const) {
      assert.equal(threadsStarted(value), threads, `libuv with ${JSON.stringify(value)}`);
      const shown = String(threads);
      assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: String(threads + 1), UV_THREADPOOL_SIZE: value }), refused(threads + 1, shown, Math.max(1, threads - 1)), JSON.stringify(value));
      if (threads > 1) assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: String(threads - 1), UV_THREADPOOL_SIZE: value }), "", JSON.stringify(value));
      assert.equal(loadConfig({ UV_THREADPOOL_SIZE: value, TESSERA_WORKERS: "1" }).hashConcurrency, Math.max(1, Math.min(availableParallelism(), threads - 1)), JSON.stringify(value));
    }
    // Negative, or beyond 1024 (not started here: 1024 threads): 1024, so any TESSERA_HASH_CONCURRENCY will do.
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "256", UV_THREADPOOL_SIZE: "-1" }), "");
    assert.equal(refusal({ TESSERA_HASH_CONCURRENCY: "256", UV_THREADPOOL_SIZE: "99999999999999999999999" }), "");
  });

  it("a start with TESSERA_HASH_CONCURRENCY=4 and UV_THREADPOOL_SIZE=4 -> exit 2, one line naming both", async function () {
    this.timeout(120000);
    const r = await start({ TESSERA_HASH_CONCURRENCY: "4", UV_THREADPOOL_SIZE: "4" });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `tessera: configuration error: ${refused(4, "4", 3)}\n`);
  });
});
