// Starts the API docs UI (Swagger UI, served from /docs/vendor/, copied from the pinned
// swagger-ui-dist package by `npm run docs:assets`) on the OpenAPI document the page names
// in #swagger-ui's data-url. A file, not an inline script, so a strict Content-Security-Policy
// can forbid inline scripts. The document's address never comes from the page's own query.
const root = document.getElementById("swagger-ui");
const url = root?.dataset.url;
if (root && url && url.startsWith("/")) {
  window.ui = window.SwaggerUIBundle({ url, domNode: root, deepLinking: true, queryConfigEnabled: false });
}
