// The API reference of the api serving this page: its own /openapi.json,
// read with Swagger UI from this api too, so the page works offline.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // No call to the public validator (the default sends the document away).
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
  tryItOutEnabled: false,
  persistAuthorization: false,
});
