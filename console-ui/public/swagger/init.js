// Swagger UI for the console's OpenAPI document, loaded from the console itself (no CDN, no
// inline script: the page's Content-Security-Policy allows neither).
window.SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui" });
