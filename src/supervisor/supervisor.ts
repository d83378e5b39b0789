/**
 * The supervisor as the transports know it. Its parts: address-book.ts
 * (where to dial), regulator.ts (every decision, pure) and driver.ts (every
 * effect); this module keeps the import path the transports use.
 */
export { Supervisor, type SupervisorOptions, type MemberStats, type SupervisorStats } from "./driver.js";
