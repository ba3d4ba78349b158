// Starts Swagger UI on GET /docs (no inline script: the CSP forbids it).
// The spec is the served openapi.yaml, resolved against this page, so under
// a path prefix it is the prefixed one; its first server is relative ("./"),
// so "Try it out" calls the very server (and prefix) the page came from.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.yaml", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: false,
    // The bundle's own presets; the standalone top bar (a URL box that
    // would load any spec) is left out.
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // No call home to validator.swagger.io (the CSP would refuse it anyway).
    validatorUrl: null,
  });
});
