/** The backend process controller, shared by tests, benchmarks and the demo: see test/fixtures/backend-process.ts. */
export * from "../fixtures/backend-process.js";
