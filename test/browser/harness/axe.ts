/**
 * axe-core, run inside the page: the script comes from node_modules (the
 * pinned devDependency), never from a CDN.
 */
import { createRequire } from "node:module";
import type { Page } from "playwright-core";
import { z } from "zod";

const AXE_SCRIPT = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

const violations = z.array(
  z.object({
    id: z.string(),
    impact: z.string().nullable(),
    help: z.string(),
    nodes: z.array(z.string()),
  }),
);

/** A violation axe found, with the CSS selectors of the nodes at fault. */
export type Violation = z.infer<typeof violations>[number];

/** The serious and critical WCAG 2.x A/AA violations on the page as it is now. */
export async function seriousViolations(page: Page): Promise<Violation[]> {
  if ((await page.evaluate("typeof axe")) === "undefined") await page.addScriptTag({ path: AXE_SCRIPT });
  const found = violations.parse(
    await page.evaluate(`axe
      .run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"] }, resultTypes: ["violations"] })
      .then((result) => result.violations.map((v) => ({ id: v.id, impact: v.impact ?? null, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })))`),
  );
  return found.filter((v) => v.impact === "serious" || v.impact === "critical");
}
