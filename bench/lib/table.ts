/** A GitHub Markdown table; numbers are printed as given, NaN as "–". */
export function markdownTable(headers: string[], rows: Array<Array<string | number>>, align?: Array<"l" | "r">): string {
  const cell = (v: string | number): string => (typeof v === "number" ? (Number.isFinite(v) ? String(v) : "–") : v.replace(/\|/g, "\\|"));
  const rule = headers.map((_, i) => ((align?.[i] ?? (i === 0 ? "l" : "r")) === "r" ? "---:" : "---"));
  return [headers, rule, ...rows.map((r) => r.map(cell))].map((r) => `| ${r.join(" | ")} |`).join("\n");
}
