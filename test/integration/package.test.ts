/**
 * The package as users get it: `npm pack`, installed into a scratch ESM
 * project and a scratch CommonJS TypeScript project, each of which imports
 * dialtone (and its adapters) and makes a real request to a real backend.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBackends, stopAllBackends, type Backend } from "../helpers/backends.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
let tarball: string;
let backend: Backend;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "dialtone-pack-"));
  execFileSync("npm", ["pack", "--silent", "--pack-destination", dir], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  tarball = join(
    dir,
    readdirSync(dir).find((f) => f.endsWith(".tgz"))!,
  );
  backend = (await startBackends(["127.0.0.2"]))[0]!;
}, 120_000);
afterAll(stopAllBackends);

/** The optional peers of the adapters the consumer imports, as a user of those adapters already has them. */
const ADAPTER_PEERS = { "@connectrpc/connect": "^2.1.2", "@grpc/grpc-js": "^1.14.7", undici: "^7.30.2", "@opentelemetry/api": "^1.9.0" };

function scratch(pkg: object, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "dialtone-consumer-"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, dependencies: ADAPTER_PEERS, ...pkg }, null, 2));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  // From the local cache where it can be: the registry is reachable, but a test should not wait on it.
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball], {
    cwd: dir,
    stdio: ["ignore", "ignore", "inherit"],
  });
  return dir;
}

/** The consumer's program: a channel to the backend, a request, fetch through the adapter, a typed bad-input error. */
const BODY = (types: boolean): string => `
const [target, discovery] = process.argv.slice(2);
const ch = createHttp2Channel({ target: target${types ? " as string" : ""}, discovery: discovery${types ? " as string" : ""}, members: 1 });
async function main()${types ? ": Promise<void>" : ""} {
  await ch.ready(AbortSignal.timeout(10_000));
  const res = await ch.request({ path: "/" });
  const viaFetch = await fetch(target + "/", { dispatcher: createDispatcher(ch) });
  const bad = await ch.request({ path: "/", headers: { "bad header": "x" } }).catch((e${types ? ": unknown" : ""}) => e);
  const tracing = new DialtoneInstrumentation();
  tracing.disable();
  console.log(JSON.stringify({ status: res.status, body: res.body.toString(), fetch: viaFetch.status, badRequest: bad instanceof BadRequestError, session: typeof createSessionManager(ch).request, otel: tracing.instrumentationName, grpc: createGrpcChannel(ch).getTarget() === ch.target }));
  await ch.close();
}
void main();
`;
const IMPORTS =
  'import { createHttp2Channel, BadRequestError } from "dialtone";\nimport { createDispatcher } from "dialtone/undici";\nimport { createSessionManager } from "dialtone/connect";\nimport { DialtoneInstrumentation } from "dialtone/otel";\nimport { createGrpcChannel } from "dialtone/grpc-js";\n';

describe("the packed package in scratch projects (npm pack → npm install)", () => {
  it("a project without the adapters' optional peers (no undici, no @opentelemetry/api, no @grpc/grpc-js) imports dialtone and makes a request: the main entry never loads them", () => {
    const main = `import { createHttp2Channel } from "dialtone";
const [target, discovery] = process.argv.slice(2);
const ch = createHttp2Channel({ target, discovery, members: 1 });
await ch.ready(AbortSignal.timeout(10_000));
const res = await ch.request({ path: "/" });
let undici = "absent";
try { await import("undici"); undici = "present"; } catch {}
let adapter = "loaded";
try { await import("dialtone/undici"); } catch (e) { adapter = e.code; }
let api = "absent";
try { await import("@opentelemetry/api"); api = "present"; } catch {}
let otel = "loaded";
try { await import("dialtone/otel"); } catch (e) { otel = e.code; }
let grpcJs = "absent";
try { await import("@grpc/grpc-js"); grpcJs = "present"; } catch {}
let grpcAdapter = "loaded";
try { await import("dialtone/grpc-js"); } catch (e) { grpcAdapter = e.code; }
console.log(JSON.stringify({ status: res.status, undici, adapter, api, otel, grpcJs, grpcAdapter }));
await ch.close();
`;
    // prom-client 15 depends on @opentelemetry/api, prom-client 14 (which dialtone also takes) does not:
    // with 14, the project has no @opentelemetry/api, and only dialtone/otel needs it.
    const dir = scratch({ type: "module", dependencies: { "prom-client": "^14.2.0" } }, { "main.mjs": main });
    const out = execFileSync(process.execPath, ["main.mjs", `http://svc.test:${backend.port}`, `static:///${backend.key}`], { cwd: dir, encoding: "utf8" });
    // dialtone/undici, dialtone/otel and dialtone/grpc-js need their peers; dialtone itself does not.
    expect(JSON.parse(out)).toEqual({
      status: 200,
      undici: "absent",
      adapter: "ERR_MODULE_NOT_FOUND",
      api: "absent",
      otel: "ERR_MODULE_NOT_FOUND",
      grpcJs: "absent",
      grpcAdapter: "ERR_MODULE_NOT_FOUND",
    });
  }, 120_000);

  it("an ESM project imports dialtone, dialtone/undici, dialtone/connect and dialtone/grpc-js and makes requests", () => {
    const dir = scratch({ type: "module" }, { "main.mjs": IMPORTS + BODY(false) });
    const out = execFileSync(process.execPath, ["main.mjs", `http://svc.test:${backend.port}`, `static:///${backend.key}`], { cwd: dir, encoding: "utf8" });
    expect(JSON.parse(out)).toEqual({
      status: 200,
      body: `ok ${backend.key}`,
      fetch: 200,
      badRequest: true,
      session: "function",
      otel: "dialtone",
      grpc: true,
    });
  }, 120_000);

  it("a CommonJS TypeScript project (module nodenext) compiles against the types and require()s the package", () => {
    // TypeScript compiles these imports to require() calls: Node loads the ES module through require(esm).
    const dir = scratch({ type: "commonjs" }, { "main.ts": IMPORTS + BODY(true) });
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", lib: ["es2022"], strict: true, outDir: "out", types: ["node"] },
        files: ["main.ts"],
      }),
    );
    // The scratch project borrows this repository's TypeScript and Node types rather than installing them again.
    mkdirSync(join(dir, "node_modules", "@types"), { recursive: true });
    // (@grpc/grpc-js's protobufjs may have installed its own @types/node already.)
    for (const mod of [join("@types", "node"), "undici-types"]) {
      if (!existsSync(join(dir, "node_modules", mod))) symlinkSync(join(ROOT, "node_modules", mod), join(dir, "node_modules", mod));
    }
    execFileSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "."], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
    const out = execFileSync(process.execPath, ["out/main.js", `http://svc.test:${backend.port}`, `static:///${backend.key}`], { cwd: dir, encoding: "utf8" });
    expect(JSON.parse(out)).toEqual({
      status: 200,
      body: `ok ${backend.key}`,
      fetch: 200,
      badRequest: true,
      session: "function",
      otel: "dialtone",
      grpc: true,
    });
  }, 120_000);
});
