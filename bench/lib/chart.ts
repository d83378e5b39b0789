import { View, parse } from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** Renders a Vega-Lite spec to SVG in Node (headless view, no canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Shared look: white background, a readable font size. */
export const CHART_CONFIG = {
  background: "white",
  font: "sans-serif",
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320, columnPadding: 16 },
} as const;

/** One client's p99 per window, as the fault scenarios measure it. */
export interface WindowedP99 {
  label: string;
  p99MsByWindow: number[];
}

/**
 * The fault scenarios' chart: p99 per window over time, one line per client
 * (dialtone drawn thicker), on a log scale, with a dashed rule and label at
 * each fault.
 */
export function faultTimelineSvg(opts: {
  title: string;
  windowMs: number;
  endMs: number;
  faults: Array<{ atMs: number; what: string }>;
  results: WindowedP99[];
  clientOrder: string[];
  yDomain: [number, number];
  legendColumns: number;
}): Promise<string> {
  const timeline = opts.results.flatMap((x) =>
    x.p99MsByWindow.map((p99, w) => ({ t: ((w + 0.5) * opts.windowMs) / 1000, p99: Number.isFinite(p99) ? Math.max(p99, 0.1) : null, client: x.label })),
  );
  return renderSvg({
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: opts.title,
    config: CHART_CONFIG,
    width: 620,
    height: 300,
    layer: [
      {
        data: { values: opts.faults.map((f) => ({ t: f.atMs / 1000, what: f.what })) },
        layer: [
          { mark: { type: "rule", strokeDash: [4, 4], color: "#888" }, encoding: { x: { field: "t", type: "quantitative" } } },
          { mark: { type: "text", align: "left", dx: 3, y: 8, color: "#555" }, encoding: { x: { field: "t", type: "quantitative" }, text: { field: "what" } } },
        ],
      },
      {
        data: { values: timeline },
        mark: { type: "line", interpolate: "step-after" },
        encoding: {
          x: { field: "t", type: "quantitative", title: "seconds", scale: { domain: [0, opts.endMs / 1000] } },
          y: { field: "p99", type: "quantitative", title: "p99 ms", scale: { type: "log", domain: opts.yDomain, clamp: true } },
          color: {
            field: "client",
            type: "nominal",
            sort: opts.clientOrder,
            title: null,
            legend: { orient: "bottom", columns: opts.legendColumns, labelLimit: 400 },
          },
          strokeWidth: { condition: { test: "datum.client === 'dialtone'", value: 3 }, value: 1.3 },
        },
      },
    ],
  });
}
