import { describe, expect, it } from "vitest";
import { Listeners } from "../../src/core/listeners.js";

describe("Listeners", () => {
  it("an observer hears every event, before listeners, without counting in size; removing either stops it", () => {
    const l = new Listeners<number>();
    const heard: string[] = [];
    const stopObserving = l.observe((n) => heard.push(`observer ${n}`));
    expect(l.size).toBe(0);
    l.emit(1);
    const off = l.add((n) => heard.push(`listener ${n}`));
    expect(l.size).toBe(1);
    l.emit(2);
    stopObserving();
    l.emit(3);
    off();
    l.emit(4);
    expect(l.size).toBe(0);
    expect(heard).toEqual(["observer 1", "observer 2", "listener 2", "listener 3"]);
  });

  it("a throwing observer is reported later and does not stop the listeners", async () => {
    const l = new Listeners<number>();
    const heard: number[] = [];
    l.observe(() => {
      throw new Error("observer broke");
    });
    l.add((n) => heard.push(n));
    const reported = new Promise<unknown>((resolve) => process.once("uncaughtException", resolve));
    l.emit(7);
    expect(heard).toEqual([7]);
    expect(String(await reported)).toMatch(/observer broke/);
  });
});
