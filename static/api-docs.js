/* Starts Swagger UI on the API's own OpenAPI document (no inline script: the CSP is 'self'). */
(function () {
  "use strict";
  window.addEventListener("DOMContentLoaded", function () {
    const root = document.getElementById("swagger-ui");
    window.SwaggerUIBundle({
      url: root.dataset.specUrl,
      domNode: root,
      deepLinking: true,
      tryItOutEnabled: false,
    });
  });
})();
