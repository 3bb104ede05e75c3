/** The live dashboard's per-minute charts (static/console/history-chart.js, imported as the browser imports it): the line's points and what the chart says in words. */
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

interface HistoryChartModule {
  polylinePoints(values: number[], width: number, height: number): string;
  seriesSummary(title: string, values: number[]): string;
}

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../static/console/history-chart.js");
const chart = (await import(pathToFileURL(file).href)) as HistoryChartModule;

describe("the dashboard's history charts", () => {
  it("spreads the minutes over the width and scales to the peak, zero at the bottom", () => {
    expect(chart.polylinePoints([0, 5, 10], 300, 80)).toBe("0,80 150,40 300,0");
    expect(chart.polylinePoints([3, 0, 1, 2], 90, 30)).toBe("0,0 30,30 60,20 90,10");
  });

  it("draws an all-zero series on the bottom edge, one minute as a flat line, and nothing for no minutes", () => {
    expect(chart.polylinePoints([0, 0], 100, 50)).toBe("0,50 100,50");
    expect(chart.polylinePoints([4], 100, 50)).toBe("0,0 100,0");
    expect(chart.polylinePoints([], 100, 50)).toBe("");
  });

  it("says the span, the latest minute and the peak", () => {
    expect(chart.seriesSummary("Places sold per minute", [1, 7, 3])).toBe("Places sold per minute over the last 3 minutes: latest 3, peak 7.");
    expect(chart.seriesSummary("Fans admitted per minute", [2])).toBe("Fans admitted per minute over the last 1 minute: latest 2, peak 2.");
    expect(chart.seriesSummary("Fans admitted per minute", [])).toBe("Fans admitted per minute: nothing yet.");
  });
});
