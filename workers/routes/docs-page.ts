/**
 * An API docs page (Swagger UI) for an OpenAPI document on this origin. Every
 * asset comes from our own static files (static/docs/: the UI copied from the
 * pinned swagger-ui-dist package by `npm run docs:assets`, and docs.js that
 * starts it), so the page renders with no internet access, and it has no
 * inline script or style.
 */
import { html } from "hono/html";

/** The docs page's HTML for the OpenAPI document at `specUrl` (a path on this origin). */
export function docsPage(options: { title: string; specUrl: `/${string}` }) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title}</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/docs/vendor/swagger-ui.css">
</head>
<body>
<main id="swagger-ui" data-url="${options.specUrl}"></main>
<script src="/docs/vendor/swagger-ui-bundle.js"></script>
<script src="/docs/docs.js"></script>
</body>
</html>`;
}
