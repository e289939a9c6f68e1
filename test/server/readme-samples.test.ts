// The TypeScript samples of README.md and clients/node/README.md compile, as a reader pastes
// them, under strict settings: against the generated code and @tessera/client's own types (its
// sources, as the package's declarations are built from them). Names a sample leaves to its
// reader (a token, the reader's own service) are declared for it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const root = resolve(import.meta.dirname, "../..");

/**
 * What the samples take as given, by name: values and the reader's own service, typed as a
 * reader's would be; each declared in a sample that uses it without declaring it itself.
 */
const given: Array<[name: string, declaration: string]> = [
  ["apiToken", "declare const apiToken: string;"],
  ["accessJwt", "declare const accessJwt: string;"],
  ["accessToken", "declare const accessToken: string;"],
  ["email", "declare const email: string;"],
  ["password", "declare const password: string;"],
  [
    "OrderService",
    'declare const OrderService: import("@bufbuild/protobuf/codegenv2").GenService<{ listOrders: { methodKind: "unary"; input: typeof import("@bufbuild/protobuf/wkt").EmptySchema; output: typeof import("@bufbuild/protobuf/wkt").EmptySchema } }>;',
  ],
  ["OrderServiceDefinition", 'declare const OrderServiceDefinition: import("@grpc/grpc-js").ServiceDefinition;'],
  ["ListOrdersRequest", "type ListOrdersRequest = object;"],
  ["ListOrdersResponse", "type ListOrdersResponse = object;"],
  ["listOrdersOf", "declare function listOrdersOf(userId: string): object;"],
];

function withGiven(code: string): string {
  const declares = (name: string) => new RegExp(`\\b(?:const|let|function|type)\\s+(?:${name}\\b|\\{[^}]*\\b${name}\\b[^}]*\\})`).test(code);
  const uses = (name: string) => new RegExp(`\\b${name}\\b`).test(code);
  return [...given.filter(([name]) => uses(name) && !declares(name)).map(([, declaration]) => declaration), code].join("\n");
}

const tsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2023"],
    types: ["node"],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    isolatedModules: true,
    // As the package's exports map them (clients/node/package.json), from its sources.
    paths: {
      "@tessera/client": ["../clients/node/src/index.ts"],
      "@tessera/client/grpc-js": ["../clients/node/src/grpc-js.ts"],
      "@tessera/client/gen/*": ["../clients/node/gen/*"],
    },
  },
  include: ["*.ts"],
};

function samples(file: string): string[] {
  return [...readFileSync(join(root, file), "utf8").matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

describe("the TypeScript samples of the READMEs", function () {
  this.timeout(60_000);

  it("compile under strict settings (README.md: 2, clients/node/README.md: 4)", async () => {
    const dir = mkdtempSync(join(root, ".readme-samples-"));
    try {
      const files = [
        // README's imports are from the repository's root ("./gen/..."), one level above.
        ...samples("README.md").map((code, i) => ({ name: `readme-${i}.ts`, code: code.replaceAll('from "./gen/', 'from "../gen/') })),
        ...samples("clients/node/README.md").map((code, i) => ({ name: `client-readme-${i}.ts`, code })),
      ];
      assert.deepEqual(
        files.map((f) => f.name),
        ["readme-0.ts", "readme-1.ts", "client-readme-0.ts", "client-readme-1.ts", "client-readme-2.ts", "client-readme-3.ts"],
      );
      for (const { name, code } of files) writeFileSync(join(dir, name), withGiven(code));
      writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
      const compiled = await promisify(execFile)(join(root, "node_modules/.bin/tsc"), ["-p", dir], { cwd: root }).then(
        () => "",
        (e: { stdout?: string; message: string }) => e.stdout || e.message,
      );
      assert.equal(compiled, "", "tsc's errors");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
