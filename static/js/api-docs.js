// The /api/v1/docs page: Swagger UI over the generated OpenAPI document (a static file, so no inline script), in
// the site's colour mode: Swagger UI's own dark theme (html.dark-mode) follows Bootstrap's data-bs-theme.
window.addEventListener("DOMContentLoaded", function () {
  var html = document.documentElement;
  function followTheme() { html.classList.toggle("dark-mode", html.getAttribute("data-bs-theme") === "dark"); }
  followTheme();
  new MutationObserver(followTheme).observe(html, {attributes: true, attributeFilter: ["data-bs-theme"]});
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false
  });
});
