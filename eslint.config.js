// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";
import importX, { createNodeResolver } from "eslint-plugin-import-x";

export default tseslint.config(
  { ignores: ["dist/**", ".build/**", "node_modules/**", "bench/results/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  // No import cycles in src/ (import-x follows value imports: a cycle there is a module read before it
  // has run). The sources import "./x.js" for "./x.ts", as tsc and Node's ESM want.
  {
    files: ["src/**/*.ts"],
    plugins: { "import-x": importX },
    settings: {
      "import-x/extensions": [".ts", ".js"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
      "import-x/resolver-next": [createNodeResolver({ extensions: [".ts", ".js"], extensionAlias: { ".js": [".ts", ".js"] } })],
    },
    rules: { "import-x/no-cycle": ["error", { ignoreExternal: true }] },
  },
  // DESIGN.md's import direction: broker, adapters → transport → dispatch, supervisor →
  // pool, health, resolve → core; metrics sits on core. A part may import only what is
  // below it, and one protocol never another.
  ...layer("src/core/**", ["resolve", "health", "pool", "supervisor", "dispatch", "metrics", "transport", "adapters", "broker"], { promClient: false }),
  ...layer("src/{pool,health,resolve}/**", ["supervisor", "dispatch", "metrics", "transport", "adapters", "broker"], {
    promClient: false,
    siblings: ["pool", "health", "resolve"],
  }),
  ...layer("src/supervisor/**", ["dispatch", "metrics", "transport", "adapters", "broker"], { promClient: false }),
  ...layer("src/dispatch/**", ["supervisor", "metrics", "transport", "adapters", "broker"], { promClient: false }),
  ...layer("src/metrics/**", ["resolve", "health", "pool", "supervisor", "dispatch", "transport", "adapters", "broker"], { promClient: true }),
  ...layer("src/transport/http2/**", ["adapters", "broker"], { promClient: true, protocols: ["nats"] }),
  ...layer("src/transport/nats/**", ["adapters", "broker"], { promClient: true, protocols: ["http2"] }),
  ...layer("src/{adapters,broker}/**", ["resolve", "health", "pool", "supervisor", "dispatch"], { promClient: true }),
);

/**
 * no-restricted-imports for the files under `files`: no import from the src/ folders in
 * `forbidden` (nor, with `siblings`, from those sibling folders other than the file's own),
 * no prom-client unless `promClient`, no other protocol's transport folder.
 * @param {string} files
 * @param {string[]} forbidden
 * @param {{ promClient: boolean, siblings?: string[], protocols?: string[] }} opts
 */
function layer(files, forbidden, opts) {
  const folders = [...forbidden];
  const configs = [];
  const base = (extra) => {
    const group = [...folders, ...extra].flatMap((f) => [`**/${f}/*`, `**/${f}/**`, `../${f}`, `../../${f}`]);
    for (const p of opts.protocols ?? []) group.push(`**/transport/${p}/**`, `../${p}/*`);
    const patterns = [{ group, message: "DESIGN.md: imports run downward only (see the parts table); this import goes up or sideways." }];
    const paths = opts.promClient ? [] : [{ name: "prom-client", message: "DESIGN.md: only metrics/ (and the layers above it) import prom-client." }];
    return { "no-restricted-imports": ["error", { paths, patterns }] };
  };
  if (!opts.siblings) return [{ files: [files], rules: base([]) }];
  // pool, health and resolve never import each other: one config per folder, forbidding the other two.
  for (const own of opts.siblings) {
    configs.push({ files: [`src/${own}/**`], rules: base(opts.siblings.filter((s) => s !== own)) });
  }
  return configs;
}
